// Package transport holds what every edge (WebSocket, WebRTC, LiveKit, SIP)
// shares: the Session a transport hands to the program's session factory,
// the input stage that brings client audio to the pipeline's format, and the
// paced playout stage that sends the bot's voice out.
//
// A transport knows nothing about VAD, STT or agents: it turns a connection
// into an input processor, an output processor and an event observer, and
// the same session code serves every transport.
package transport

import (
	"context"
	"errors"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Session is one connection, ready to be given a pipeline.
type Session struct {
	ID string
	// In is the client's audio format, Out the format it wants back.
	In, Out frame.Format
	// Input is the first stage: it converts client audio to the pipeline's
	// format (frame.Mono16k).
	Input pipeline.Processor
	// Output is the last stage: it plays the bot's audio to the client.
	Output pipeline.Processor
	// Observer turns frames into client events.
	Observer pipeline.Observer
	// Feed pushes the client's input into p until the client ends the
	// session (it pushes frame.End and returns nil) or the connection fails
	// or misbehaves (it returns the error). ctx is the session context.
	Feed func(ctx context.Context, p *pipeline.Pipeline) error
	// Notify sends the client an event for a frame made outside the
	// pipeline (turn metrics). It does not block.
	Notify func(f frame.Frame)
	// Close ends the connection: a nil err is a normal end. Idempotent; it
	// makes a blocked Feed return.
	Close func(err error)
}

// Factory runs a conversation over s and returns when it is over. The
// program supplies it; it builds the pipeline around s.Input and s.Output.
type Factory func(ctx context.Context, s *Session) error

// ErrShuttingDown ends sessions when the server stops.
var ErrShuttingDown = errors.New("transport: server shutting down")
