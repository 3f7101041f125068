package websocket

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	shared "github.com/voiced-dev/voiced/transport/events"
)

// event is a server → client JSON message (docs/protocol.md).
type event = shared.Event

// eventFor maps a frame to the client event it produces, if any.
func eventFor(f frame.Frame) (event, bool) { return shared.For(f) }

// observer turns each new frame into an event on c.
type observer struct{ c *conn }

func (o observer) OnHop(h pipeline.Hop) {
	if !h.First {
		return
	}
	o.c.notify(h.Frame)
}

func (c *conn) notify(f frame.Frame) {
	ev, ok := eventFor(f)
	if !ok {
		return
	}
	if iv, ok := shared.Interrupted(f); ok {
		c.sendEvent(iv, true)
	}
	// Interim transcripts may be dropped for a slow client; the rest may not.
	c.sendEvent(ev, !shared.Optional(ev))
}

func (c *conn) sendEvent(ev event, must bool) {
	ev.TMs = time.Since(c.start).Milliseconds()
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	c.enqueue(outMsg{text: true, data: b}, must)
}

// errorCode gives the protocol's error code and close code for err.
func errorCode(err error) (string, int) {
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		return pe.code, pe.close
	case errors.Is(err, errShutdown):
		return "shutting_down", 1001
	case errors.Is(err, errSlowClient):
		return "slow_client", 1008
	}
	return "internal", 1011
}
