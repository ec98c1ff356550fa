#!/usr/bin/env bash
# Builds every plugin (plugins/ and examples/) into components in $CARGO_TARGET_DIR/plugins
# (or target/plugins), installing Debian's wasm toolchain first if rustup has no wasm target,
# then the Python example with componentize-py (pip-installed into $CARGO_TARGET_DIR/tools) and
# the JavaScript examples with componentize-js (npm-installed there too).
# Extra arguments go to acmegate-plugin-build (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# The dev profile: dependencies are optimised anyway (workspace profile) and shared with tests.
cargo run --quiet -p acmegate-plugin-build -- "$@"
# Examples in other languages have their own build script (the Rust tool builds cargo projects
# only); they get the same --out, when given.
py_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) py_args=(--out "$2"); shift 2 ;;
    *) shift ;;
  esac
done
for script in examples/dns-persist-validator-py/build.sh examples/*-js/build.sh; do
  "$script" ${py_args[@]+"${py_args[@]}"}
done
