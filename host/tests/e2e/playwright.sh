#!/usr/bin/env bash
# playwright-core from npm, pinned, in $CARGO_TARGET_DIR/tools/playwright (or
# target/tools/playwright), for the console's browser test (console.rs, console.mjs). It drives
# Debian's chromium (.ci/run installs the package); playwright-core never downloads a browser.
# .ci/run calls this before the tests and the test calls it on first use, so that `cargo test`
# alone works on a fresh clone. Nothing is done when that version is installed already.
set -euo pipefail

version="1.65.2"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
dir="$target/tools/playwright"

installed() {
  [ "$(node -p 'require(process.argv[1]).version' "$dir/node_modules/playwright-core/package.json" 2>/dev/null)" = "$version" ]
}
if installed; then
  exit 0
fi
mkdir -p "$target/tools"
# One installer at a time (.ci/run and a test binary); the loser finds the winner's complete.
exec 9>"$target/tools/.playwright.lock"
flock 9
if installed; then
  exit 0
fi
echo "installing playwright-core $version into $dir"
rm -rf "$dir"
mkdir -p "$dir"
npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "playwright-core@$version"
installed
