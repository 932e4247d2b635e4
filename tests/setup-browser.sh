#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test (tests/test_report.py).
# Idempotent and quiet: does nothing when /usr/bin/chromium already exists.
# Playwright drives this browser (its own browser download is not used).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-browser: /usr/bin/chromium is missing; install it as root: apt-get install chromium" >&2
    exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-browser: installing chromium failed" >&2
    exit 1
fi
test -x /usr/bin/chromium
