#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser test (playwright-core drives it; no browser is
# downloaded from elsewhere), unless it is there. The test uses $CHROMIUM, by default /usr/bin/chromium
# (the Debian package's; a `chromium` elsewhere on the PATH, such as a snap stub, does not count).
set -euo pipefail
browser=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$browser" ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "install-browser: $browser is missing and installing Debian's chromium needs root or sudo" >&2
  exit 1
fi
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends chromium)
echo "installing Debian's chromium…"
$sudo "${apt[@]}" >/dev/null || { $sudo apt-get -o DPkg::Lock::Timeout=120 update -qq && $sudo "${apt[@]}" >/dev/null; }
"$browser" --version
