#!/usr/bin/env bash
# Installs the real-MTA lab (docs/lab.md): Postfix, its load tools (smtp-source, smtp-sink), swaks
# and rspamd from Debian's packages, and Sendmail unpacked from its .debs into .cache/lab/sendmail
# (Sendmail and Postfix conflict as installed packages, so Sendmail is never installed: it runs
# from the unpacked tree). Idempotent: a second run installs nothing and takes about a second.
#
# Needs root and Debian 12 (bookworm) with only Debian's package archive reachable. Nothing is
# started: package scripts are kept from starting services (policy-rc.d), Postfix is installed
# with "No configuration" (no /etc/postfix/main.cf, so no system Postfix on port 25), and a
# system Postfix or rspamd found running after our own install is stopped again.
#
# Environment: CHECKID_LAB_DIR (default <repo>/.cache/lab). Prints a JSON summary line last.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${CHECKID_LAB_DIR:-$ROOT/.cache/lab}
start=$(date +%s)

say() { printf 'lab-install: %s\n' "$*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install, and the MTAs run as root in the lab)"
command -v apt-get >/dev/null || die "apt-get not found: the lab needs Debian 12 (bookworm)"

# Packages the lab uses. The libraries are the unpacked sendmail binary's run-time needs (its .deb
# dependencies, without sendmail-base's postinst); m4 builds sendmail.cf from the unpacked cf tree.
PACKAGES=(postfix swaks m4
  libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0 procps)
# The benchmark's peer: installed on its own, and its failure is only a warning.
OPTIONAL=(rspamd)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
optional=()
for p in "${OPTIONAL[@]}"; do installed "$p" || optional+=("$p"); done

running_pid() { # pid file → pid if that process is alive
  [ -f "$1" ] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

# Keep every postinst from starting a daemon, even on an image without a policy-rc.d.
guard_services() {
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# checkid lab install: no service starts during package installs\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null
}

if [ ${#missing[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ]; then
  # Package lists can be absent (fresh image) or too old for the current archive: update once.
  apt_update
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string mx.test.example" | debconf-set-selections
  guard_services
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt_install "${missing[@]}"
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    say "apt-get install ${optional[*]}"
    apt_install "${optional[@]}" || say "WARNING: apt-get install ${optional[*]} failed (see above)"
  fi
  # Belt and braces: whatever a postinst managed to start, we stop (only what we just installed).
  if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
    if pid=$(running_pid /var/spool/postfix/pid/master.pid); then
      say "stopping the system Postfix its package started (pid $pid)"
      postfix stop >/dev/null 2>&1 || kill "$pid"
    fi
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    if pid=$(running_pid /run/rspamd/rspamd.pid); then
      say "stopping the system rspamd its package started (pid $pid)"
      kill "$pid"
    fi
  fi
fi

for tool in /usr/sbin/postfix /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/bin/swaks /usr/bin/m4; do
  [ -x "$tool" ] || die "$tool missing after install"
done
rspamd_ok=false
if [ -x /usr/bin/rspamd ] && /usr/bin/rspamd --version >/dev/null 2>&1; then rspamd_ok=true; else say "WARNING: rspamd did not install or does not run (the benchmark will skip its peer)"; fi

# Sendmail: downloaded and unpacked, never installed (it conflicts with postfix).
SM=$LAB/sendmail
SM_BIN=$SM/usr/libexec/sendmail/sendmail
# The version is Debian's current one (a security update replaces the old .deb in the archive);
# a tree that is there and complete is kept, whatever its version.
if [ ! -s "$SM/.version" ] || [ ! -x "$SM_BIN" ] || [ ! -f "$SM/usr/share/sendmail/cf/m4/cf.m4" ]; then
  apt_update
  version=$(apt-cache policy sendmail-bin | sed -n 's/^ *Candidate: //p')
  [ -n "$version" ] && [ "$version" != "(none)" ] || die "Debian's package lists have no sendmail-bin"
  debs=$LAB/debs
  rm -rf "$SM" "$debs"
  mkdir -p "$debs" "$SM"
  say "apt-get download sendmail-bin sendmail-base sendmail-cf ($version)"
  # apt's download runs as the _apt user where it can; a root-owned 700 dir only makes it warn.
  chmod 755 "$debs"
  (cd "$debs" && apt-get download -qq "sendmail-bin=$version" "sendmail-base=$version" "sendmail-cf=$version" 2>&1 | grep -v 'unsandboxed' >&2 || true)
  shopt -s nullglob
  files=("$debs"/sendmail-*.deb)
  [ ${#files[@]} = 3 ] || die "apt-get download fetched ${#files[@]} of 3 sendmail packages (see above)"
  for d in "${files[@]}"; do dpkg-deb -x "$d" "$SM"; done
  [ -x "$SM_BIN" ] || die "unpacked tree has no $SM_BIN"
  echo "$version" >"$SM/.version"
fi
if ldd "$SM_BIN" | grep -q 'not found'; then
  die "sendmail misses libraries: $(ldd "$SM_BIN" | grep 'not found' | tr -s ' \t' ' ')"
fi
[ -f "$SM/usr/share/sendmail/cf/m4/cf.m4" ] || die "unpacked tree has no cf/m4/cf.m4 (sendmail-cf)"

postfix_version=$(postconf -d -h mail_version 2>/dev/null || echo unknown)
# Run it once to prove the binary and its libraries work, in its own UTS namespace with a dotted
# host name: with the sandbox's bare "vm" it sleeps a minute looking for a qualified name.
sendmail_version=$({ unshare -u sh -c 'hostname lab.test.example; exec "$0" -d0.1 -bt </dev/null' "$SM_BIN" 2>/dev/null || true; } | sed -n 's/^Version //p' | head -1)
[ -n "$sendmail_version" ] || die "the unpacked sendmail does not run: $SM_BIN -d0.1 -bt printed no version"
rspamd_version=none
if $rspamd_ok; then rspamd_version=$({ /usr/bin/rspamd --version 2>/dev/null || true; } | grep -o '[0-9][0-9.]*' | head -1); fi
seconds=$(($(date +%s) - start))
say "done in ${seconds}s: postfix $postfix_version, sendmail $sendmail_version in $SM, rspamd $rspamd_version"
printf '{"lab":"%s","postfix":"%s","sendmail":"%s","sendmailRoot":"%s","rspamd":"%s","seconds":%d}\n' \
  "$LAB" "$postfix_version" "$sendmail_version" "$SM" "$rspamd_version" "$seconds"
