#!/usr/bin/env bash
# Builds the JavaScript example validator into $CARGO_TARGET_DIR/plugins/dns-persist-validator-js.wasm
# (or target/plugins, or --out DIR) with the pinned componentize-js (../js-build/componentize.sh).
# Usage: build.sh [--out DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../js-build/componentize.sh" "$here" challenge-validator "$@"
