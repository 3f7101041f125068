#!/usr/bin/env bash
# End-to-end test of the web demo: starts voiced, plays synthesized speech into
# headless Chromium's fake microphone, and checks the page shows a final
# transcript and plays the reply. Usage:
#
#   e2e/browser/run.sh [--webrtc] [path/to/voiced]   (default: bin/voiced in the repo root)
#
# With --webrtc the page talks over WebRTC instead of the WebSocket
# (webrtc.test.mjs), and the test also checks that barge-in silences the
# reply. The server then runs with a 1.5 s first-token delay (see below), so
# the page's voice-to-voice numbers include it; it writes
# e2e/out/demo-webrtc.png.
#
# Needs node, /usr/bin/chromium, flite and sox (Debian packages). Installs
# playwright-core from the lockfile on first run; never downloads a browser.
# Writes e2e/out/demo.png. Exits non-zero on failure, after printing the
# page's console log and the tail of the server log.
#
# Environment: E2E_TIMEOUT_MS (wait for the spoken turn, default 30000),
# E2E_LOOP=1 (the fake microphone repeats the speech instead of playing it
# once followed by silence), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
webrtc=0
if [[ ${1:-} == --webrtc ]]; then
  webrtc=1
  shift
fi
bin=${1:-$root/bin/voiced}
chromium=${CHROMIUM:-/usr/bin/chromium}

die() { echo "run.sh: $*" >&2; exit 1; }

[[ -x $bin ]] || die "no executable voiced binary at $bin (build it: go build -o bin/voiced ./cmd/voiced)"
[[ -x $chromium ]] || die "no Chromium at $chromium (apt-get install chromium)"
for tool in node npm flite sox curl timeout; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

if [[ ! -d $here/node_modules/playwright-core ]]; then
  echo "run.sh: installing playwright-core from package-lock.json" >&2
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --ignore-scripts --no-audit --no-fund >&2) ||
    die "npm ci failed"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/voiced-e2e.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_tail() {
  echo "---- server log (last 60 lines) ----" >&2
  tail -n 60 "$tmp/server.log" >&2 || true
}

# A free loopback port: the kernel picks one, we release it and hand it on.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

config=()
test_script=demo.test.mjs
query="autostart=1"
if ((webrtc)); then
  # Answers start 1.5 s late, so that the answer to the typed interruption
  # does not fill the silence the barge-in check listens for.
  printf '[llm.scripted]\nfirst_token_delay = "1500ms"\n' >"$tmp/voiced.toml"
  config=(--config "$tmp/voiced.toml")
  test_script=webrtc.test.mjs
  query="autostart=1&transport=webrtc"
fi

"$bin" serve --addr "127.0.0.1:$port" "${config[@]}" >"$tmp/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 30))
until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/healthz" || true) == 200 ]]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    server_tail
    die "voiced exited before /healthz answered"
  fi
  if ((SECONDS >= deadline)); then
    server_tail
    die "/healthz did not return 200 within 30 s"
  fi
  sleep 0.2
done

# Speech, then 4 s of silence: the server's VAD needs the silence to end the
# turn, and with E2E_LOOP=1 it lets the reply play before the speech repeats.
timeout 30 flite -voice slt -t "hello what can you do" -o "$tmp/speech.wav"
timeout 30 sox "$tmp/speech.wav" "$tmp/input.wav" pad 0.3 4

mkdir -p "$root/e2e/out"
rc=0
timeout_ms=${E2E_TIMEOUT_MS:-30000}
[[ $timeout_ms =~ ^[0-9]+$ ]] || die "E2E_TIMEOUT_MS must be a number of milliseconds"
loop=()
[[ ${E2E_LOOP:-0} == 1 ]] && loop=(--loop)
timeout $((timeout_ms / 1000 + 120)) node "$here/$test_script" \
  --timeout-ms "$timeout_ms" "${loop[@]}" \
  --url "http://127.0.0.1:$port/?$query" \
  --wav "$tmp/input.wav" \
  --out "$root/e2e/out" \
  --chromium "$chromium" || rc=$?

if ((rc != 0)); then
  ((rc == 124)) && echo "run.sh: the browser test timed out" >&2
  server_tail
  exit "$rc"
fi
