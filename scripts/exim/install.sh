#!/usr/bin/env bash
# Installs Exim for the readsocket tests (docs/adapters/exim.md): exim4-daemon-light from
# Debian's archive, unpacked (never installed: it conflicts with Postfix as a package) into
# $CHECKID_LAB_DIR/exim (default <repo>/.cache/lab/exim), the libraries its binary needs, and
# the Debian-exim user its binary has compiled in. Nothing is started. Idempotent: a second run
# installs nothing.
#
# Needs root and Debian 12 (bookworm). Prints a JSON summary line last.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${CHECKID_LAB_DIR:-$ROOT/.cache/lab}
EXIM=$LAB/exim
BIN=$EXIM/usr/sbin/exim4

say() { printf 'exim-install: %s\n' "$*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install, and Exim runs as root in the tests)"
command -v apt-get >/dev/null || die "apt-get not found: the Exim lab needs Debian 12 (bookworm)"

# The run-time libraries of exim4-daemon-light (its Depends, without exim4-base's postinst).
LIBS=(libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${LIBS[@]}"; do installed "$p" || missing+=("$p"); done

updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq
    updated=1
  fi
}

if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$BIN" ]; then
  apt_update
  debs=$LAB/exim-debs
  rm -rf "$debs" "$EXIM"
  mkdir -p "$debs" "$EXIM"
  chmod 755 "$debs" # apt downloads as _apt where it can
  say "apt-get download exim4-daemon-light"
  (cd "$debs" && apt-get download -qq exim4-daemon-light 2>&1 | grep -v 'unsandboxed' >&2 || true)
  shopt -s nullglob
  files=("$debs"/exim4-daemon-light_*.deb)
  [ ${#files[@]} = 1 ] || die "apt-get download fetched ${#files[@]} exim4-daemon-light packages (see above)"
  dpkg-deb -x "${files[0]}" "$EXIM"
  [ -x "$BIN" ] || die "unpacked tree has no $BIN"
  dpkg-deb -f "${files[0]}" Version >"$EXIM/.version"
fi
if ldd "$BIN" | grep -q 'not found'; then
  die "exim misses libraries: $(ldd "$BIN" | grep 'not found' | tr -s ' \t' ' ')"
fi

# The binary refuses to run (even -bV) unless its compiled-in exim user exists.
if ! getent group Debian-exim >/dev/null; then
  say "adding the system group Debian-exim"
  groupadd --system Debian-exim
fi
if ! getent passwd Debian-exim >/dev/null; then
  say "adding the system user Debian-exim"
  useradd --system --gid Debian-exim --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin Debian-exim
fi

version=$("$BIN" -C /dev/null -bV 2>/dev/null | sed -n 's/^Exim version \([^ ]*\).*/\1/p' | head -1)
[ -n "$version" ] || die "$BIN -bV does not run: $("$BIN" -C /dev/null -bV 2>&1 | head -3)"
say "exim $version in $EXIM"
printf '{"exim":"%s","bin":"%s"}\n' "$version" "$BIN"
