#!/usr/bin/env bash
# The venv the uPKI end-to-end tests run the real uPKI CA from: upki-ca from PyPI, pinned, in
# $CARGO_TARGET_DIR/tools/upki-venv (see pypi_venv.sh).
set -euo pipefail
exec "$(dirname "$0")/pypi_venv.sh" upki-venv upki-ca 0.1.5
