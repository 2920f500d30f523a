#!/usr/bin/env bash
# Installs Debian's `nats-server` package for the cluster crate's JetStream tests
# (src/cluster/tests/jetstream.rs) when it is not on PATH; as root with apt-get, otherwise
# it fails and says what to install. The tests themselves start the server on loopback.
set -euo pipefail

if command -v nats-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nats-server (Debian package)" >&2
    if apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >/dev/null \
        && command -v nats-server >/dev/null 2>&1; then
        exit 0
    fi
    echo "installing Debian's nats-server package failed: the cluster tests cannot run" >&2
    exit 1
fi
echo "the cluster tests need nats-server on PATH: apt-get install nats-server (as root)" >&2
exit 1
