#!/usr/bin/env bash
# Builds one JavaScript example plugin into $CARGO_TARGET_DIR/plugins/<name>.wasm (or
# target/plugins, or --out DIR), next to the Rust plugins, with componentize-js from npm.
#
# componentize-js is pinned by this directory's package-lock.json and installed with `npm ci`
# into $CARGO_TARGET_DIR/tools/componentize-js-<lock hash>/ (a private directory: the example
# directories stay free of node_modules, and a new lock installs beside the old one).
# package.json also names @bytecodealliance/preview2-shim, which componentize-js 0.23.0 imports
# without declaring it (npm would leave it out of a clean install). componentize-js is
# called through its API (componentize.mjs): the jco CLI's download step does not work offline.
# Nothing is done when the component is newer than every input.
# Usage: componentize.sh EXAMPLE_DIR WORLD [--out DIR]   (the component is named after EXAMPLE_DIR)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[ $# -ge 2 ] || { echo "usage: $0 EXAMPLE_DIR WORLD [--out DIR]" >&2; exit 2; }
example="$(cd "$1" && pwd)"
world="$2"
shift 2
name="$(basename "$example")"
target="${CARGO_TARGET_DIR:-$root/target}"
out_dir="$target/plugins"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out_dir="$2"; shift 2 ;;
    *) echo "usage: componentize.sh EXAMPLE_DIR WORLD [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out_dir"
out="$(cd "$out_dir" && pwd)/$name.wasm"
# The sources, the contract and the builder with its pinned versions are all inputs.
inputs=("$example"/*.js "$root"/plugin-sdk/wit-0.1.0/*.wit "$here"/componentize.* "$here"/package*.json)

up_to_date() { [ -f "$out" ] && [ -z "$(find "${inputs[@]}" -newer "$out")" ]; }
if up_to_date; then
  echo "$out up to date"
  exit 0
fi

# One build at a time (plugins/build.sh and the test binaries may run together); the loser
# finds the winner's output up to date. The lock also covers the npm install.
exec 9>"$out_dir/.build-js.lock"
flock 9
if up_to_date; then
  echo "$out up to date"
  exit 0
fi

tools="$target/tools/componentize-js-$(sha256sum "$here/package-lock.json" | cut -c1-12)"
if [ ! -f "$tools/.installed" ]; then
  if ! command -v npm >/dev/null; then
    echo "componentize.sh: npm not found: install Node.js 18 or later with npm" >&2
    exit 1
  fi
  echo "installing componentize-js (package-lock.json) into $tools"
  rm -rf "$tools"
  mkdir -p "$tools"
  cp "$here/package.json" "$here/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$tools/.installed"
fi

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# Node resolves the API from the script's directory upwards, so the builder runs from the
# private install, reading the example where it is. The JavaScript examples stay on the 0.1.0
# contract, on purpose (docs/plugins.md, "Contract versions").
cp "$here/componentize.mjs" "$tools/componentize.mjs"
node "$tools/componentize.mjs" "$root/plugin-sdk/wit-0.1.0" "$world" "$example/app.js" "$tmp"
mv "$tmp" "$out"
echo "$out $(stat -c %s "$out") bytes"
