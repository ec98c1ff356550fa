#!/usr/bin/env bash
# Builds the Python example validator into $CARGO_TARGET_DIR/plugins/dns-persist-validator-py.wasm
# (or target/plugins, or --out DIR), next to the Rust plugins, with componentize-py from PyPI.
#
# componentize-py is pinned (one version builds the same component everywhere) and installed
# with pip into $CARGO_TARGET_DIR/tools/ unless that version is already on PATH: a private
# directory leaves the user's Python alone and sidesteps Debian's "externally managed"
# refusal (PEP 668). Nothing is done when the component is newer than every input.
# Usage: build.sh [--out DIR]
set -euo pipefail

version=0.25.1
name=dns-persist-validator-py
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out_dir="$target/plugins"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out_dir="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out_dir"
out="$(cd "$out_dir" && pwd)/$name.wasm"
# The build tool itself is an input: a new pinned version must rebuild.
inputs=("$here/app.py" "$here/records.py" "$here/build.sh" "$root"/plugin-sdk/wit-0.1.0/*.wit)

up_to_date() { [ -f "$out" ] && [ -z "$(find "${inputs[@]}" -newer "$out")" ]; }
if up_to_date; then
  echo "$out up to date"
  exit 0
fi

# One build at a time (plugins/build.sh and the test binaries may run together); the loser
# finds the winner's output up to date.
exec 9>"$out_dir/.build-py.lock"
flock 9
if up_to_date; then
  echo "$out up to date"
  exit 0
fi

tools="$target/tools/componentize-py-$version"
componentize_py() {
  if [ "$(componentize-py --version 2>/dev/null)" = "componentize-py $version" ]; then
    componentize-py "$@"
  else
    # What pip's `componentize-py` launcher does, with the private directory on the path.
    PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}" python3 -c \
      'import sys; from componentize_py import script; sys.exit(script())' "$@"
  fi
}
if [ "$(componentize_py --version 2>/dev/null)" != "componentize-py $version" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    # Debian's python3 (certbot pulls it in) may come without pip.
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      python3-pip >/dev/null
  fi
  echo "installing componentize-py $version into $tools"
  rm -rf "$tools"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --target "$tools" "componentize-py==$version"
fi

# -d takes the WIT directory (one package over several files), -w the world in it: the 0.1.0
# contract, on purpose (docs/plugins.md, "Contract versions"). The
# generated bindings (module `wit_world`) exist only inside the build.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
componentize_py -q -d "$root/plugin-sdk/wit-0.1.0" -w challenge-validator \
  componentize app -p "$here" -o "$tmp"
mv "$tmp" "$out"
echo "$out $(stat -c %s "$out") bytes"
