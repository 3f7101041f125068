package webrtc

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport"
)

// The chat channel of a SmallWebRTC session carries three kinds of text
// message:
//
//   - "ping: <ms>", the client's keep-alive, every second;
//   - signalling: {"type":"signalling","message":{"type":…}}: from the
//     client trackStatus {receiver_index, enabled}; from the server
//     renegotiate (the client re-offers with the same pc_id) and peerLeft
//     (the server is hanging up);
//   - RTVI messages (transport/rtvi), handled by the session's Bridge.

// signalling is a signalling message on the chat channel.
type signalling struct {
	Type    string `json:"type"`
	Message struct {
		Type          string `json:"type"`
		ReceiverIndex *int   `json:"receiver_index,omitempty"`
		Enabled       *bool  `json:"enabled,omitempty"`
	} `json:"message"`
}

// The server's signalling messages.
var (
	renegotiateMsg = []byte(`{"type":"signalling","message":{"type":"renegotiate"}}`)
	peerLeftMsg    = []byte(`{"type":"signalling","message":{"type":"peerLeft"}}`)
)

// onChat takes the first "chat" channel of pc.
func (c *smallConn) onChat(pc *pion.PeerConnection, dc *pion.DataChannel) {
	if dc.Label() != ChatLabel {
		return
	}
	// The client may send as soon as its side is open, before this side's
	// OnOpen has run: its first message adopts the channel too.
	dc.OnOpen(func() { c.adopt(pc, dc) })
	dc.OnClose(func() {
		c.mu.Lock()
		cur := c.dc == dc
		c.mu.Unlock()
		if cur {
			c.Close(fmt.Errorf("%w: chat channel closed", ErrPeerGone))
		}
	})
	dc.OnMessage(func(m pion.DataChannelMessage) {
		if !c.adopt(pc, dc) {
			return
		}
		now := time.Now().UnixNano()
		c.lastRx.Store(now)
		switch {
		case !m.IsString:
			c.Close(transport.BadInput("invalid_json", "binary chat message; send text"))
			return
		case len(m.Data) > MaxMessage:
			c.Close(transport.BadInput("too_large", "message of %d bytes is over %d", len(m.Data), MaxMessage))
			return
		}
		if strings.HasPrefix(string(m.Data), "ping") {
			c.lastPing.Store(now)
			return
		}
		if isSignalling(m.Data) {
			if err := c.signal(m.Data); err != nil {
				c.Close(err)
			}
			return
		}
		select {
		case c.msgs <- m.Data:
		default:
			c.Close(transport.BadInput("too_many_messages", "more than %d messages waiting", cap(c.msgs)))
		}
	})
}

// adopt makes dc the session's chat channel if pc is the current peer
// connection and has none yet, and reports whether dc is the session's
// chat channel. It wakes the writer.
func (c *smallConn) adopt(pc *pion.PeerConnection, dc *pion.DataChannel) bool {
	c.mu.Lock()
	if c.pc == pc && c.dc == nil {
		c.dc = dc
		c.lastPing.Store(time.Now().UnixNano())
	}
	cur := c.dc == dc
	c.mu.Unlock()
	if cur {
		select {
		case c.opened <- struct{}{}:
		default:
		}
	}
	return cur
}

// isSignalling reports whether a chat message is a signalling message:
// a JSON object whose type is "signalling".
func isSignalling(data []byte) bool {
	var env struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(data, &env) == nil && env.Type == "signalling"
}

// signal handles the client's signalling: trackStatus of the mic
// (receiver_index 0) mutes or unmutes its audio; turning on a mic that
// the peer connection cannot carry (its offer did not let it send) asks
// the client to renegotiate. Other receivers (video) are not used.
func (c *smallConn) signal(data []byte) error {
	var s signalling
	if err := json.Unmarshal(data, &s); err != nil {
		return transport.BadInput("invalid_json", "signalling: %s", transport.JSONError(err))
	}
	switch s.Message.Type {
	case "trackStatus":
		if s.Message.ReceiverIndex == nil || s.Message.Enabled == nil {
			return transport.BadInput("invalid_json", "trackStatus needs receiver_index and enabled")
		}
		if *s.Message.ReceiverIndex != 0 {
			return nil
		}
		on := *s.Message.Enabled
		if c.muted.Swap(!on) == on {
			c.Logger().Debug("mic", "enabled", on)
		}
		c.mu.Lock()
		ask := on && !c.micOK && !c.asked
		c.asked = c.asked || ask
		c.mu.Unlock()
		if ask {
			c.Enqueue(transport.Outgoing{Data: renegotiateMsg}, true)
		}
	default:
		c.Logger().Debug("unknown signalling message", "type", s.Message.Type)
	}
	return nil
}

// openChat returns the current chat channel if it is open.
func (c *smallConn) openChat() *pion.DataChannel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dc == nil || c.dc.ReadyState() != pion.DataChannelStateOpen {
		return nil
	}
	return c.dc
}

// writer is the only sender on the chat channels. It sends the session's
// messages in order on the current chat channel, waiting while a restart
// has none open; after Close it flushes them, says peerLeft, and closes
// the peer connection.
func (c *smallConn) writer() {
	defer close(c.wdone)
	defer c.closePeers()
	// send sends data on the open chat channel; until Close it waits for
	// one to open.
	send := func(data []byte) bool {
		for {
			if dc := c.openChat(); dc != nil {
				if err := dc.SendText(string(data)); err == nil {
					if dc.BufferedAmount() > maxBuffered {
						c.Close(transport.ErrSlowClient)
					}
					return true
				}
			}
			select {
			case <-c.opened:
			case <-c.Done():
				return false
			}
		}
	}
	for {
		select {
		case m := <-c.Outgoing():
			send(m.Data)
			continue
		case <-c.Done():
		}
		break
	}
	for {
		select {
		case m := <-c.Outgoing():
			if send(m.Data) {
				continue
			}
		default:
		}
		break
	}
	dc := c.openChat()
	if dc == nil {
		return
	}
	dc.SendText(string(peerLeftMsg))
	deadline := time.Now().Add(closeWait)
	for dc.BufferedAmount() > 0 && time.Now().Before(deadline) && dc.ReadyState() == pion.DataChannelStateOpen {
		time.Sleep(10 * time.Millisecond)
	}
}
