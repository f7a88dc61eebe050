#!/usr/bin/env bash
# End-to-end demo on a fresh Debian 12 machine (as root), no Docker needed:
# starts a local registry on 127.0.0.1, pushes a small sample image, makes a key pair,
# signs the image with sigbridge, verifies it with sigbridge and with real cosign 2.5.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="$(bash scripts/install-test-deps.sh | tail -1)"
COSIGN="$TOOLS/trixie/usr/bin/cosign"
cargo build --release --quiet --bin sigbridge --example push-sample-image
SIGBRIDGE="$ROOT/target/release/sigbridge"

WORK="$(mktemp -d)"
PORT="${SIGBRIDGE_DEMO_PORT:-5055}"
REGISTRY_PID=
trap 'kill $REGISTRY_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
. scripts/local-registry.sh
start_registry "$WORK" "127.0.0.1:$PORT"

IMAGE="127.0.0.1:$PORT/demo/hello:1.0"
echo "== pushing a sample image to $IMAGE"
"$ROOT/target/release/examples/push-sample-image" "$IMAGE"

echo "== generating a key pair (password: demo)"
export COSIGN_PASSWORD=demo
(cd "$WORK" && "$SIGBRIDGE" generate-key-pair)

echo "== signing"
"$SIGBRIDGE" sign --signer "$WORK/cosign.key" -a release=1.0 "$IMAGE"

echo "== verifying with sigbridge"
"$SIGBRIDGE" verify --key "$WORK/cosign.pub" -a release=1.0 "$IMAGE"

echo "== verifying with cosign $("$COSIGN" version 2>/dev/null | awk '/GitVersion/ {print $2}')"
HOME="$WORK" "$COSIGN" verify --key "$WORK/cosign.pub" --insecure-ignore-tlog \
  --allow-http-registry --allow-insecure-registry "$IMAGE" > /dev/null
echo "== demo passed: sigbridge signed $IMAGE and cosign accepted it"
