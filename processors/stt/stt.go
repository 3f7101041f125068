// Package stt turns user speech into text: a streaming Recognizer interface
// that providers implement (in subpackages such as stt/sphinx) and the
// pipeline Processor that drives one.
package stt

import (
	"context"
	"errors"

	"github.com/voiced-dev/voiced/frame"
)

// Result is one recognition hypothesis.
type Result struct {
	Text  string
	Final bool // the utterance's last, settled result
	// Spotted, on a final result, are the words of a small vocabulary
	// (interrupt words, backchannels) that a recognizer able to spot them
	// heard in the utterance, with their times from its start, whatever
	// Text says; nil when it did not look (see frame.Transcript.Spotted).
	Spotted []frame.Word
}

// Recognizer opens recognition streams. Implementations are safe for
// concurrent use by many sessions.
type Recognizer interface {
	// Format is the audio format Send expects (the processor resamples).
	Format() frame.Format
	// Open starts recognizing one utterance.
	Open(ctx context.Context) (Stream, error)
}

// Spotter is a Recognizer that can also spot a small vocabulary in an
// utterance (Result.Spotted): OpenSpotting opens a stream whose final result
// carries what it spotted. The second pass delays the final, so the
// Processor asks for it only for speech heard while the bot speaks, which
// the turn-taking stage judges by it; other utterances are opened with Open.
type Spotter interface {
	OpenSpotting(ctx context.Context) (Stream, error)
}

// Stream recognizes one utterance. Send and Finish are called from one
// goroutine; Recv may be called from another.
type Stream interface {
	// Send feeds audio in the recognizer's Format. It must not retain pcm.
	Send(ctx context.Context, pcm []int16) error
	// Finish marks the end of the utterance's audio. The final Result follows
	// on Recv, then io.EOF.
	Finish(ctx context.Context) error
	// Recv returns the next hypothesis: interim ones while audio is sent,
	// the final one after Finish, then io.EOF.
	Recv(ctx context.Context) (Result, error)
	// Close releases the stream, abandoning pending results. Idempotent.
	Close() error
}

// ErrClosed is returned by a Stream used after Close.
var ErrClosed = errors.New("stt: stream closed")
