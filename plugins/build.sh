#!/usr/bin/env bash
# Builds every plugin (plugins/ and examples/) into components in $CARGO_TARGET_DIR/plugins
# (or target/plugins), installing Debian's wasm toolchain first if rustup has no wasm target.
# Extra arguments go to acmegate-plugin-build (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# The dev profile: dependencies are optimised anyway (workspace profile) and shared with tests.
exec cargo run --quiet -p acmegate-plugin-build -- "$@"
