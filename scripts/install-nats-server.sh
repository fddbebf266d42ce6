#!/usr/bin/env bash
# Makes a nats-server >= 2.12 available and prints its path on stdout (only the path;
# progress goes to stderr). Order:
#   1. $NATS_SERVER, if set (an error when it is older than 2.12);
#   2. the cached copy at .tools/nats-server/usr/sbin/nats-server, if it is 2.12 or newer
#      (an older one, cached by an earlier version of this script, is fetched again);
#   3. a nats-server on PATH, if it is 2.12 or newer;
#   4. Debian unstable's (sid) package, fetched with apt into .tools/ without touching the
#      system's apt sources, lists or cache. Debian 12 ships 2.9.10 and Debian 13 2.10.27,
#      both too old: the engine needs 2.12 (atomic batch publish, message schedules).
# Works from any directory; needs root (or an apt that may write .tools/) only for step 4.
#
#   scripts/install-nats-server.sh --debian-suite <suite> --into <dir>
# fetches that Debian suite's nats-server into <dir> (kept there: a second call only prints
# it), whatever its version, and prints its path. The test of the refusal of an old server
# (test/e2e/old-server.test.ts) takes Debian 13's 2.10 this way.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
dest="$tools/nats-server"
min_major=2
min_minor=12

log() { echo "install-nats-server: $*" >&2; }
fail() { log "error: $*"; exit 1; }

# The version a binary reports ("nats-server: v2.15.1" -> 2.15.1), empty when it does not run.
version_of() {
  "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*[0-9.]*\).*/\1/p' | head -n 1
}

# True when the binary runs and reports a version >= $min_major.$min_minor.
recent_enough() {
  local version major minor
  version=$(version_of "$1")
  [ -n "$version" ] || return 1
  major=${version%%.*}
  minor=${version#*.}
  minor=${minor%%.*}
  [ "$major" -gt "$min_major" ] || { [ "$major" -eq "$min_major" ] && [ "$minor" -ge "$min_minor" ]; }
}

# fetch_from_debian <suite> <dir>: unpacks the suite's nats-server package into <dir>.
fetch_from_debian() {
  local suite=$1 into=$2
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    fail "no nats-server >= $min_major.$min_minor found, and apt-get/dpkg-deb are missing to fetch one; install nats-server $min_major.$min_minor+ and set NATS_SERVER=/path/to/nats-server"

  # Reuse the mirror and keyring the machine already trusts, so no new key or host is involved.
  local uri=http://deb.debian.org/debian
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  local system_sources=/etc/apt/sources.list.d/debian.sources found_uri found_key
  if [ -r "$system_sources" ]; then
    found_uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$system_sources")
    found_key=$(awk '/^Signed-By:/ { print $2; exit }' "$system_sources")
    [ -n "$found_uri" ] && uri=$found_uri
    [ -n "$found_key" ] && keyring=$found_key
  fi
  [ -r "$keyring" ] || fail "Debian's archive keyring $keyring is missing (apt-get install debian-archive-keyring)"

  log "fetching nats-server from Debian $suite ($uri) into $into"
  # A folder per suite: one suite's lists are neither read nor overwritten for another.
  local apt_dir="$tools/apt/$suite"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
  cat >"$apt_dir/$suite.sources" <<EOF
Types: deb
URIs: $uri
Suites: $suite
Components: main
Signed-By: $keyring
EOF

  # Everything apt writes (lists, package cache, lock) goes under .tools/apt/; the system's own
  # sources are ignored (sourceparts=-), so its lists and future `apt-get install` are unchanged.
  # Sandbox::User=root: apt drops to _apt for downloads, which may not write into the checkout.
  local apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/$suite.sources"
    -o "Dir::Etc::sourceparts=-"
    -o "APT::Get::List-Cleanup=0"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_opts[@]}" -qq update >&2 || fail "apt-get update of Debian $suite's package list failed (is $uri reachable?)"
  rm -f "$apt_dir/download/"nats-server_*.deb
  (cd "$apt_dir/download" && apt-get "${apt_opts[@]}" -qq download nats-server >&2) ||
    fail "apt-get download nats-server from Debian $suite failed"

  local deb
  deb=$(ls "$apt_dir/download/"nats-server_*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] || fail "apt-get download left no nats-server .deb in $apt_dir/download"
  rm -rf "$into"
  mkdir -p "$into"
  dpkg-deb -x "$deb" "$into" || fail "could not unpack $deb"
  [ -x "$into/usr/sbin/nats-server" ] || fail "$deb holds no usr/sbin/nats-server"
  log "installed $("$into/usr/sbin/nats-server" --version) in $into"
}

if [ "${1:-}" = --debian-suite ]; then
  [ $# -eq 4 ] && [ "$3" = --into ] || fail "usage: $0 [--debian-suite <suite> --into <dir>]"
  into=$(mkdir -p "$4" && cd "$4" && pwd)
  [ -x "$into/usr/sbin/nats-server" ] || fetch_from_debian "$2" "$into"
  echo "$into/usr/sbin/nats-server"
  exit 0
fi
[ $# -eq 0 ] || fail "usage: $0 [--debian-suite <suite> --into <dir>]"

if [ -n "${NATS_SERVER:-}" ]; then
  [ -x "$NATS_SERVER" ] || fail "NATS_SERVER=$NATS_SERVER is not an executable file"
  recent_enough "$NATS_SERVER" ||
    fail "NATS_SERVER=$NATS_SERVER is nats-server $(version_of "$NATS_SERVER" || true), too old: this engine needs $min_major.$min_minor or newer (unset NATS_SERVER and this script fetches one)"
  echo "$NATS_SERVER"
  exit 0
fi

cached="$dest/usr/sbin/nats-server"
if [ -x "$cached" ]; then
  if recent_enough "$cached"; then
    echo "$cached"
    exit 0
  fi
  log "the cached $cached is nats-server $(version_of "$cached" || true), older than $min_major.$min_minor; fetching a newer one"
fi

if on_path=$(command -v nats-server 2>/dev/null) && recent_enough "$on_path"; then
  echo "$on_path"
  exit 0
fi

fetch_from_debian sid "$dest"
recent_enough "$cached" || fail "$cached does not run or is older than $min_major.$min_minor: $("$cached" --version 2>&1 || true)"
echo "$cached"
