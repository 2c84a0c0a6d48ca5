#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (SIQ postmaster UI, dashboard), driven by
# playwright-core with executablePath /usr/bin/chromium (playwright's own browser download does
# not work on these machines). Idempotent: a second run installs nothing.
set -euo pipefail
say() { printf 'browser-install: %s\n' "$*" >&2; }
if [ -x /usr/bin/chromium ]; then
  say "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
  exit 0
fi
[ "$(id -u)" = 0 ] || { say "ERROR: must run as root to apt-get install chromium"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
say "installed $(/usr/bin/chromium --version)"
