#!/usr/bin/env bash
# Installs Debian's redis-server for the tests that share state through Redis. The tests start
# their own redis-server on a free loopback port with a temporary directory; the packaged
# service is stopped and disabled so nothing listens on 6379 by surprise. Idempotent.
set -euo pipefail
say() { printf 'redis-install: %s\n' "$*" >&2; }
if ! command -v redis-server >/dev/null; then
  [ "$(id -u)" = 0 ] || { say "ERROR: must run as root to apt-get install redis-server"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends redis-server >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends redis-server >/dev/null; }
fi
# the package starts a service on 6379 where an init system runs; the tests never use it
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
say "redis-server: $(redis-server --version)"
