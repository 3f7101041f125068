package livekit

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport/events"
)

// event is an agent → participant data message: the same JSON events as
// the WebSocket protocol (docs/protocol.md), sent on Topic.
type event = events.Event

// eventFor maps a frame to the event it produces, if any.
func eventFor(f frame.Frame) (event, bool) { return events.For(f) }

// MaxText bounds the text of a "text" message, in bytes.
const MaxText = 4096

// message is a participant → agent data message on Topic.
type message struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// parseMessage decodes a participant's data message strictly: a JSON object
// of type "text" (with at most MaxText bytes of text) or "end", with no
// other fields. Errors wrap ErrBadMessage.
func parseMessage(data []byte) (message, error) {
	var m message
	if !utf8.Valid(data) {
		return m, fmt.Errorf("%w: not valid UTF-8", ErrBadMessage)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return m, fmt.Errorf("%w: not a JSON object", ErrBadMessage)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return m, fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	switch m.Type {
	case "text":
		if len(m.Text) > MaxText {
			return m, fmt.Errorf("%w: text of %d bytes is over %d", ErrBadMessage, len(m.Text), MaxText)
		}
	case "end":
	case "":
		return m, fmt.Errorf("%w: message has no type", ErrBadMessage)
	default:
		return m, fmt.Errorf("%w: unknown message type %q", ErrBadMessage, m.Type)
	}
	return m, nil
}
