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
