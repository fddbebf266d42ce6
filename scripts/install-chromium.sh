#!/usr/bin/env bash
# Makes a headless Chromium available for the console's browser tests and prints the path of
# a launcher on stdout (only the path; progress goes to stderr). Order:
#   1. $CHROMIUM, if set;
#   2. the cached copy at .tools/chromium/chromium (a launcher made by step 4);
#   3. /usr/bin/chromium, when Debian's package is installed;
#   4. Debian's `chromium` package and every library it needs that this machine lacks,
#      fetched with apt into .tools/chromium without touching the system's apt lists, cache
#      or installed packages (no root needed where apt may write into the checkout), unpacked
#      with dpkg-deb, and run through a launcher that puts the unpacked libraries first.
# The package lists are the system's own sources (Debian 12 on our machines and on CI).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/.tools/chromium"
launcher="$dest/chromium"

log() { echo "install-chromium: $*" >&2; }
fail() { log "error: $*"; exit 1; }

if [ -n "${CHROMIUM:-}" ]; then
  [ -x "$CHROMIUM" ] || fail "CHROMIUM=$CHROMIUM is not an executable file"
  echo "$CHROMIUM"
  exit 0
fi
if [ -x "$launcher" ] && "$launcher" --headless --version >/dev/null 2>&1; then
  echo "$launcher"
  exit 0
fi
if [ -x /usr/bin/chromium ]; then
  echo /usr/bin/chromium
  exit 0
fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  fail "no chromium found, and apt-get/dpkg-deb are missing to fetch one; install chromium and set CHROMIUM=/path/to/chromium"

apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
# The system's sources (and keyrings), with lists and cache of our own: nothing of the
# system's apt state changes. Sandbox::User=root: apt's _apt user may not write into the checkout.
apt_opts=(
  -o "APT::Get::List-Cleanup=0"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
)
log "reading Debian's package lists into $apt_dir"
apt-get "${apt_opts[@]}" -qq update >&2 || fail "apt-get update failed (is deb.debian.org reachable?)"

# chromium and its dependencies, recursively, less those this machine has installed already:
# those stay the system's (its libc above all), the others are unpacked beside chromium.
mapfile -t wanted < <(
  apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances chromium chromium-common fonts-liberation 2>/dev/null |
    grep -v '^ ' | grep -v '^<' | sed 's/:.*$//' | sort -u
)
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$pkg"); fi
done
[ ${#missing[@]} -gt 0 ] || fail "apt-cache found no chromium package in the system's sources"
log "fetching ${#missing[@]} packages: chromium and the libraries it needs"
rm -f "$apt_dir/download/"*.deb
(cd "$apt_dir/download" && apt-get "${apt_opts[@]}" -qq download "${missing[@]}" >&2) || fail "apt-get download of chromium's packages failed"

rm -rf "$dest/root"
mkdir -p "$dest/root"
for deb in "$apt_dir/download/"*.deb; do dpkg-deb -x "$deb" "$dest/root" || fail "could not unpack $deb"; done
binary="$dest/root/usr/lib/chromium/chromium"
[ -x "$binary" ] || fail "the chromium package holds no usr/lib/chromium/chromium"

# Every folder of the unpacked tree holding shared libraries (pulseaudio and nss keep theirs in subfolders).
libs=$(cd "$dest" && find root -name '*.so*' -printf '%h\n' | sort -u | sed 's|^|$here/|' | paste -sd: -)
cat >"$launcher" <<EOF
#!/bin/sh
# Runs the chromium unpacked by scripts/install-chromium.sh with the libraries unpacked beside it.
here=\$(cd "\$(dirname "\$0")" && pwd)
export LD_LIBRARY_PATH="$libs:\${LD_LIBRARY_PATH:-}"
export FONTCONFIG_PATH="\${FONTCONFIG_PATH:-\$here/root/etc/fonts}"
exec "\$here/root/usr/lib/chromium/chromium" "\$@"
EOF
chmod +x "$launcher"
"$launcher" --headless --version >&2 || fail "the unpacked chromium does not start: $("$launcher" --headless --version 2>&1 | tail -n 3)"
echo "$launcher"
