package transport

import (
	"context"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/voiced-dev/voiced/frame"
)

// MaxText bounds the typed text of a "text" message, in bytes.
const MaxText = 4096

// Message is a client → server text message (docs/protocol.md): "start"
// (WebSocket only: the audio formats), "text" (typed input) or "end".
// Unknown fields are ignored.
type Message struct {
	Type             string `json:"type"`
	Text             string `json:"text,omitempty"`
	SampleRate       int    `json:"sample_rate,omitempty"`
	OutputSampleRate int    `json:"output_sample_rate,omitempty"`
}

// ParseMessage decodes a client's text message: a JSON object whose type
// is "text" (with at most MaxText bytes of text), "end", or — when start
// is true, for an edge whose clients choose their formats — "start".
// Errors are *ProtocolError with code invalid_utf8, invalid_json,
// unknown_type or too_large. It does not retain data.
func ParseMessage(data []byte, start bool) (Message, error) {
	var m Message
	if !utf8.Valid(data) {
		return m, BadInput("invalid_utf8", "message is not valid UTF-8")
	}
	if !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		return m, BadInput("invalid_json", "message is not a JSON object")
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, BadInput("invalid_json", "%s", JSONError(err))
	}
	switch m.Type {
	case "text", "end":
	case "start":
		if !start {
			return m, BadInput("unknown_type", "unknown message type %q", m.Type)
		}
	case "":
		return m, BadInput("unknown_type", "message has no type")
	default:
		return m, BadInput("unknown_type", "unknown message type %q", m.Type)
	}
	if len(m.Text) > MaxText {
		return m, BadInput("too_large", "text of %d bytes is over %d", len(m.Text), MaxText)
	}
	return m, nil
}

// Deliver pushes what a parsed "text" or "end" message means: typed text
// becomes one final, typed transcript (blank text is ignored), and "end"
// becomes frame.End, after which the client is done (done is true). It
// pushes nothing else: barge-in on typed text is the turn-taking stage's
// decision. Other message types are ignored.
func Deliver(ctx context.Context, p Pusher, m Message) (done bool, err error) {
	switch m.Type {
	case "text":
		text := strings.TrimSpace(m.Text)
		if text == "" {
			return false, nil
		}
		return false, p.Push(ctx, &frame.Transcript{Text: text, Final: true, Typed: true})
	case "end":
		return true, p.Push(ctx, &frame.End{Reason: "client ended"})
	}
	return false, nil
}
