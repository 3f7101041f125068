#!/usr/bin/env bash
# Installs the pinned packages of the RTVI browser test (npm ci, from
# package-lock.json) and bundles its page into e2e/rtvi/dist with esbuild.
# `make services` runs it; the test (go test ./e2e/rtvi/) serves dist/.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/.bin/esbuild ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p dist
cp index.html dist/index.html
node_modules/.bin/esbuild page/main.js --bundle --format=iife --target=es2020 \
	--log-level=warning --outfile=dist/bundle.js
echo "e2e/rtvi/dist/bundle.js"
