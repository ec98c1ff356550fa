#!/usr/bin/env bash
# Creates the Python virtual environment the uPKI end-to-end tests run the real uPKI CA from:
# $CARGO_TARGET_DIR/tools/upki-venv (or target/tools/upki-venv) with upki-ca from PyPI, pinned.
# .ci/run calls it before the tests; the test support (upki_ca.rs) calls it on first use, so
# that `cargo test` alone works on a fresh clone. Nothing is done when the venv already holds
# that version. A venv of our own leaves the user's Python alone and sidesteps Debian's
# "externally managed" refusal (PEP 668).
# Usage: upki_ca_venv.sh
set -euo pipefail

version=0.1.5
root="$(cd "$(dirname "$0")/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/tools/upki-venv"

installed() {
  "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("upki-ca") != sys.argv[1])' \
    "$version" 2>/dev/null
}
if installed; then
  exit 0
fi

# One installer at a time (.ci/run and a test binary, or two test binaries); the loser finds
# the winner's venv complete.
mkdir -p "$target/tools"
exec 9>"$target/tools/.upki-venv.lock"
flock 9
if installed; then
  exit 0
fi

echo "installing upki-ca $version into $venv"
rm -rf "$venv"
if ! python3 -m venv "$venv"; then
  # Debian's python3 comes without venv and ensurepip; .ci/run installs them.
  echo "python3 cannot create a virtual environment: install python3-venv (.ci/run does)" >&2
  exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "upki-ca==$version"
installed || { echo "upki-ca $version is not importable from $venv" >&2; exit 1; }
