#!/usr/bin/env bash
# SignPath approval flow demo, no Docker and no SignPath account needed: a local registry, the
# SignPath-compatible server (servers/signpath-compatible) with manual approval, and the flow a
# pipeline and a release manager go through: submit without waiting, look at the status,
# approve, resume, verify with real cosign 2.5.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$(bash scripts/install-test-deps.sh | tail -1)"
COSIGN="$TOOLS/trixie/usr/bin/cosign"
cargo build --quiet --bin sigbridge --example push-sample-image
cargo build --quiet -p signpath-compatible-server
SIGBRIDGE="$ROOT/target/debug/sigbridge"

WORK="$(mktemp -d)"
PORT="${SIGBRIDGE_DEMO_PORT:-5056}"
SP_PORT="${SIGBRIDGE_DEMO_SIGNPATH_PORT:-18443}"
ORG=c2099ac1-b2d4-4a41-9d2b-3ae8b4a2e3b1
REGISTRY_PID=
SERVER_PID=
trap 'kill $REGISTRY_PID $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
. "$ROOT/scripts/local-registry.sh"
start_registry "$WORK" "127.0.0.1:$PORT"

echo "== the signing service's key, API token, and the service itself (manual approval)"
export COSIGN_PASSWORD=demo
(cd "$WORK" && "$SIGBRIDGE" generate-key-pair)
head -c 24 /dev/urandom | base64 > "$WORK/token"
"$ROOT/target/debug/signpath-compatible-server" --listen "127.0.0.1:$SP_PORT" \
  --key "$WORK/cosign.key" --token-file "$WORK/token" --organization "$ORG" \
  --approval manual > "$WORK/server.out" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
unset COSIGN_PASSWORD

export SIGBRIDGE_SIGNPATH_TOKEN_FILE="$WORK/token"
SP="signpath+http://127.0.0.1:$SP_PORT/$ORG/my-images/release-signing?artifact-configuration=cosign-raw&param.release=1.0"

IMAGES=()
for name in api web worker; do
  ref="127.0.0.1:$PORT/demo/$name:1.0"
  "$ROOT/target/debug/examples/push-sample-image" "$ref" > /dev/null
  IMAGES+=("$ref")
done
echo "== pipeline: one signing request for ${#IMAGES[@]} images, without waiting"
ID=$("$SIGBRIDGE" sign --signer "$SP" --no-wait "${IMAGES[@]}")
echo "signing request: $ID"

echo "== release manager: what is waiting?"
"$SIGBRIDGE" signpath status "$ID" --signer "$SP"

echo "== release manager: approve (SignPath's web UI; here the server's Approve route)"
curl -fsS -X POST -H "Authorization: Bearer $(cat "$WORK/token")" -H 'Content-Type: application/json' \
  -d '{}' "http://127.0.0.1:$SP_PORT/API/v1/$ORG/SigningRequests/$ID/Approve"

echo "== pipeline: resume the request and attach the signatures"
"$SIGBRIDGE" sign --signer "$SP" --resume "$ID" "${IMAGES[@]}"

echo "== verifying every image with cosign"
for ref in "${IMAGES[@]}"; do
  HOME="$WORK" "$COSIGN" verify --key "$WORK/cosign.pub" --insecure-ignore-tlog \
    --allow-http-registry --allow-insecure-registry "$ref" > /dev/null 2>&1
  echo "verified $ref"
done
echo "== demo passed: one approval signed ${#IMAGES[@]} images and cosign accepted them"
