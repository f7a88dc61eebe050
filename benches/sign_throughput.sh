#!/usr/bin/env bash
# Throughput and memory of signing a release: sigbridge vs a cosign 2.5 loop vs a skopeo 1.18
# loop vs the registry's floor, on the same images in the same run, against a local
# docker-registry. Prints images/s, peak RSS and ratios. Nothing here is asserted; it measures.
#
# usage: benches/sign_throughput.sh [N images, default 1000] [JOBS, default 16] [LOOP_SAMPLE, default 50]
#   N            images pushed and signed by sigbridge and the floor
#   JOBS         concurrency for sigbridge and the floor
#   LOOP_SAMPLE  images signed by the cosign and skopeo loops (one process per image, ~0.3-0.5 s
#                each, so their rate is measured on a sample; the rate does not depend on N)
# env: MEMORY_N=10000 also pushes that many images and reports sigbridge's peak RSS for them.
#      PKCS11=0 skips the SoftHSM contender.
#      INSTALL=0 does not run scripts/install-test-deps.sh (as root it otherwise does).
#      PROFILE=debug measures a debug build (only to try the script quickly; figures mean nothing).
# A contender whose tool is missing (cosign, skopeo, SoftHSM) is skipped with a message; the
# tools the measurement itself needs are checked first.
set -euo pipefail
N="${1:-1000}"; JOBS="${2:-16}"; SAMPLE="${3:-50}"
PROFILE="${PROFILE:-release}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

missing=()
for bin in cargo docker-registry curl bc python3 openssl; do
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
T="$TOOLS/trixie"
COSIGN="$T/usr/bin/cosign"
SKOPEO="$T/usr/bin/skopeo"
skip() { echo "# skipping the $1 contender: $2" >&2; }
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin sigbridge --example push-sample-image --example registry-floor
  OUT="$ROOT/target/release"
else
  cargo build --quiet --bin sigbridge --example push-sample-image --example registry-floor
  OUT="$ROOT/target/debug"
fi
SB="$OUT/sigbridge"
EX="$OUT/examples"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
HOST="127.0.0.1:$PORT"
REGISTRY_PID=
trap 'kill $REGISTRY_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
. "$ROOT/scripts/local-registry.sh"
start_registry "$WORK" "$HOST"

echo "# pushing $N images to $HOST/bench/img ..." >&2
"$EX/push-sample-image" "$HOST/bench/img:t" "$N" > "$WORK/pushed.txt"
sed -E 's/:t-[0-9]+@/@/' "$WORK/pushed.txt" > "$WORK/digests.txt"      # HOST/bench/img@sha256:...
cut -d@ -f1 "$WORK/pushed.txt" > "$WORK/tags.txt"                       # HOST/bench/img:t-K
sed -E "s#^$HOST/##" "$WORK/digests.txt" > "$WORK/floor.txt"            # bench/img@sha256:...

export COSIGN_PASSWORD=bench
# The same cosign key for everyone; without cosign, sigbridge writes one cosign and skopeo load.
if [ -x "$COSIGN" ]; then
  (cd "$WORK" && "$COSIGN" generate-key-pair >/dev/null)
else
  (cd "$WORK" && "$SB" generate-key-pair >/dev/null)
fi
printf 'bench' > "$WORK/pass"

peak_mib() { awk '/Maximum resident/ {printf "%.1f", $6/1024}' "$1"; }
declare -A RATE MEM COUNT

# 1. the registry floor
out="$("$EX/registry-floor" "$HOST" "$JOBS" < "$WORK/floor.txt")"
RATE[floor]="$(sed -E 's/.*\(([0-9.]+) images\/s\).*/\1/' <<<"$out")"; MEM[floor]="-"; COUNT[floor]=$N

# 2. sigbridge, local key, all N images in one process
start=$(date +%s.%N)
/usr/bin/time -v "$SB" sign --key "$WORK/cosign.key" --images-from "$WORK/digests.txt" --jobs "$JOBS" -o json \
  > "$WORK/sb.out" 2> "$WORK/sb.err"
end=$(date +%s.%N)
RATE[sigbridge]="$(echo "$N / ($end - $start)" | bc -l)"; MEM[sigbridge]="$(peak_mib "$WORK/sb.err")"; COUNT[sigbridge]=$N
grep -c '"outcome":"attached"' "$WORK/sb.out" | grep -qx "$N" || { echo "sigbridge did not attach all $N" >&2; tail "$WORK/sb.err" >&2; exit 1; }

# 3. sigbridge, PKCS#11 (SoftHSM) key, if this sigbridge has the provider and SoftHSM is installed
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
  export COSIGN_PKCS11_PIN=5678
  URI="pkcs11:token=bench;object=benchkey?module-path=/usr/lib/softhsm/libsofthsm2.so"
  start=$(date +%s.%N)
  COSIGN_REPOSITORY="$HOST/bench/sigs-pkcs11" /usr/bin/time -v "$SB" sign --signer "$URI" \
    --images-from "$WORK/digests.txt" --jobs "$JOBS" -o json > "$WORK/p11.out" 2> "$WORK/p11.err" || { tail "$WORK/p11.err" >&2; exit 1; }
  end=$(date +%s.%N)
  RATE[sigbridge-pkcs11]="$(echo "$N / ($end - $start)" | bc -l)"; MEM[sigbridge-pkcs11]="$(peak_mib "$WORK/p11.err")"; COUNT[sigbridge-pkcs11]=$N
  unset COSIGN_PKCS11_PIN
fi

# 4. a cosign loop: one process per image, as pipelines do today
head -n "$SAMPLE" "$WORK/digests.txt" > "$WORK/sample.txt"
if [ ! -x "$COSIGN" ]; then
  skip cosign-loop "$COSIGN is missing; run scripts/install-test-deps.sh as root"
else
maxmem=0; start=$(date +%s.%N)
while read -r ref; do
  HOME="$WORK" COSIGN_REPOSITORY="$HOST/bench/sigs-cosign" /usr/bin/time -f %M -o "$WORK/c.mem" \
    "$COSIGN" sign --key "$WORK/cosign.key" --tlog-upload=false -y --allow-http-registry --allow-insecure-registry "$ref" >/dev/null 2>&1
  m=$(cat "$WORK/c.mem"); [ "$m" -gt "$maxmem" ] && maxmem=$m
done < "$WORK/sample.txt"
end=$(date +%s.%N)
RATE[cosign-loop]="$(echo "$SAMPLE / ($end - $start)" | bc -l)"; MEM[cosign-loop]="$(echo "$maxmem/1024" | bc -l | xargs printf %.1f)"; COUNT[cosign-loop]=$SAMPLE
fi

# 5. a skopeo loop: sign in place (containers/image writes the same .sig format)
if [ ! -x "$SKOPEO" ]; then
  skip skopeo-loop "$SKOPEO is missing; run scripts/install-test-deps.sh as root"
else
mkdir -p "$WORK/registries.d"; printf 'default-docker:\n  use-sigstore-attachments: true\n' > "$WORK/registries.d/default.yaml"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"
maxmem=0; start=$(date +%s.%N)
while read -r ref; do
  HOME="$WORK" /usr/bin/time -f %M -o "$WORK/s.mem" \
    "$T/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$T/usr/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" "$T/usr/bin/skopeo" \
    --policy "$WORK/policy.json" --registries.d "$WORK/registries.d" copy --src-tls-verify=false --dest-tls-verify=false \
    --sign-by-sigstore-private-key "$WORK/cosign.key" --sign-passphrase-file "$WORK/pass" "docker://$ref" "docker://$ref" >/dev/null 2>&1
  m=$(cat "$WORK/s.mem"); [ "$m" -gt "$maxmem" ] && maxmem=$m
done < <(head -n "$SAMPLE" "$WORK/tags.txt")
end=$(date +%s.%N)
RATE[skopeo-loop]="$(echo "$SAMPLE / ($end - $start)" | bc -l)"; MEM[skopeo-loop]="$(echo "$maxmem/1024" | bc -l | xargs printf %.1f)"; COUNT[skopeo-loop]=$SAMPLE
fi

printf '\n%-18s %8s %12s %14s %12s %12s\n' contender images images/s "peak RSS MiB" "x cosign" "x floor"
for c in floor sigbridge sigbridge-pkcs11 cosign-loop skopeo-loop; do
  [ -n "${RATE[$c]:-}" ] || continue
  x_cosign=-
  [ -n "${RATE[cosign-loop]:-}" ] && x_cosign="$(printf %.2f "$(echo "${RATE[$c]} / ${RATE[cosign-loop]}" | bc -l)")"
  printf '%-18s %8s %12.1f %14s %12s %12.2f\n' "$c" "${COUNT[$c]}" "${RATE[$c]}" "${MEM[$c]}" \
    "$x_cosign" "$(echo "${RATE[$c]} / ${RATE[floor]}" | bc -l)"
done
echo "(jobs=$JOBS for sigbridge and the floor; cosign and skopeo loops run one process per image, sequentially)"

if [ -n "${MEMORY_N:-}" ]; then
  # The encrypted cosign key alone costs 64 MiB of scrypt working memory while it is decrypted
  # (N=65536, r=8), so growth with the number of images is measured with a plaintext PKCS#8 key.
  echo "# memory check: pushing $MEMORY_N more images ..." >&2
  "$EX/push-sample-image" "$HOST/bench/mem:t" "$MEMORY_N" | sed -E 's/:t-[0-9]+@/@/' > "$WORK/mem.txt"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/plain.pem" 2>/dev/null
  for n in 100 "$MEMORY_N"; do
    head -n "$n" "$WORK/mem.txt" > "$WORK/mem-$n.txt"
    COSIGN_REPOSITORY="$HOST/bench/mem-sigs-$n" /usr/bin/time -v "$SB" sign --key "$WORK/plain.pem" \
      --images-from "$WORK/mem-$n.txt" --jobs "$JOBS" -o json > /dev/null 2> "$WORK/mem.err"
    echo "sigbridge, plaintext P-256 key, $n images: peak RSS $(peak_mib "$WORK/mem.err") MiB; $(grep -E '^Signed' "$WORK/mem.err")"
  done
fi
