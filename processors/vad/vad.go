// Package vad detects the user's speech turns: a per-chunk speech Model
// interface that providers implement (vad/silero) and a turn state machine
// processor that emits UserStartedSpeaking and UserStoppedSpeaking.
package vad

// Model creates speech analyzers. Implementations are safe for concurrent
// use; each session gets its own Analyzer.
type Model interface {
	// NewAnalyzer returns an analyzer for mono PCM16 at sampleRate.
	NewAnalyzer(sampleRate int) (Analyzer, error)
}

// Analyzer scores fixed-size chunks of audio. It keeps recurrent state
// between calls and is not safe for concurrent use.
type Analyzer interface {
	// ChunkSamples is the number of samples Speech expects per call.
	ChunkSamples() int
	// Speech returns the probability (0..1) that chunk contains speech.
	// len(chunk) must equal ChunkSamples. It must not retain chunk.
	Speech(chunk []int16) (float32, error)
	// Reset clears recurrent state.
	Reset()
	// Close releases the analyzer. Idempotent.
	Close() error
}
