#!/bin/sh
# Runs the durable-workflow tests against a real Redis as well as the
# embedded store; fails (instead of skipping) when redis-server is missing.
# The tests start their own redis-server (Debian package: redis-server) on a
# free loopback port with a temporary directory.
set -eu
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1; then
	echo "redis-server not found: apt-get install -y redis-server" >&2
	exit 1
fi
VOICED_REQUIRE_SERVICES=1 exec go test -race -count=1 "$@" ./agents/durable/...
