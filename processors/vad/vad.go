// Package vad detects the user's speech: a per-chunk speech Model interface
// that providers implement (vad/silero) and the Detector stage, a state
// machine that emits UserStartedSpeaking, UserSpeaking and
// UserStoppedSpeaking. It only reports speech: deciding whether speech
// interrupts the bot is the turn-taking stage's (processors/turntaking).
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
