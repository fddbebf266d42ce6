#!/usr/bin/env bash
# Installs pnpm (the version package.json's packageManager names) when it is not on PATH,
# so `make` works on a machine that has only Node.
set -euo pipefail

if command -v pnpm >/dev/null 2>&1; then
  exit 0
fi
echo "pnpm not found; installing pnpm@10.34.8 from npm" >&2
npm install -g --silent --no-fund --no-audit pnpm@10.34.8 >&2
command -v pnpm >/dev/null 2>&1 || {
  echo "ensure-pnpm: pnpm was installed into $(npm prefix -g)/bin, which is not on PATH" >&2
  exit 1
}
