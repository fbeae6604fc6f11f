#!/usr/bin/env bash
# Installs what tests/test_tracker_browser.py needs: Debian's Chromium (never a
# downloaded browser build) and playwright-core from npm, pinned by
# package-lock.json.  Safe to run again; scripts/test calls it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium
fi
cd "$here"
# playwright-core never downloads a browser, but say so anyway.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund
else
    npm install --no-audit --no-fund
fi
