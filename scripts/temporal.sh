#!/bin/sh
# Builds the Temporal CLI (whose "server start-dev" runs the dev server used by
# the Temporal durable-engine tests) and caches it at
# ${VOICED_CACHE:-$HOME/.cache/voiced}/bin/temporal (outside git).
# Idempotent: an existing binary of the pinned version is kept. Prints the
# binary's path on stdout.
#
# The build takes several minutes and needs no cgo.
set -eu
VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
CACHE_DIR="${VOICED_CACHE:-$HOME/.cache/voiced}"
BIN_DIR="$CACHE_DIR/bin"
BIN="$BIN_DIR/temporal"
STAMP="$BIN_DIR/temporal.version"

if [ -x "$BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
	echo "$BIN"
	exit 0
fi
mkdir -p "$BIN_DIR"
TMP="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "building temporal CLI $VERSION (several minutes)..." >&2
# Build outside the voiced module so that its go.mod does not interfere.
(cd "$TMP" && GOFLAGS=-mod=mod GOBIN="$TMP" CGO_ENABLED=0 \
	go install "github.com/temporalio/cli/cmd/temporal@$VERSION")
mv "$TMP/temporal" "$BIN"
echo "$VERSION" >"$STAMP"
echo "$BIN"
