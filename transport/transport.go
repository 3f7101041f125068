// Package transport is the core every edge is built on. An edge turns a
// connection — a WebSocket (transport/websocket), a WebRTC peer
// (transport/webrtc), a LiveKit room participant (transport/livekit), a SIP
// phone call (transport/sip), a carrier's media stream (transport/carrier) —
// into
// a Session: an input stage that brings the client's audio to the
// pipeline's format, a paced playout stage that sends the bot's voice out,
// an observer that turns frames into client events, and a Feed that pushes
// the client's input. The program's Factory (session.Builder.Run) builds
// the pipeline around it, and Run drives it.
//
// What every edge shares lives here, once:
//
//   - Conn, the session skeleton: the outbound queue of events (and, for
//     an edge that sends audio on the same connection, audio) with the
//     slow-client policy (interim transcripts may be dropped; any other
//     message that cannot be queued ends the session with ErrSlowClient),
//     close-once with an error event, and Notify.
//   - The protocol's events (Event, EventFor) and client messages
//     (ParseMessage, Conn.Deliver) of docs/protocol.md, and its error codes
//     (ErrorCode).
//   - Admission: one limit on live sessions across all edges of a server,
//     and Shutdown.
//   - Run: the Run/Feed/Close sequence of one session.
//
// The RTP audio receive path (jitter buffer, loss concealment) that RTP
// edges share is in transport/rtpaudio.
//
// A transport knows nothing about VAD, STT or agents, and it never
// interrupts the bot: it pushes frames (typed text included) and the
// pipeline's turn-taking stage decides.
package transport

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Pusher is the pipeline's entry as a transport sees it. Push hands f to
// the first stage; it blocks while the stage's lane is full and returns
// ctx's error, or the pipeline's once it has stopped. *pipeline.Pipeline
// implements it. A transport pushes frames and does nothing else to the
// pipeline.
type Pusher interface {
	Push(ctx context.Context, f frame.Frame) error
}

// Session is one connection, ready to be given a pipeline. An edge builds
// it (usually with Conn.Session) and hands it to the Factory.
type Session struct {
	ID string
	// Kind names the edge ("websocket", "webrtc", "livekit", "sip"): traces and
	// metrics are labelled with it.
	Kind string
	// Start is what the client gave the session when it started it
	// (JSON, nil for none: the body of an RTVI /start), handed to the
	// agents as agents.SessionInfo.Start.
	Start json.RawMessage
	// Metadata is what the edge knows of the session besides its audio,
	// for agents' conditions (docs/agents.md): a SIP call's dialed user
	// part ("sip.to") and caller ("sip.from"), a start request's body
	// ("body.<field>", see MetadataFromJSON). Keys are dotted. Nil when
	// there is none.
	Metadata map[string]string
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
	// or misbehaves (it returns the error). ctx is the session context:
	// Feed returns when it ends.
	Feed func(ctx context.Context, p Pusher) error
	// Notify sends the client an event for a frame made outside the
	// pipeline (turn metrics). It does not block.
	Notify func(f frame.Frame)
	// Close ends the connection: a nil err is a normal end. Idempotent; it
	// makes a blocked Feed return.
	Close func(err error)
}

// Factory runs a conversation over s and returns when it is over. The
// program supplies it (session.Builder.Run); it builds the pipeline around
// s.Input and s.Output and calls Run.
type Factory func(ctx context.Context, s *Session) error

// Pipeline is what Run drives: *pipeline.Pipeline implements it.
type Pipeline interface {
	Pusher
	Run(ctx context.Context) error
}

// Run runs p and s.Feed together until the conversation is over, closes s
// with the outcome and returns it:
//
//   - the pipeline ends first (an error, or End drained): s is closed with
//     its error and Feed is stopped;
//   - Feed returns nil (the client pushed End): the pipeline drains what is
//     queued, then s is closed with the pipeline's result;
//   - Feed fails (the client went away or misbehaved): the pipeline is
//     cancelled with that error as the cause, and that error is the
//     session's.
//
// No goroutine Run starts outlives it.
func Run(ctx context.Context, s *Session, p Pipeline) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runc := make(chan error, 1)
	go func() { runc <- p.Run(ctx) }()
	feedc := make(chan error, 1)
	go func() { feedc <- s.Feed(ctx, p) }()

	select {
	case err = <-runc:
		s.Close(err)
		cancel(context.Canceled)
		<-feedc
	case ferr := <-feedc:
		if ferr != nil {
			// The client went away or misbehaved: stop now.
			cancel(ferr)
			err = <-runc
			if errors.Is(err, ferr) || errors.Is(err, context.Canceled) {
				err = ferr
			}
		} else {
			err = <-runc // End was pushed: drain
		}
		s.Close(err)
	}
	return err
}
