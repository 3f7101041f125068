package livekit

import (
	"fmt"

	"github.com/voiced-dev/voiced/transport"
)

// parseMessage decodes a participant's data message with the protocol's
// shared rules (transport.ParseMessage): a JSON object of type "text"
// (with at most transport.MaxText bytes of text) or "end". Errors wrap
// ErrBadMessage and the *transport.ProtocolError.
func parseMessage(data []byte) (transport.Message, error) {
	m, err := transport.ParseMessage(data, false)
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return m, nil
}
