// Package tts turns the agent's text into speech: a streaming Synthesizer
// interface that providers implement (in subpackages such as tts/flite) and
// the pipeline Processor that aggregates text into sentences and drives one.
package tts

import (
	"context"

	"github.com/voiced-dev/voiced/frame"
)

// Synthesizer speaks text. Implementations are safe for concurrent use.
type Synthesizer interface {
	// Format is the format of the audio Synthesize produces.
	Format() frame.Format
	// Synthesize speaks text with the named voice ("" for the default) and
	// calls emit with each chunk of audio as soon as it is made. emit must
	// not retain pcm. Synthesize stops early and returns ctx's error when ctx
	// is cancelled, and returns emit's error if emit fails.
	Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error
}

// WordSynthesizer is implemented by synthesizers that know when each word
// of a sentence is spoken (ElevenLabs' character alignment, Cartesia's word
// timestamps). The Processor uses it when it can, so that the words played
// of a sentence cut off by barge-in are known exactly.
type WordSynthesizer interface {
	Synthesizer
	// SynthesizeWords is Synthesize that also calls words with the
	// timings of words as they become known, in the order spoken, each
	// word once. Times are measured from the start of the sentence's audio
	// (the first sample passed to emit). words is called on Synthesize's
	// goroutine and must not retain its argument.
	SynthesizeWords(ctx context.Context, text, voice string, emit func(pcm []int16) error, words func([]frame.Word)) error
}
