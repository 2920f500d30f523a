#!/usr/bin/env bash
# Validates the Prometheus side of the deployment with promtool:
#   promtool check config deploy/prometheus/prometheus.yml   (also loads alerts.yml)
#   promtool check rules  deploy/prometheus/alerts.yml
#   promtool test rules   deploy/prometheus/alerts_test.yml  (a unit test per alert)
# Installs promtool (Debian's `prometheus` package) when it is missing and this runs as
# root with apt-get; otherwise fails with a message. Exits non-zero if any check fails.
# Works from any directory. tests/deploy_files.rs runs it in its promtool test (ignored by a
# plain `cargo test`; .ci/run runs it with --ignored).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "check.sh: promtool not found; installing Debian's prometheus package (it contains promtool)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "check.sh: promtool is required but not installed." >&2
        echo "  Debian/Ubuntu: apt-get install prometheus (as root); elsewhere: a Prometheus release" >&2
        echo "  from your package manager, with promtool on PATH." >&2
        exit 1
    fi
fi
if ! command -v promtool >/dev/null 2>&1; then
    echo "check.sh: promtool is still not on PATH after installing the prometheus package" >&2
    exit 1
fi

echo "check.sh: $(promtool --version 2>&1 | head -n 1)"

failed=0
run() {
    echo "check.sh: promtool $*"
    if promtool "$@"; then
        echo "check.sh: ok"
    else
        echo "check.sh: FAILED: promtool $*" >&2
        failed=$((failed + 1))
    fi
}

run check config deploy/prometheus/prometheus.yml
run check rules deploy/prometheus/alerts.yml
run test rules deploy/prometheus/alerts_test.yml

if [ "$failed" -ne 0 ]; then
    echo "check.sh: $failed of 3 promtool checks failed" >&2
    exit 1
fi
echo "check.sh: all 3 promtool checks passed (config, rules, rule unit tests)"
