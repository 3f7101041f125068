#!/usr/bin/env bash
# scripts/bench.sh — runs voiced's benchmarks and writes bench/results/:
#   micro.txt     go test -bench output (pipeline, VAD, resampler, STT, TTS);
#                 internal/bench's BenchmarkFrame repeats the harness's per-frame
#                 measurement for go test users and is not run here
#   e2e.json      voice-to-voice and barge-in times measured at a WebSocket
#                 client over loopback with the embedded components
#   results.json  the harness's measurements (per-frame overhead, turn
#                 latency with fake providers, session density with Silero)
#   endpointing.md  premature turn ends vs. response delay over the labelled
#                 endpointing set (processors/turntaking), fixed and adaptive
#   README.md     the report, with the machine, commit, load and charts (*.svg)
# Usage: bash scripts/bench.sh [--quick]   (make bench runs it after make build)
# Bounded: about 8 minutes in all (--quick: about 4).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
export VOICED_REQUIRE_MODELS=1
quick=""
count=3
e2ecount=2
if [[ "${1:-}" == "--quick" ]]; then
  quick="--quick"; count=1; e2ecount=1
fi

echo "bench: micro-benchmarks (about 2 minutes)" >&2
{
  go test -run '^$' -bench 'BenchmarkPipeline' -benchmem -count "$count" ./pipeline/
  go test -run '^$' -bench 'BenchmarkSpeech$' -benchmem -count "$count" ./processors/vad/silero/
  go test -run '^$' -bench . -benchmem -count "$count" ./processors/vad/
  go test -run '^$' -bench 'BenchmarkResample' -benchmem -count 1 ./audio/
  # Recognizer benchmarks decode a whole utterance untimed per iteration:
  # a fixed iteration count keeps them bounded.
  go test -run '^$' -bench . -benchmem -benchtime 3x -count 1 ./processors/stt/sphinx/
  go test -run '^$' -bench . -benchmem -count 1 ./processors/tts/flite/
} 2>&1 | tee "$out/micro.txt" >&2

echo "bench: voice-to-voice over WebSocket (real time, about 2 minutes)" >&2
rm -f "$out/e2e.json"
VOICED_E2E_RESULTS="$PWD/$out/e2e.json" go test -count "$e2ecount" -timeout 10m -run 'TestE2EConversation|TestE2EBargeIn' ./e2e/ >&2

echo "bench: endpointing curve over the labelled set (about 2 minutes of CPU)" >&2
VOICED_ENDPOINTING_REPORT="$PWD/$out/endpointing.md" go test -count 1 -timeout 20m -run '^TestEndpointing$' ./processors/turntaking/ >&2

echo "bench: harness: frames, turns, density (about 3 minutes)" >&2
e2eflag=()
[[ -s "$out/e2e.json" ]] && e2eflag=(--e2e "$out/e2e.json")
go run ./cmd/voiced bench $quick --out "$out" --micro "$out/micro.txt" "${e2eflag[@]}"
echo "bench: wrote $out/README.md" >&2
