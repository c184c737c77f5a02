#!/usr/bin/env bash
# Debian's Chromium and its ChromeDriver for the ops console's browser test (tests/e2e/test_console_browser.py).
# Check-and-install, idempotent: nothing happens when both are present. The browser comes from apt, never
# from a test tool's own download.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
install="apt-get update && apt-get install -y chromium chromium-driver"
if [ "$(id -u)" -eq 0 ]; then
  echo "==> installing Debian's chromium and chromium-driver (browser test of the ops console)"
  DEBIAN_FRONTEND=noninteractive bash -c "$install"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  echo "==> installing Debian's chromium and chromium-driver with sudo (browser test of the ops console)"
  sudo DEBIAN_FRONTEND=noninteractive bash -c "$install"
else
  echo "The ops console's browser test needs Debian's Chromium: run  sudo bash -c '$install'" >&2
  exit 1
fi
