#!/usr/bin/env bash
# The one test command for a fresh Debian 12 machine: installs the test tools, then runs
# formatting, lints and every test of the workspace.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SIGBRIDGE_TOOLS_DIR="${SIGBRIDGE_TOOLS_DIR:-$ROOT/target/test-tools}"

tools_present() {
  local bin
  # One at a time: `command -v a b` succeeds if any one of them is found.
  for bin in docker-registry htpasswd openssl softhsm2-util pkcs11-tool; do
    command -v "$bin" >/dev/null || return 1
  done
  [ -x "$SIGBRIDGE_TOOLS_DIR/trixie/usr/bin/cosign" ] && [ -x "$SIGBRIDGE_TOOLS_DIR/trixie/usr/bin/skopeo" ] \
    && [ -x "$SIGBRIDGE_TOOLS_DIR/sid/usr/bin/cosign" ] && [ -x "$SIGBRIDGE_TOOLS_DIR/sid/usr/bin/oras" ]
}

if [ "$(id -u)" -eq 0 ]; then
  scripts/install-test-deps.sh
elif tools_present; then
  echo "test tools already installed (not root, so not re-running the installer)"
else
  echo "error: test tools missing; run 'sudo scripts/install-test-deps.sh' once, then retry" >&2
  exit 1
fi

if ! command -v cargo >/dev/null; then
  echo "error: no Rust toolchain (cargo) on PATH; install one with rustup (1.85 or newer)" >&2
  exit 1
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# tests/suite/docs_blocks.rs runs the docs' commands, which start this binary by name.
cargo build --locked -p signpath-compatible-server --bin signpath-compatible-server
cargo test --workspace --locked
