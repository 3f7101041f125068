#!/usr/bin/env bash
# bench/run.sh — runs voiced's benchmarks and writes bench/results/:
#   micro.txt   go test -bench output (pipeline, VAD, resampler, STT, TTS)
#   e2e.json    voice-to-voice and barge-in times measured at a WebSocket
#               client over loopback with the embedded components
#   README.md   the report, with the machine and the commit
# Usage: bash bench/run.sh   (make bench runs it after make setup)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
export VOICED_REQUIRE_MODELS=1

echo "bench: micro-benchmarks" >&2
{
  go test -run '^$' -bench 'BenchmarkPipeline' -benchmem -count 5 ./pipeline/
  go test -run '^$' -bench 'BenchmarkSpeech$' -benchmem -count 3 ./processors/vad/silero/
  go test -run '^$' -bench . -benchmem -count 3 ./processors/vad/
  go test -run '^$' -bench 'BenchmarkResample' -benchmem -count 3 ./audio/
  go test -run '^$' -bench . -benchmem -count 3 ./processors/stt/sphinx/
  go test -run '^$' -bench . -benchmem -count 3 ./processors/tts/flite/
} 2>&1 | tee "$out/micro.txt" >&2

echo "bench: voice-to-voice over WebSocket (real time, about 3 minutes)" >&2
rm -f "$out/e2e.json"
VOICED_E2E_RESULTS="$PWD/$out/e2e.json" go test -count 3 -timeout 20m -run 'TestE2EConversation|TestE2EBargeIn' ./e2e/ >&2

go run ./bench/report -micro "$out/micro.txt" -e2e "$out/e2e.json" > "$out/README.md"
echo "bench: wrote $out/README.md" >&2
