#!/usr/bin/env bash
# Builds the JavaScript chat notifier into $CARGO_TARGET_DIR/plugins/chat-notifier-js.wasm
# (or target/plugins, or --out DIR) with the pinned componentize-js (../js-build/componentize.sh).
# Usage: build.sh [--out DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../js-build/componentize.sh" "$here" notifier "$@"
