#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine (run as root):
#   - docker-registry (CNCF distribution 2.8), softhsm2 + opensc, apache2-utils, openssl
#   - Debian's chromium (headless, for the web-page tests) and fonts-dejavu-core (so that
#     screenshots show text)
#   - cosign 2.5 and skopeo 1.18 from Debian 13 (trixie), and cosign 3.1.1 and oras 1.3.3 from
#     Debian unstable (sid), into a private folder, without touching the system's apt sources (Debian 12's
#     skopeo has sigstore patched out).
# Idempotent: re-running skips what is already there.
# Prints the folder holding the trixie tools; tests find it via SIGBRIDGE_TOOLS_DIR
# (default: target/test-tools).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${SIGBRIDGE_TOOLS_DIR:-$ROOT/target/test-tools}"
export DEBIAN_FRONTEND=noninteractive

need_apt=()
for pair in docker-registry:docker-registry softhsm2-util:softhsm2 pkcs11-tool:opensc \
            htpasswd:apache2-utils openssl:openssl curl:curl bc:bc; do
  bin="${pair%%:*}"; pkg="${pair##*:}"
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# testkit starts the program itself, not the /usr/bin/chromium launcher script.
[ -x /usr/lib/chromium/chromium ] || need_apt+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" debian-archive-keyring ca-certificates >/dev/null
fi
# The distribution package starts a system registry on :5000; the tests run their own.
systemctl disable --now docker-registry >/dev/null 2>&1 || true

if [ -x "$TOOLS/trixie/usr/bin/cosign" ] && [ -x "$TOOLS/trixie/usr/bin/skopeo" ] \
   && [ -x "$TOOLS/sid/usr/bin/cosign" ] && [ -x "$TOOLS/sid/usr/bin/oras" ]; then
  echo "$TOOLS"; exit 0
fi

mirror="$(apt-get indextargets --format '$(SITE)' 'Codename: bookworm' 2>/dev/null | sort -u | head -1)"
if [ -z "$mirror" ]; then
  apt-get update -qq
  mirror="$(apt-get indextargets --format '$(SITE)' 'Codename: bookworm' | sort -u | head -1)"
fi

# Each part is fetched only when its tools are missing (a new tool in one part leaves the other alone).
if ! { [ -x "$TOOLS/trixie/usr/bin/cosign" ] && [ -x "$TOOLS/trixie/usr/bin/skopeo" ]; }; then
  mkdir -p "$TOOLS/apt/lists/partial" "$TOOLS/apt/cache/archives/partial" "$TOOLS/debs" "$TOOLS/trixie"
  : > "$TOOLS/apt/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$TOOLS/apt/trixie.list"
  APT=(apt-get -qq
    -o "Dir::Etc::SourceList=$TOOLS/apt/trixie.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$TOOLS/apt/lists" -o "Dir::Cache=$TOOLS/apt/cache"
    -o "Dir::State::status=$TOOLS/apt/status" -o "APT::Architecture=amd64")
  "${APT[@]}" update
  # skopeo 1.18 needs glibc 2.38+: take trixie's libc and run skopeo through its loader.
  # Its other shared libraries (gpgme, assuan, gpg-error, devmapper, btrfs, ...) come along too.
  (cd "$TOOLS/debs" && "${APT[@]}" download cosign skopeo libc6 libgpgme11t64 libassuan9 libgpg-error0 \
    libdevmapper1.02.1 libsubid5 libseccomp2 libselinux1 libpcre2-8-0 libudev1 libsqlite3-0 >/dev/null 2>&1 \
    || (cd "$TOOLS/debs" && "${APT[@]}" download cosign skopeo libc6))
  for deb in "$TOOLS"/debs/*.deb; do dpkg-deb -x "$deb" "$TOOLS/trixie"; done
fi

# cosign 3.1.1 and oras 1.3.3 from Debian unstable (sid), the same private way: both are Go
# binaries that link only libc.
if ! { [ -x "$TOOLS/sid/usr/bin/cosign" ] && [ -x "$TOOLS/sid/usr/bin/oras" ]; }; then
  mkdir -p "$TOOLS/sid-apt/lists/partial" "$TOOLS/sid-apt/cache/archives/partial" "$TOOLS/sid-debs" "$TOOLS/sid"
  : > "$TOOLS/sid-apt/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" > "$TOOLS/sid-apt/sid.list"
  SID_APT=(apt-get -qq
    -o "Dir::Etc::SourceList=$TOOLS/sid-apt/sid.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$TOOLS/sid-apt/lists" -o "Dir::Cache=$TOOLS/sid-apt/cache"
    -o "Dir::State::status=$TOOLS/sid-apt/status" -o "APT::Architecture=amd64")
  "${SID_APT[@]}" update
  (cd "$TOOLS/sid-debs" && "${SID_APT[@]}" download cosign oras >/dev/null)
  for deb in "$TOOLS"/sid-debs/cosign_*.deb "$TOOLS"/sid-debs/oras_*.deb; do dpkg-deb -x "$deb" "$TOOLS/sid"; done
fi
echo "$TOOLS"
