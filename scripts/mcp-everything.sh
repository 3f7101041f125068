#!/usr/bin/env bash
# Installs @modelcontextprotocol/server-everything, the reference MCP server
# the agents/mcp tests run over stdio, from the lockfile in
# agents/mcp/testdata/everything (npm ci; nothing is installed globally).
# Does nothing when it is already installed at the locked version.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$root/agents/mcp/testdata/everything
command -v npm >/dev/null || { echo "mcp-everything: npm is not installed" >&2; exit 1; }
want=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/@modelcontextprotocol/server-everything"].version)' "$dir/package-lock.json")
have=$(node -e 'try{console.log(require(process.argv[1]).version)}catch(e){}' "$dir/node_modules/@modelcontextprotocol/server-everything/package.json" 2>/dev/null || true)
if [[ $have != "$want" ]]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
