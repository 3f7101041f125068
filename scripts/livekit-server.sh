#!/bin/sh
# Builds the LiveKit server used by the LiveKit integration tests and caches
# it at ${VOICED_CACHE:-$HOME/.cache/voiced}/bin/livekit-server (outside git).
# Idempotent: an existing binary of the pinned version is kept. Prints the
# binary's path on stdout.
#
# v1.13.4 is the newest release that builds from the module proxy here; the
# build takes a few minutes and needs no cgo.
set -eu
VERSION="${LIVEKIT_SERVER_VERSION:-v1.13.4}"
CACHE_DIR="${VOICED_CACHE:-$HOME/.cache/voiced}"
BIN_DIR="$CACHE_DIR/bin"
BIN="$BIN_DIR/livekit-server"
STAMP="$BIN_DIR/livekit-server.version"

if [ -x "$BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
	echo "$BIN"
	exit 0
fi
mkdir -p "$BIN_DIR"
TMP="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "building livekit-server $VERSION (a few minutes)..." >&2
# Build outside the voiced module so that its go.mod does not interfere.
(cd "$TMP" && GOFLAGS=-mod=mod GOBIN="$TMP" GONOSUMDB=github.com/livekit \
	go install "github.com/livekit/livekit-server/cmd/server@$VERSION")
mv "$TMP/server" "$BIN"
echo "$VERSION" >"$STAMP"
echo "$BIN"
