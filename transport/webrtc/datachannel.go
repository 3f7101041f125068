package webrtc

import (
	"fmt"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport"
)

// onDataChannel takes the peer's first "events" channel: its messages go
// to Feed, and the writer sends the session's events on it.
func (c *conn) onDataChannel(dc *pion.DataChannel) {
	if dc.Label() != EventsLabel {
		return
	}
	c.dcMu.Lock()
	if c.dc != nil {
		c.dcMu.Unlock()
		return
	}
	c.dc = dc
	c.dcMu.Unlock()
	dc.OnOpen(func() { close(c.dcOpen) })
	dc.OnClose(func() { c.Close(fmt.Errorf("%w: event channel closed", ErrPeerGone)) })
	dc.OnMessage(func(m pion.DataChannelMessage) {
		c.lastRx.Store(time.Now().UnixNano())
		switch {
		case !m.IsString:
			c.Close(transport.BadInput("invalid_json", "binary data-channel message; send JSON text"))
			return
		case len(m.Data) > MaxMessage:
			c.Close(transport.BadInput("too_large", "message of %d bytes is over %d", len(m.Data), MaxMessage))
			return
		}
		select {
		case c.msgs <- m.Data:
		default:
			c.Close(transport.BadInput("too_many_messages", "more than %d messages waiting", cap(c.msgs)))
		}
	})
}

// parseMessage parses a data-channel message: "text" or "end" (the formats
// are fixed by the SDP, so there is no "start").
func parseMessage(data []byte) (transport.Message, error) { return transport.ParseMessage(data, false) }

// closeWait bounds how long a closed session waits for its last events to
// leave before the peer connection is closed.
const closeWait = time.Second

// maxBuffered is how many bytes of events may wait in the data channel
// before the peer counts as too slow.
const maxBuffered = 1 << 20

// writer is the only sender on the events channel. It waits for the channel
// to open, sends events in order, and after Close flushes them and closes
// the peer connection.
func (c *conn) writer() {
	defer close(c.wdone)
	defer c.pc.Close()
	select {
	case <-c.dcOpen:
	case <-c.Done():
		select {
		case <-c.dcOpen:
		default:
			return // never opened: nothing to flush
		}
	}
	c.dcMu.Lock()
	dc := c.dc
	c.dcMu.Unlock()
	send := func(m transport.Outgoing) bool {
		if err := dc.SendText(string(m.Data)); err != nil {
			return false
		}
		if dc.BufferedAmount() > maxBuffered {
			c.Close(transport.ErrSlowClient)
		}
		return true
	}
	for {
		select {
		case m := <-c.Outgoing():
			if !send(m) {
				c.Close(fmt.Errorf("%w: send event", ErrPeerGone))
			}
			continue
		case <-c.Done():
		}
		break
	}
	for {
		select {
		case m := <-c.Outgoing():
			if send(m) {
				continue
			}
		default:
		}
		break
	}
	deadline := time.Now().Add(closeWait)
	for dc.BufferedAmount() > 0 && time.Now().Before(deadline) && dc.ReadyState() == pion.DataChannelStateOpen {
		time.Sleep(10 * time.Millisecond)
	}
}
