#!/usr/bin/env bash
# Installs the pinned packages of the RTVI browser tests (npm ci, from
# package-lock.json) and bundles their pages into e2e/rtvi/dist with
# esbuild: page/main.js (WebSocket transport) → bundle.js, and
# page/smallwebrtc.js (SmallWebRTC transport) → smallwebrtc.js.
# `make services` runs it; the tests (go test ./e2e/rtvi/) serve dist/.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/.bin/esbuild ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p dist
cp ./*.html dist/
bundle() {
	node_modules/.bin/esbuild "$1" --bundle --format=iife --target=es2020 \
		--log-level=warning --outfile="$2"
	echo "e2e/rtvi/$2"
}
if [ -f page/main.js ]; then bundle page/main.js dist/bundle.js; fi
bundle page/smallwebrtc.js dist/smallwebrtc.js
