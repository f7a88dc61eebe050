#!/usr/bin/env bash
# `sigbridge serve` under load: N signing requests submitted at once from T API tokens to one
# instance (SQLite state, a P-256 key file as the policy's signer), each approved by an approver
# identity, completed, downloaded and every signature verified against the policy's key
# (examples/serve-load). Then the audit chain is verified with `sigbridge serve audit verify`
# and the store must hold exactly N requests. Prints a markdown table (paste-ready for
# docs/performance.md). Exits 1 if anything was lost; nothing else is asserted.
#
# usage: benches/serve_load.sh [N] [TOKENS] [PAYLOADS]
#   N         signing requests (default 200)
#   TOKENS    submitting identities, each with its own token (default 20)
#   PAYLOADS  images per request (default 3)
# env: RUNS=3              repeats the run (a fresh service and database each time), one row each.
#      RATE=N              max_requests_per_minute per identity (default 1000000: the limit out
#                          of the way; set e.g. RATE=60 to see clients wait on 429 Retry-After).
#      KEEP_WORK=1         keeps the work directory (config, database, service log).
#      PROFILE=debug       measures a debug build (only to try the script; figures mean nothing).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
N="${1:-200}"; TOKENS="${2:-20}"; PAYLOADS="${3:-3}"; RUNS="${RUNS:-1}"; RATE="${RATE:-1000000}"
PROFILE="${PROFILE:-release}"
for v in "$N" "$TOKENS" "$PAYLOADS" "$RUNS" "$RATE"; do
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || { echo "error: '$v' is not a positive whole number" >&2; exit 2; }
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for bin in cargo openssl; do
  command -v "$bin" >/dev/null 2>&1 || { echo "error: the benchmark needs $bin" >&2; exit 1; }
done

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin sigbridge --example serve-load
  OUT="$ROOT/target/release"
else
  cargo build --quiet --bin sigbridge --example serve-load
  OUT="$ROOT/target/debug"
fi
SB="$OUT/sigbridge"
LOAD="$OUT/examples/serve-load"

WORK="$(mktemp -d)"
SERVE_PID=
if [ "${KEEP_WORK:-0}" = 1 ]; then
  trap 'kill $SERVE_PID 2>/dev/null || true; echo "# kept $WORK" >&2' EXIT
else
  trap 'kill $SERVE_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/service.pem" 2>/dev/null
openssl pkey -in "$WORK/service.pem" -pubout -out "$WORK/service.pub"
# `serve new-token` prints the token, then the token_sha256 line for the configuration.
: > "$WORK/tokens.txt"; : > "$WORK/identities.toml"; names=()
for i in $(seq "$TOKENS"); do
  "$SB" serve new-token > "$WORK/t"
  head -1 "$WORK/t" >> "$WORK/tokens.txt"
  printf '[[identities]]\nname = "ci-%s"\n%s\n\n' "$i" "$(tail -1 "$WORK/t")" >> "$WORK/identities.toml"
  names+=("\"ci-$i\"")
done
"$SB" serve new-token > "$WORK/t"
head -1 "$WORK/t" > "$WORK/approver.txt"
printf '[[identities]]\nname = "approver"\n%s\n\n' "$(tail -1 "$WORK/t")" >> "$WORK/identities.toml"
rm -f "$WORK/t"

ORG=load-org
ROWS="$WORK/rows.txt"; : > "$ROWS"
for run in $(seq "$RUNS"); do
  RUN="$WORK/run-$run"; mkdir -p "$RUN"
  cp "$WORK/service.pem" "$RUN/"
  { printf 'listen = "127.0.0.1:0"\ndatabase = "state.db"\norganization_id = "%s"\n' "$ORG"
    printf 'max_requests_per_minute = %s\n\n' "$RATE"
    cat "$WORK/identities.toml"
    printf '[[policies]]\nproject = "load"\nslug = "release"\nsigner = "service.pem"\n'
    printf 'approvals_required = 1\nsubmitters = [%s]\napprovers = ["approver"]\n' "$(IFS=,; echo "${names[*]}")"
  } > "$RUN/serve.toml"
  # The signer (a key file) is opened relative to the working directory.
  (cd "$RUN" && SIGBRIDGE_LOG=sigbridge_serve=info exec "$SB" serve --config serve.toml) > "$RUN/serve.out" 2> "$RUN/serve.log" &
  SERVE_PID=$!
  for _ in $(seq 100); do grep -q '^listening on ' "$RUN/serve.out" 2>/dev/null && break; sleep 0.1; done
  ADDR="$(sed -n 's#^listening on http://##p' "$RUN/serve.out")"
  [ -n "$ADDR" ] || { echo "error: the service did not start; its log:" >&2; cat "$RUN/serve.log" >&2; exit 1; }
  echo "# run $run: $N requests from $TOKENS tokens, $PAYLOADS images each, against $ADDR" >&2
  status=0
  "$LOAD" --signer "signpath+http://$ADDR/$ORG/load/release" --tokens "$WORK/tokens.txt" \
    --approver-token "$WORK/approver.txt" --public-key "$WORK/service.pub" \
    --requests "$N" --payloads "$PAYLOADS" --db "$RUN/state.db" > "$RUN/load.out" || status=$?
  # The service's peak resident memory over the run.
  RSS="$(awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SERVE_PID/status" 2>/dev/null || echo -)"
  audit="intact"
  "$SB" serve audit verify --config "$RUN/serve.toml" > "$RUN/audit.out" 2>&1 || audit="BROKEN"
  submits="$("$SB" serve audit export --config "$RUN/serve.toml" | grep -c '"action":"submit"' || true)"
  refused="$(grep -c 'rate limit: refused' "$RUN/serve.log" || true)"
  kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=
  cat "$RUN/load.out" >&2
  [ "$status" = 0 ] && [ "$audit" = intact ] && [ "$submits" = "$N" ] || {
    echo "error: run $run lost requests or broke the audit log (load exit $status, audit $audit, $submits submit entries); see $RUN" >&2
    KEEP_WORK=1; trap 'echo "# kept $WORK" >&2' EXIT; exit 1; }
  v() { tr ' ' '\n' < "$RUN/load.out" | sed -n "s/^$1=//p"; }
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s/%s | %s | %s entries, %s | %s |\n' \
    "$N" "$TOKENS" "$PAYLOADS" "$(v submit_per_s)" "$(v submit_p50_ms)" "$(v submit_p99_ms)" \
    "$(v submit_max_ms)" "$(v approve_per_s)" "$(v completed)" "$N" "$(v complete_per_s)" \
    "$submits" "$audit" "$RSS" >> "$ROWS"
  [ "$refused" = 0 ] || echo "# run $run: the service answered 429 $refused times (RATE=$RATE); the clients waited and retried" >&2
done

echo
echo "| requests | tokens | images/request | submissions/s | submit p50 ms | submit p99 ms | submit max ms | approvals/s | completed, verified | completions/s | audit (submit entries, chain) | service peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
cat "$ROWS"
echo
echo "(one instance, SQLite WAL with synchronous=FULL, a P-256 key file as the signer, max_requests_per_minute=$RATE;"
echo " submissions/s: accepted submissions over the submit phase, all sent at once; completions/s: from the first"
echo " approval to the last verified download; $(nproc) CPUs, $(uname -m))"
