#!/usr/bin/env bash
# Install what the leaderboard and training-API tests need beside the sandboxes, idempotently:
#   PostgreSQL 15   the tests start private clusters themselves (initdb + pg_ctl as user postgres)
#   Chromium        the browser tests drive Debian's chromium through Playwright
# Needs root. Nothing is started here: each test session starts and stops its own servers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "== install-services: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "install-services.sh must run as root (apt-get)" >&2
    exit 2
fi

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "postgresql and chromium already installed"
fi
# The test fixtures find initdb and pg_ctl on PATH; Debian keeps them in a versioned folder.
for tool in initdb pg_ctl postgres; do
    if ! command -v "$tool" >/dev/null; then
        ln -sf "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/$tool" "/usr/local/bin/$tool"
        log "linked $tool into /usr/local/bin"
    fi
done
log "$(initdb --version), $(chromium --version 2>/dev/null || echo chromium)"
