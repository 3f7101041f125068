package sip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Call control for agents: end the call once the agent has finished
// speaking, send keys (RFC 4733), and transfer the caller (REFER, RFC
// 3515). Tools reach a call by its session's ID (Server.Control).

var (
	// ErrCallEnded ends a session whose agent hung up (end_call).
	ErrCallEnded = errors.New("sip: call ended by the agent")
	// ErrNoCall means no live call has the session ID.
	ErrNoCall = errors.New("sip: no such call")
	// ErrNoTelephoneEvent means the peer did not offer telephone-event,
	// so keys cannot be sent as RFC 4733 events.
	ErrNoTelephoneEvent = errors.New("sip: the peer accepts no telephone-event")
	// ErrTransfer wraps a transfer that failed.
	ErrTransfer = errors.New("sip: transfer failed")
)

// Control is the call-control handle of one live call. Its methods are
// safe for concurrent use.
type Control struct{ c *call }

// Control returns the call a session runs on, by transport.Session.ID.
func (s *Server) Control(sessionID string) (*Control, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c.conn.ID() == sessionID {
			return &Control{c: c}, true
		}
	}
	return nil, false
}

// settle is how long the bot must stay quiet before end_call hangs up: the
// agent's last sentence may still be on its way to the speaker.
const settle = 1200 * time.Millisecond

// EndCall hangs up once the agent has finished speaking: everything it
// queued has played and nothing new came for a moment (at most 30 s).
// It returns at once; the BYE follows.
func (k *Control) EndCall() {
	c := k.c
	c.endOnce.Do(func() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			go func() { // the call ending stops the wait
				select {
				case <-c.closed:
					cancel()
				case <-ctx.Done():
				}
			}()
			for ctx.Err() == nil {
				if c.out == nil {
					break
				}
				if err := c.out.Drain(ctx, nil); err != nil {
					if c.conn.Err() != nil || isClosed(c.closed) {
						return // ended meanwhile
					}
					break
				}
				n := c.out.spoken.Load()
				t := time.NewTimer(settle)
				select {
				case <-t.C:
				case <-c.closed:
					t.Stop()
					return
				}
				if c.out.spoken.Load() == n {
					break
				}
			}
			c.log.Info("agent ends the call")
			c.close(ErrCallEnded)
		}()
	})
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// SendDTMF sends keys (0-9, *, #, A-D) as RFC 4733 events, 100 ms each
// with 60 ms between, and returns once they are sent or ctx ends.
func (k *Control) SendDTMF(ctx context.Context, keys string) error {
	for i := 0; i < len(keys); i++ {
		if strings.IndexByte(dtmfKeys, keys[i]) < 0 {
			return fmt.Errorf("%w: key %q", ErrBadDTMF, keys[i])
		}
	}
	if keys == "" {
		return nil
	}
	done, err := k.c.media.queueTones(keys)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-k.c.closed:
		return k.c.conn.Err()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Transfer asks the peer to call target (a SIP URI) instead: a REFER (RFC
// 3515), then the NOTIFYs that report the new call's progress. When the
// new call is answered voiced hangs up; when it fails the error says why
// and the call goes on.
func (k *Control) Transfer(ctx context.Context, target string) error {
	c := k.c
	var u sip.Uri
	if strings.ContainsAny(target, "<>\" \r\n") || sip.ParseUri(target, &u) != nil || u.Host == "" {
		return fmt.Errorf("%w: bad target %q", ErrTransfer, target)
	}
	c.mu.Lock()
	if c.refer != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: a transfer is already under way", ErrTransfer)
	}
	progress := make(chan int, 8)
	c.refer = progress
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.refer = nil
		c.mu.Unlock()
	}()
	req := sip.NewRequest(sip.REFER, c.remoteTarget())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+u.String()+">"))
	res, err := c.request(ctx, req)
	if err != nil {
		return fmt.Errorf("%w: REFER: %w", ErrTransfer, err)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%w: REFER answered %d %s", ErrTransfer, res.StatusCode, res.Reason)
	}
	c.log.Info("transfer accepted", "target", u.String(), "code", res.StatusCode)
	// The NOTIFYs: 1xx while the new call rings, then its final status.
	wait := time.NewTimer(60 * time.Second)
	defer wait.Stop()
	for {
		select {
		case code := <-progress:
			if code < 200 {
				continue
			}
			if code >= 300 {
				return fmt.Errorf("%w: the new call got %d", ErrTransfer, code)
			}
			c.log.Info("transferred", "target", u.String())
			c.close(ErrCallEnded)
			return nil
		case <-wait.C:
			return fmt.Errorf("%w: no outcome within a minute", ErrTransfer)
		case <-c.closed:
			return c.conn.Err()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// remoteTarget is where in-dialog requests go: the peer's Contact.
func (c *call) remoteTarget() sip.Uri { return *c.remote.Clone() }

// request sends an in-dialog request and returns its final response.
func (c *call) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	d, ok := c.dialog.(interface {
		Do(context.Context, *sip.Request) (*sip.Response, error)
	})
	if !ok {
		return nil, errors.New("sip: dialog cannot send requests")
	}
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	return d.Do(ctx, req)
}

// onNotify takes a NOTIFY of a transfer's progress (RFC 3515 §2.4.5): its
// body is a message/sipfrag status line.
func (s *Server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ev := ""
	if h := req.GetHeader("Event"); h != nil {
		ev = strings.TrimSpace(strings.SplitN(h.Value(), ";", 2)[0])
	}
	if !strings.EqualFold(ev, "refer") {
		respond(tx, req, 489, "Bad Event")
		return
	}
	respond(tx, req, 200, "OK")
	code, ok := sipfragStatus(req.Body())
	if !ok {
		return
	}
	c.mu.Lock()
	progress := c.refer
	c.mu.Unlock()
	if progress != nil {
		select {
		case progress <- code:
		default:
		}
	}
}

// sipfragStatus reads the status code of a message/sipfrag body's status
// line ("SIP/2.0 200 OK").
func sipfragStatus(body []byte) (int, bool) {
	line, _, _ := bufio.NewReader(bytes.NewReader(body)).ReadLine()
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 100 || n > 699 {
		return 0, false
	}
	return n, true
}

// toneQueue is the keys waiting to be sent, and where the sender is in
// the current one. Guarded by media.mu.
type toneQueue struct {
	keys []toneReq
	pos  int    // packets of the current key sent
	ts   uint32 // the current key's RTP timestamp
}

type toneReq struct {
	digit byte
	done  chan struct{} // closed after the last key of a request
}

// Packets of one key: 5 of the event (100 ms), 3 end packets (RFC 4733
// §2.5.1.4), then 3 of audio (60 ms) before the next key.
const (
	tonePackets = 5
	toneEnds    = 3
	toneGap     = 3
)

// queueTones queues keys for the sender.
func (m *media) queueTones(keys string) (<-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dtmfPT == 0 {
		return nil, ErrNoTelephoneEvent
	}
	done := make(chan struct{})
	for i := 0; i < len(keys); i++ {
		r := toneReq{digit: keys[i]}
		if i == len(keys)-1 {
			r.done = done
		}
		m.tonesOut.keys = append(m.tonesOut.keys, r)
	}
	return done, nil
}

// nextTone returns the telephone-event payload the sender puts out
// instead of audio on this packet, if any, with whether it starts an
// event (the marker bit) and the event's timestamp. ts is the timestamp
// the packet would have. Called with m.mu held.
func (m *media) nextTone(ts uint32) (payload []byte, start bool, evTS uint32, ok bool) {
	q := &m.tonesOut
	if len(q.keys) == 0 {
		return nil, false, 0, false
	}
	k := q.keys[0]
	pos := q.pos
	q.pos++
	if pos >= tonePackets+toneEnds { // the gap after the key
		if pos == tonePackets+toneEnds+toneGap-1 {
			q.keys, q.pos = q.keys[1:], 0
			if k.done != nil {
				close(k.done)
			}
		}
		return nil, false, 0, false
	}
	if pos == 0 {
		q.ts = ts
	}
	dur := uint32(min(pos+1, tonePackets)) * m.codec.tsStep()
	b := []byte{byte(strings.IndexByte(dtmfKeys, k.digit)), 10, byte(dur >> 8), byte(dur)}
	if pos >= tonePackets {
		b[1] |= 0x80 // End
	}
	return b, pos == 0, q.ts, true
}
