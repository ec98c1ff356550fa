#!/usr/bin/env bash
# The venv of the e-mail notifier's end-to-end test (notifications.rs): aiosmtpd from PyPI,
# pinned, in $CARGO_TARGET_DIR/tools/aiosmtpd-venv (see pypi_venv.sh): a real SMTP server
# that offers STARTTLS with the test's certificate and writes what it receives to a Maildir.
set -euo pipefail
exec "$(dirname "$0")/pypi_venv.sh" aiosmtpd-venv aiosmtpd 1.4.6
