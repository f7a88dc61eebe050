#!/usr/bin/env bash
# Throughput and memory of signing a release, with every contender a user would pick, on the same
# images in the same run against one local docker-registry; optionally again through a proxy that
# adds network latency (WAN mode). Prints markdown tables (paste-ready for docs/performance.md).
# Nothing here is asserted; it measures.
#
# usage: benches/sign_throughput.sh [N] [JOBS] [LOOP_SAMPLE] [--wan RTT_MS[,RTT_MS...]]
#   N            images signed by each one-process contender (default 1000)
#   JOBS         concurrency for sigbridge and the floor (default 16)
#   LOOP_SAMPLE  images signed by the one-process-per-image loops (default 50; their rate does
#                not depend on N, each image is an independent process)
#   --wan LIST   after the local run, run the contenders again through benches' latency proxy
#                (examples/latency-proxy.rs) for each round-trip time in LIST, e.g. --wan 20,50,80
# env: WAN_RTT_MS=20,50,80  same as --wan (the flag wins).
#      LOCAL=0              skip the local run (only the WAN runs).
#      COSIGN3_N            images for cosign 3.1.1's one-process run locally (default N).
#      WAN_N                images per fast contender (sigbridge, floor) over the WAN (default 200).
#      WAN_SLOW_N           images for cosign's one-process runs over the WAN (default 20).
#      WAN_SAMPLE           images for the per-image loops over the WAN (default 5).
#      MEMORY_N=10000       also reports sigbridge's peak RSS for 100 and MEMORY_N images (local).
#      PKCS11=0             skips the SoftHSM contender.  LOOPS=0 skips the per-image loops.
#      INSTALL=0            does not run scripts/install-test-deps.sh (as root it otherwise does).
#      CONTENDERS=a,b       runs only these contenders (names as in the table; the ratios that
#                           need a missing one print -).
#      ROUNDS=3             runs every contender 3 times per network, in rotation, each time on
#                           fresh images; tables show the median images/s (min-max) and the
#                           ratios use the medians (local figures here vary by up to 25% per run).
#      KEEP_WORK=1          keeps the work directory (registry log, each contender's output).
#      PROFILE=debug        measures a debug build (only to try the script; figures mean nothing).
# Each contender signs into its own fresh repository holding the same images (same digests,
# pushed with a fixed seed), so no contender sees another's signatures. Requests per image are
# counted from the registry's access log (one line per request, the pushes excluded).
# A contender whose tool is missing (cosign 2.5, cosign 3.1.1, skopeo, SoftHSM) is skipped with a
# message; the tools the measurement itself needs are checked first.
set -euo pipefail
WAN_LIST="${WAN_RTT_MS:-}"
pos=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wan) [ $# -ge 2 ] || { echo "error: --wan needs a list of round-trip times in ms, e.g. --wan 20,50,80" >&2; exit 2; }
           WAN_LIST="$2"; shift 2 ;;
    --wan=*) WAN_LIST="${1#--wan=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) pos+=("$1"); shift ;;
  esac
done
N="${pos[0]:-1000}"; JOBS="${pos[1]:-16}"; SAMPLE="${pos[2]:-50}"
COSIGN3_N="${COSIGN3_N:-$N}"
WAN_N="${WAN_N:-200}"; WAN_SLOW_N="${WAN_SLOW_N:-20}"; WAN_SAMPLE="${WAN_SAMPLE:-5}"
PROFILE="${PROFILE:-release}"
for v in "$N" "$JOBS" "$SAMPLE" "$COSIGN3_N" "$WAN_N" "$WAN_SLOW_N" "$WAN_SAMPLE" ${WAN_LIST//,/ }; do
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || { echo "error: '$v' is not a positive whole number (image counts, jobs, round-trip times)" >&2; exit 2; }
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

missing=()
for bin in cargo docker-registry curl bc python3 openssl xargs; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ -x /usr/bin/time ] || missing+=("/usr/bin/time (apt-get install time)")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: the benchmark needs: ${missing[*]}; install them (scripts/install-test-deps.sh as root) and retry" >&2
  exit 1
fi
# As root the installer fetches what is missing (INSTALL=0: use what is there, as non-root does).
if [ "$(id -u)" -eq 0 ] && [ "${INSTALL:-1}" != 0 ]; then
  TOOLS="$(bash scripts/install-test-deps.sh | tail -1)"
else
  TOOLS="${SIGBRIDGE_TOOLS_DIR:-$ROOT/target/test-tools}"
fi
case "$TOOLS" in /*) ;; *) TOOLS="$ROOT/$TOOLS" ;; esac
T="$TOOLS/trixie"
COSIGN="$T/usr/bin/cosign"            # cosign 2.5
COSIGN3="$TOOLS/sid/usr/bin/cosign"   # cosign 3.1.1
SKOPEO="$T/usr/bin/skopeo"
skip() { echo "# skipping the $1 contender: $2" >&2; }
examples=(--example push-sample-image --example registry-floor --example latency-proxy)
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin sigbridge "${examples[@]}"
  OUT="$ROOT/target/release"
else
  cargo build --quiet --bin sigbridge "${examples[@]}"
  OUT="$ROOT/target/debug"
fi
SB="$OUT/sigbridge"
EX="$OUT/examples"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
REG="127.0.0.1:$PORT"
REGISTRY_PID=; PROXY_PID=
if [ "${KEEP_WORK:-0}" = 1 ]; then
  trap 'kill $REGISTRY_PID $PROXY_PID 2>/dev/null || true; echo "# kept $WORK" >&2' EXIT
else
  trap 'kill $REGISTRY_PID $PROXY_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
fi

# The demos' registry (scripts/local-registry.sh) with its access log on: one line per request,
# which is how requests per image are counted.
cat > "$WORK/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage:
  filesystem: {rootdirectory: $WORK/storage}
  delete: {enabled: true}
http:
  addr: $REG
YAML
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do curl -fs "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$REG/v2/" >/dev/null || { echo "error: the registry on $REG did not start; see $WORK/registry.log" >&2; exit 1; }

export COSIGN_PASSWORD=bench
# The same cosign key for everyone; without cosign, sigbridge writes one cosign and skopeo load.
if [ -x "$COSIGN" ]; then
  (cd "$WORK" && HOME="$WORK" "$COSIGN" generate-key-pair >/dev/null)
else
  (cd "$WORK" && "$SB" generate-key-pair >/dev/null)
fi
printf 'bench' > "$WORK/pass"
if [ -x "$COSIGN3" ]; then
  # A cosign 3 signing config with no Fulcio, OIDC, Rekor or TSA: bundles without any log
  # (what testkit's Tools::cosign3_signing_config writes).
  HOME="$WORK" "$COSIGN3" signing-config create --no-default-fulcio --no-default-oidc \
    --no-default-rekor --no-default-tsa --out "$WORK/signing-config.json" >/dev/null
fi
HAVE_PKCS11=0
if [ "${PKCS11:-1}" != 1 ]; then
  skip sigbridge-pkcs11 "PKCS11=${PKCS11}"
elif [ ! -f /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null; then
  skip sigbridge-pkcs11 "SoftHSM (/usr/lib/softhsm/libsofthsm2.so, softhsm2-util) or pkcs11-tool is missing; apt-get install softhsm2 opensc"
else
  mkdir -p "$WORK/tokens"; echo "directories.tokendir = $WORK/tokens" > "$WORK/softhsm2.conf"
  export SOFTHSM2_CONF="$WORK/softhsm2.conf"
  softhsm2-util --init-token --free --label bench --so-pin 1234 --pin 5678 >/dev/null
  pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label bench --login --pin 5678 \
    --keypairgen --key-type EC:prime256v1 --label benchkey --id 01 >/dev/null 2>&1
  URI="pkcs11:token=bench;object=benchkey?module-path=/usr/lib/softhsm/libsofthsm2.so"
  HAVE_PKCS11=1
fi
if [ -x "$SKOPEO" ]; then
  mkdir -p "$WORK/registries.d"; printf 'default-docker:\n  use-sigstore-attachments: true\n' > "$WORK/registries.d/default.yaml"
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"
fi

peak_mib() { awk '/Maximum resident/ {printf "%.1f", $6/1024}' "$1"; }
now() { date +%s.%N; }
# Access-log lines only (`... [date] "GET /v2/... HTTP/1.1" 200 ...`): the registry also logs
# each 404 as an error line. The last request's line lands just after its answer, hence the pause.
log_lines() { sleep 0.2; grep -cE '^[^ ]+ - [^ ]+ \[[^]]+\] "[A-Z]+ /v2/' "$WORK/registry.log" || true; }
SEED=$RANDOM$RANDOM
ROWS="$WORK/rows.tsv"; : > "$ROWS"      # network, contender, images, images/s, peak RSS, requests/image
RATIOS="$WORK/ratios.tsv"; : > "$RATIOS"
declare -A RATE RATES
ROUNDS="${ROUNDS:-1}"
CALLS=()

# prepare REPO COUNT: pushes COUNT images (the same for every contender: same seed) into the fresh
# repository bench/REPO directly (never through the proxy: pushing is not measured) and writes
# $WORK/REPO.{digests,tags,floor} addressed through $HOST (the registry or the proxy).
prepare() {
  local repo="$1" count="$2"
  SAMPLE_IMAGE_SEED="$SEED" "$EX/push-sample-image" "$REG/bench/$repo:t" "$count" > "$WORK/$repo.pushed"
  sed -E "s#^$REG/#$HOST/#; s/:t-[0-9]+@/@/" "$WORK/$repo.pushed" > "$WORK/$repo.digests"   # HOST/bench/REPO@sha256:...
  sed -E "s#^$REG/#$HOST/#" "$WORK/$repo.pushed" | cut -d@ -f1 > "$WORK/$repo.tags"          # HOST/bench/REPO:t-K
  sed -E "s#^$HOST/##" "$WORK/$repo.digests" > "$WORK/$repo.floor"                           # bench/REPO@sha256:...
}

# record NAME COUNT START END MEM LINES_BEFORE: one row of the table.
record() {
  local name="$1" count="$2" start="$3" end="$4" mem="$5" before="$6" after rate
  after="$(log_lines)"
  rate="$(echo "$count / ($end - $start)" | bc -l)"
  RATE[$name]="$rate"; RATES[$name]="${RATES[$name]:-} $rate"
  printf '%s\t%s\t%s\t%.1f\t%s\t%.1f\n' "$NET" "$name" "$count" "$rate" "$mem" \
    "$(echo "($after - $before) / $count" | bc -l)" >> "$ROWS"
  printf '# %-22s %5s images %8.1f images/s\n' "$name" "$count" "$rate" >&2
}

wanted() { [ -z "${CONTENDERS:-}" ] || [[ ",$CONTENDERS," == *",$1,"* ]]; }

failed() { echo "# the $1 contender failed; its row is left out. Last lines of its output:" >&2; tail -5 "$2" >&2; }

# run_floor COUNT [NAME FLAG]: the floor (6 requests), or with NAME=floor-reads and
# FLAG=--same-reads the floor plus the two reads sigbridge makes for safety (8 requests).
run_floor() {
  local count="$1" name="${2:-floor}" flag="${3:-}" repo before start end out
  repo="$NETID-$name"
  wanted "$name" || return 0
  prepare "$repo" "$count"; before="$(log_lines)"; start=$(now)
  out="$("$EX/registry-floor" "$HOST" "$JOBS" $flag < "$WORK/$repo.floor")"; end=$(now)
  if grep -q ', 0 failed' <<<"$out"; then record "$name" "$count" "$start" "$end" - "$before"
  else echo "$out" > "$WORK/$name.err"; failed "$name" "$WORK/$name.err"; fi
}

# sigbridge NAME COUNT [sign flags...]: all images in one process with --images-from.
run_sigbridge() {
  local name="$1" count="$2"; shift 2
  local repo="$NETID-$name" before start end
  wanted "$name" || return 0
  prepare "$repo" "$count"; before="$(log_lines)"; start=$(now)
  if /usr/bin/time -v "$SB" sign "$@" --images-from "$WORK/$repo.digests" --jobs "$JOBS" -o json \
       > "$WORK/$repo.out" 2> "$WORK/$repo.err"; then
    end=$(now)
    # One line per image and format written (`both` writes two); every image must be attached.
    if [ "$(grep '"outcome":"attached"' "$WORK/$repo.out" | grep -o '"digest":"sha256:[0-9a-f]*"' | sort -u | wc -l)" = "$count" ]; then
      record "$name" "$count" "$start" "$end" "$(peak_mib "$WORK/$repo.err")" "$before"
      return
    fi
  fi
  failed "$name" "$WORK/$repo.err"
}

# cosign_one NAME BINARY COUNT [flags...]: all images in one process, as a cosign user who cares
# about speed runs it. cosign takes any number of references; xargs splits them into as few
# invocations as the argument-length limit allows (ARG_MAX, 2 MiB here: about 8,700 references
# of 120 bytes each, measured with GNU xargs), and the invocations are counted.
run_cosign_one() {
  local name="$1" bin="$2" count="$3"; shift 3
  local repo="$NETID-$name" before start end
  wanted "$name" || return 0
  prepare "$repo" "$count"; : > "$WORK/$repo.calls"; before="$(log_lines)"; start=$(now)
  local argmax=$(( $(getconf ARG_MAX) - $(env | wc -c) - 8192 ))
  if HOME="$WORK" /usr/bin/time -v xargs -s "$argmax" -d '\n' -a "$WORK/$repo.digests" \
       sh -c 'echo >> "$0"; exec "$@"' "$WORK/$repo.calls" \
       "$bin" sign --key "$WORK/cosign.key" -y --allow-http-registry --allow-insecure-registry "$@" \
       > "$WORK/$repo.out" 2> "$WORK/$repo.err"; then
    end=$(now)
    record "$name" "$count" "$start" "$end" "$(peak_mib "$WORK/$repo.err")" "$before"
    CALLS+=("$NET $name: $count images in $(wc -l < "$WORK/$repo.calls") cosign invocation(s)")
  else
    failed "$name" "$WORK/$repo.err"
  fi
}

# loop NAME COUNT CMD...: one process per image (the image replaces {} in CMD); the rate is
# measured on a sample, peak RSS is the largest single process.
run_loop() {
  local name="$1" count="$2" list="$3"; shift 3
  local repo="$NETID-$name" before start end maxmem=0 m ref
  wanted "$name" || return 0
  prepare "$repo" "$count"; before="$(log_lines)"; start=$(now)
  while read -r ref; do
    if ! HOME="$WORK" /usr/bin/time -f %M -o "$WORK/loop.mem" "${@/\{\}/$ref}" > "$WORK/$repo.err" 2>&1; then
      failed "$name" "$WORK/$repo.err"; return
    fi
    m=$(tail -1 "$WORK/loop.mem"); [ "$m" -gt "$maxmem" ] && maxmem=$m
  done < "$WORK/$repo.$list"
  end=$(now)
  record "$name" "$count" "$start" "$end" "$(echo "$maxmem/1024" | bc -l | xargs printf %.1f)" "$before"
}

# contenders FAST_N COSIGN2_N COSIGN3_N SAMPLE: every contender, on $HOST.
contenders() {
  local fast="$1" c2="$2" c3="$3" sample="$4"
  run_floor "$fast"
  run_floor "$fast" floor-reads --same-reads
  run_sigbridge sigbridge-legacy "$fast" --key "$WORK/cosign.key" --format legacy
  run_sigbridge sigbridge-bundle "$fast" --key "$WORK/cosign.key" --format bundle
  run_sigbridge sigbridge-both "$fast" --key "$WORK/cosign.key" --format both
  if [ "$HAVE_PKCS11" = 1 ]; then
    COSIGN_PKCS11_PIN=5678 run_sigbridge sigbridge-legacy-pkcs11 "$fast" --signer "$URI" --format legacy
  fi
  if [ -x "$COSIGN" ]; then
    run_cosign_one cosign2-one-process "$COSIGN" "$c2" --tlog-upload=false
  else skip "cosign 2.5" "$COSIGN is missing; run scripts/install-test-deps.sh as root"; fi
  if [ -x "$COSIGN3" ]; then
    run_cosign_one cosign3-one-process "$COSIGN3" "$c3" --signing-config "$WORK/signing-config.json"
  else skip "cosign 3.1.1" "$COSIGN3 is missing; run scripts/install-test-deps.sh as root"; fi
  [ "${LOOPS:-1}" != 0 ] || return 0
  if [ -x "$COSIGN" ]; then
    run_loop cosign2-per-image "$sample" digests "$COSIGN" sign --key "$WORK/cosign.key" -y \
      --tlog-upload=false --allow-http-registry --allow-insecure-registry '{}'
  fi
  if [ -x "$COSIGN3" ]; then
    run_loop cosign3-per-image "$sample" digests "$COSIGN3" sign --key "$WORK/cosign.key" -y \
      --signing-config "$WORK/signing-config.json" --allow-http-registry --allow-insecure-registry '{}'
  fi
  if [ -x "$SKOPEO" ]; then
    # Sign in place (containers/image writes the same .sig format); skopeo 1.18 needs trixie's glibc.
    run_loop skopeo-per-image "$sample" tags \
      "$T/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$T/usr/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" "$SKOPEO" \
      --policy "$WORK/policy.json" --registries.d "$WORK/registries.d" copy --src-tls-verify=false --dest-tls-verify=false \
      --sign-by-sigstore-private-key "$WORK/cosign.key" --sign-passphrase-file "$WORK/pass" 'docker://{}' 'docker://{}'
  else skip skopeo "$SKOPEO is missing; run scripts/install-test-deps.sh as root"; fi
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# rounds FAST_N COSIGN2_N COSIGN3_N SAMPLE: every contender ROUNDS times (fresh repositories per
# round), then each contender's rate is the median of its rounds.
rounds() {
  local r base="$NETID"
  for r in $(seq "$ROUNDS"); do
    NETID="$base"; [ "$ROUNDS" = 1 ] || NETID="$base-r$r"
    contenders "$@"
  done
  NETID="$base"
  for k in "${!RATES[@]}"; do RATE[$k]="$(median "${RATES[$k]}")"; done
  RATES=()
}
ratio() { [ -n "${RATE[$1]:-}" ] && [ -n "${RATE[$2]:-}" ] && printf '%.2f' "$(echo "${RATE[$1]} / ${RATE[$2]}" | bc -l)" || echo -; }
ratios() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NET" "$(ratio sigbridge-legacy cosign2-one-process)" \
    "$(ratio sigbridge-bundle cosign3-one-process)" "$(ratio sigbridge-bundle sigbridge-legacy)" \
    "$(ratio sigbridge-legacy floor)" "$(ratio sigbridge-legacy floor-reads)" \
    "$(ratio sigbridge-legacy cosign2-per-image)" >> "$RATIOS"
  RATE=()
}

if [ "${LOCAL:-1}" != 0 ]; then
  NET=local; NETID=local; HOST="$REG"
  echo "# local registry $REG: $N images per contender, cosign 3.1.1 $COSIGN3_N, loops $SAMPLE" >&2
  rounds "$N" "$N" "$COSIGN3_N" "$SAMPLE"
  ratios
fi

for rtt in ${WAN_LIST//,/ }; do
  one_way=$((rtt / 2))
  "$EX/latency-proxy" "$REG" "$one_way" > "$WORK/proxy.addr" 2> "$WORK/proxy.err" &
  PROXY_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/proxy.addr" ] && break; sleep 0.1; done
  HOST="$(head -1 "$WORK/proxy.addr")"
  [ -n "$HOST" ] || { echo "error: the latency proxy did not start; see $WORK/proxy.err" >&2; cat "$WORK/proxy.err" >&2; exit 1; }
  NET="$rtt ms RTT"; NETID="wan$rtt"
  echo "# WAN: $HOST adds $one_way ms each way to $REG; $WAN_N images for sigbridge and the floor, $WAN_SLOW_N for cosign's one-process runs, loops $WAN_SAMPLE" >&2
  rounds "$WAN_N" "$WAN_SLOW_N" "$WAN_SLOW_N" "$WAN_SAMPLE"
  ratios
  kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=
done

echo
echo "| network | contender | images | images/s | peak RSS MiB | requests/image |"
echo "|---|---|---|---|---|---|"
# One row per network and contender: with ROUNDS > 1 the median rate (min-max), the largest RSS.
awk -F'\t' -v rounds="$ROUNDS" '
  { k = $1 SUBSEP $2; if (!(k in n)) { order[++keys] = k; net[k] = $1; who[k] = $2; imgs[k] = $3; req[k] = $6; mem[k] = $5 }
    rate[k, ++n[k]] = $4; if ($5 != "-" && $5 + 0 > mem[k] + 0) mem[k] = $5 }
  END { for (i = 1; i <= keys; i++) { k = order[i]; m = n[k]
      for (a = 1; a <= m; a++) v[a] = rate[k, a]
      for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t }
      med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
      shown = (rounds > 1) ? sprintf("%.1f (%.1f-%.1f)", med, v[1], v[m]) : sprintf("%.1f", med)
      printf "| %s | %s | %s | %s | %s | %s |\n", net[k], who[k], imgs[k], shown, mem[k], req[k] } }' "$ROWS"
echo
echo "| network | sigbridge legacy / cosign 2.5 one process | sigbridge bundle / cosign 3.1.1 one process | bundle / legacy | sigbridge legacy / floor | sigbridge legacy / floor with the same reads | sigbridge legacy / cosign 2.5 per image |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$RATIOS"
echo
echo "(jobs=$JOBS for sigbridge and the floor; cosign's one-process runs sign sequentially in one process;"
echo " per-image loops start one process per image; requests/image counts every request the registry logged"
echo " during the contender's run, /v2/ pings included)"
for c in "${CALLS[@]}"; do echo "($c)"; done

if [ -n "${MEMORY_N:-}" ]; then
  # The encrypted cosign key alone costs 64 MiB of scrypt working memory while it is decrypted
  # (N=65536, r=8), so growth with the number of images is measured with a plaintext PKCS#8 key.
  echo "# memory check: pushing $MEMORY_N more images ..." >&2
  "$EX/push-sample-image" "$REG/bench/mem:t" "$MEMORY_N" | sed -E 's/:t-[0-9]+@/@/' > "$WORK/mem.txt"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/plain.pem" 2>/dev/null
  echo
  echo "| images | peak RSS MiB | images/s |"
  echo "|---|---|---|"
  for n in 100 "$MEMORY_N"; do
    head -n "$n" "$WORK/mem.txt" > "$WORK/mem-$n.txt"
    start=$(now)
    COSIGN_REPOSITORY="$REG/bench/mem-sigs-$n" /usr/bin/time -v "$SB" sign --key "$WORK/plain.pem" \
      --images-from "$WORK/mem-$n.txt" --jobs "$JOBS" -o json > /dev/null 2> "$WORK/mem.err"
    end=$(now)
    printf '| %s | %s | %.1f |\n' "$n" "$(peak_mib "$WORK/mem.err")" "$(echo "$n / ($end - $start)" | bc -l)"
  done
fi
