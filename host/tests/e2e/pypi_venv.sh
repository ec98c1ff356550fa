#!/usr/bin/env bash
# Creates a Python virtual environment holding one pinned PyPI package for the end-to-end
# tests: $CARGO_TARGET_DIR/tools/<venv> (or target/tools/<venv>). upki_ca_venv.sh and
# certbot_venv.sh name what goes in; .ci/run calls them before the tests, and the test support
# (support::pypi_venv) calls them on first use, so that `cargo test` alone works on a fresh
# clone. Nothing is done when the venv already holds that version. A venv of our own leaves the
# user's Python alone and sidesteps Debian's "externally managed" refusal (PEP 668).
# Usage: pypi_venv.sh VENV PACKAGE VERSION
set -euo pipefail

name="$1"
package="$2"
version="$3"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/tools/$name"

installed() {
  "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' \
    "$package" "$version" 2>/dev/null
}
if installed; then
  exit 0
fi

# One installer at a time (.ci/run and a test binary, or two test binaries); the loser finds
# the winner's venv complete.
mkdir -p "$target/tools"
exec 9>"$target/tools/.$name.lock"
flock 9
if installed; then
  exit 0
fi

echo "installing $package $version into $venv"
rm -rf "$venv"
if ! python3 -m venv "$venv"; then
  # Debian's python3 comes without venv and ensurepip; .ci/run installs them.
  echo "python3 cannot create a virtual environment: install python3-venv (.ci/run does)" >&2
  exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version"
installed || { echo "$package $version is not importable from $venv" >&2; exit 1; }
