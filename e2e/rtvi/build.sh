#!/usr/bin/env bash
# Installs the pinned packages of the RTVI browser tests (npm ci, from
# package-lock.json) and bundles their pages into e2e/rtvi/dist with
# esbuild: page/main.js (WebSocket transport) → bundle.js,
# page/smallwebrtc.js (SmallWebRTC transport) → smallwebrtc.js, and
# console/page.jsx (voice-ui-kit's ConsoleTemplate, its own packages in
# console/package-lock.json) → console.js and console.css.
# `make services` runs it; the tests (go test ./e2e/rtvi/) serve dist/.
set -euo pipefail
cd "$(dirname "$0")"
install() { # dir
	if [ ! -x "$1/node_modules/.bin/esbuild" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
		(cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
	fi
}
install .
install console
mkdir -p dist
cp ./*.html console/console.html dist/
bundle() {
	node_modules/.bin/esbuild "$1" --bundle --format=iife --target=es2020 \
		--log-level=warning --outfile="$2"
	echo "e2e/rtvi/$2"
}
if [ -f page/main.js ]; then bundle page/main.js dist/bundle.js; fi
bundle page/smallwebrtc.js dist/smallwebrtc.js
# The UI kit loads the transport it is given by dynamic import; the ones
# the page does not use are not installed, and stay unresolved imports.
console/node_modules/.bin/esbuild console/page.jsx --bundle --format=iife --target=es2020 \
	--jsx=automatic --minify --define:process.env.NODE_ENV='"production"' \
	--external:@pipecat-ai/daily-transport --external:@pipecat-ai/small-webrtc-transport \
	--external:@pipecat-ai/livekit-transport --external:@pipecat-ai/moq-transport --external:three \
	--log-level=warning --outfile=dist/console.js
echo "e2e/rtvi/dist/console.js"
