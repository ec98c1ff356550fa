#!/usr/bin/env bash
# The venv of the ARI end-to-end test (ari.rs): certbot from PyPI, pinned, in
# $CARGO_TARGET_DIR/tools/certbot-venv (see pypi_venv.sh). Debian's certbot predates ACME
# Renewal Information (RFC 9773); certbot checks the renewalInfo of a certificate on `renew`
# and sends `replaces` in its new order since 4.1.
set -euo pipefail
exec "$(dirname "$0")/pypi_venv.sh" certbot-venv certbot 5.8.0
