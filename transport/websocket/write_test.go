package websocket

import (
	"errors"
	"os"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

// A write that times out is a client that stopped reading: slow_client,
// not an i/o timeout reported as a client that went away.
func TestWriteError(t *testing.T) {
	err := writeError(os.ErrDeadlineExceeded)
	if !errors.Is(err, transport.ErrSlowClient) || transport.ErrorCode(err) != "slow_client" {
		t.Errorf("timed-out write: %v (code %q), want slow_client", err, transport.ErrorCode(err))
	}
	err = writeError(errors.New("broken pipe"))
	if !errors.Is(err, transport.ErrClientGone) || transport.ErrorCode(err) != "" {
		t.Errorf("failed write: %v, want client gone", err)
	}
}
