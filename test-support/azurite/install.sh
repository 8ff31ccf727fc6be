#!/usr/bin/env bash
# Installs Azurite (the Azure Blob emulator the tests export audit logs to) at the version pinned in
# package-lock.json beside this script, outside the clone: $CP_TOOLS/azurite/<sha256 of the lock>/
# (default CP_TOOLS ~/.cache/control-plane/tools). Skips when that folder is complete; prints its
# `azurite-blob` path. Needs Node.js 20+ and npm; about 40 s the first time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TOOLS="${CP_TOOLS:-$HOME/.cache/control-plane/tools}"
hash=$(sha256sum "$here/package-lock.json" | cut -c1-16)
dir="$TOOLS/azurite/$hash"
bin="$dir/node_modules/.bin/azurite-blob"
mkdir -p "$TOOLS/azurite"
exec 9>"$TOOLS/azurite/.lock"
flock 9 # one install at a time (test processes may ask together)
if [ ! -x "$bin" ] || [ ! -f "$dir/.complete" ]; then
  echo "installing Azurite ($(grep -m1 -o '"azurite": "[^"]*"' "$here/package.json")) into $dir…" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$dir/.complete"
fi
echo "$bin"
