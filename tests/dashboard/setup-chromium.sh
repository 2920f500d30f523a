#!/usr/bin/env bash
# Installs Debian's headless browser and its WebDriver (packages chromium and
# chromium-driver) for tests/dashboard.rs when they are missing; as root with apt-get,
# otherwise it fails with what to install. CHROMIUM and CHROMEDRIVER may name other
# binaries instead.
set -euo pipefail

chromium="${CHROMIUM:-$(command -v chromium || true)}"
driver="${CHROMEDRIVER:-$(command -v chromedriver || true)}"
if [ -n "$chromium" ] && [ -x "$chromium" ] && [ -n "$driver" ] && [ -x "$driver" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (Debian packages)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
else
    echo "the dashboard tests need Chromium and ChromeDriver: apt-get install chromium chromium-driver (as root)," >&2
    echo "or set CHROMIUM and CHROMEDRIVER to their binaries" >&2
    exit 1
fi
