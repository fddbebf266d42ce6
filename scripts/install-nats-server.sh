#!/usr/bin/env bash
# Makes a nats-server >= 2.10 available and prints its path on stdout (only the path;
# progress goes to stderr). Order:
#   1. $NATS_SERVER, if set;
#   2. the cached copy at .tools/nats-server/usr/sbin/nats-server;
#   3. a nats-server on PATH, if it is 2.10 or newer;
#   4. Debian trixie's package, fetched with apt into .tools/ without touching the system's
#      apt sources, lists or cache (Debian 12 ships 2.9.10, too old for what we use).
# Works from any directory; needs root (or an apt that may write .tools/) only for step 4.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
dest="$tools/nats-server"
cached="$dest/usr/sbin/nats-server"
min_major=2
min_minor=10

log() { echo "install-nats-server: $*" >&2; }
fail() { log "error: $*"; exit 1; }

# True when the binary runs and reports a version >= 2.10 ("nats-server: v2.10.27").
recent_enough() {
  local version major minor
  version=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)
  [ -n "$version" ] || return 1
  major=${version%%.*}
  minor=${version#*.}
  [ "$major" -gt "$min_major" ] || { [ "$major" -eq "$min_major" ] && [ "$minor" -ge "$min_minor" ]; }
}

if [ -n "${NATS_SERVER:-}" ]; then
  [ -x "$NATS_SERVER" ] || fail "NATS_SERVER=$NATS_SERVER is not an executable file"
  echo "$NATS_SERVER"
  exit 0
fi

if [ -x "$cached" ] && recent_enough "$cached"; then
  echo "$cached"
  exit 0
fi

if on_path=$(command -v nats-server 2>/dev/null) && recent_enough "$on_path"; then
  echo "$on_path"
  exit 0
fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  fail "no nats-server >= 2.10 found, and apt-get/dpkg-deb are missing to fetch one; install nats-server 2.10+ and set NATS_SERVER=/path/to/nats-server"

# Reuse the mirror and keyring the machine already trusts, so no new key or host is involved.
uri=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
system_sources=/etc/apt/sources.list.d/debian.sources
if [ -r "$system_sources" ]; then
  found_uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$system_sources")
  found_key=$(awk '/^Signed-By:/ { print $2; exit }' "$system_sources")
  [ -n "$found_uri" ] && uri=$found_uri
  [ -n "$found_key" ] && keyring=$found_key
fi
[ -r "$keyring" ] || fail "Debian's archive keyring $keyring is missing (apt-get install debian-archive-keyring)"

log "fetching nats-server from Debian trixie ($uri) into $dest"
apt_dir="$tools/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
cat >"$apt_dir/trixie.sources" <<EOF
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: $keyring
EOF

# Everything apt writes (lists, package cache, lock) goes under .tools/apt; the system's own
# sources are ignored (sourceparts=-), so its lists and future `apt-get install` are unchanged.
# Sandbox::User=root: apt drops to _apt for downloads, which may not write into the checkout.
apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/trixie.sources"
  -o "Dir::Etc::sourceparts=-"
  -o "APT::Get::List-Cleanup=0"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update >&2 || fail "apt-get update of Debian trixie's package list failed (is $uri reachable?)"
rm -f "$apt_dir/download/"nats-server_*.deb
(cd "$apt_dir/download" && apt-get "${apt_opts[@]}" -qq download nats-server >&2) ||
  fail "apt-get download nats-server from Debian trixie failed"

deb=$(ls "$apt_dir/download/"nats-server_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "apt-get download left no nats-server .deb in $apt_dir/download"
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$deb" "$dest" || fail "could not unpack $deb"
[ -x "$cached" ] || fail "$deb holds no usr/sbin/nats-server"
recent_enough "$cached" || fail "$cached does not run or is older than 2.10: $("$cached" --version 2>&1 || true)"
log "installed $("$cached" --version)"
echo "$cached"
