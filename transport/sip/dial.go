package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voiced-dev/voiced/transport"
)

// Outbound calls: voiced dials a SIP URI through a trunk (or straight to
// the URI's host), answers the trunk's digest challenges, and runs a
// session once the call is answered. The call's progress is a list of
// events (trying, ringing, answered, ended with a reason).

// Trunk is a SIP trunk or outbound proxy that calls go through.
type Trunk struct {
	// Name picks the trunk of a call (DialRequest.Trunk).
	Name string
	// Address is the trunk's host:port (port default 5060).
	Address string
	// Transport is "udp" (default) or "tcp". voiced must listen on it.
	Transport string
	// Username and Password answer 401/407 digest challenges.
	Username, Password string
	// From is the caller ID, a user part or a SIP URI (default Username,
	// else "voiced").
	From string
}

// DialRequest describes an outbound call.
type DialRequest struct {
	// To is a SIP URI (sip:user@host), or a user part or number that the
	// trunk routes (sip:To@trunk-host).
	To string
	// From overrides the trunk's caller ID: a user part or a SIP URI.
	From string
	// Trunk names the trunk (default: the first; with none configured
	// the call goes straight to To's host).
	Trunk string
	// Run is the session of the call (default: the server's factory).
	Run transport.Factory
	// RingTimeout gives up on a call not answered in time (default 60 s).
	RingTimeout time.Duration
}

// CallState is a stage of an outbound call.
type CallState string

const (
	StateTrying   CallState = "trying"
	StateRinging  CallState = "ringing"
	StateAnswered CallState = "answered"
	StateEnded    CallState = "ended"
)

var rank = map[CallState]int{StateTrying: 0, StateRinging: 1, StateAnswered: 2, StateEnded: 3}

// End reasons of an outbound call (CallEvent.Reason).
const (
	ReasonCompleted    = "completed"     // the session ended and voiced hung up
	ReasonRemoteHangup = "remote_hangup" // the callee hung up
	ReasonHangup       = "hangup"        // Hangup (DELETE /calls/{id}) after the answer
	ReasonCancelled    = "cancelled"     // Hangup before the answer
	ReasonBusy         = "busy"          // 486, 600
	ReasonNoAnswer     = "no_answer"     // 408, 480, or the ring timeout
	ReasonRejected     = "rejected"      // 403, 404, 603, other 4xx-6xx
	ReasonAuthFailed   = "auth_failed"   // the trunk refused the credentials
	ReasonFailed       = "failed"        // no answer from the trunk, bad SDP, transport errors
	ReasonMediaTimeout = "media_timeout" // the callee's RTP stopped
	ReasonShutdown     = "shutdown"      // the server is shutting down
)

// CallEvent is one step of an outbound call.
type CallEvent struct {
	State CallState `json:"state"`
	// Code is the SIP status that caused the step, when one did.
	Code int `json:"code,omitempty"`
	// Reason says why the call ended (Reason* constants).
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

// Call is an outbound call. Its methods are safe for concurrent use.
type Call struct {
	id, to string
	cancel context.CancelCauseFunc // before the answer
	done   chan struct{}

	mu      sync.Mutex
	events  []CallEvent
	changed chan struct{} // closed and replaced on each event
	session func(error)   // ends the session, once answered
	ended   time.Time
}

// ID is the call's identifier (not its SIP Call-ID).
func (c *Call) ID() string { return c.id }

// To is the URI dialed.
func (c *Call) To() string { return c.to }

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Events returns the call's events so far, and a channel closed when
// there are more.
func (c *Call) Events() ([]CallEvent, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CallEvent(nil), c.events...), c.changed
}

// Status returns the call's latest event.
func (c *Call) Status() CallEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[len(c.events)-1]
}

// Hangup ends the call: a CANCEL before the answer, a BYE after.
// Idempotent.
func (c *Call) Hangup() { c.stop(errHangup) }

// stop ends the call with err: the dial before the answer, the session
// after.
func (c *Call) stop(err error) {
	c.cancel(err)
	c.mu.Lock()
	end := c.session
	c.mu.Unlock()
	if end != nil {
		end(err)
	}
}

var errHangup = errors.New("sip: hung up by voiced")

func (c *Call) event(ev CallEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A call only moves forward (a late 100 after a 180 is not news);
	// ringing may repeat with a new code (180, then 183).
	last := c.events[len(c.events)-1]
	if rank[ev.State] < rank[last.State] || ev.State == last.State &&
		(ev.State != StateRinging || ev.Code == last.Code) {
		return
	}
	ev.Time = time.Now()
	c.events = append(c.events, ev)
	close(c.changed)
	c.changed = make(chan struct{})
	if ev.State == StateEnded {
		c.ended = ev.Time
	}
}

var (
	// ErrNoTrunk means a call names a trunk that is not configured, or
	// gives no host with none configured.
	ErrNoTrunk = errors.New("sip: no such trunk")
	// ErrBadURI wraps a To or From that is not a SIP URI.
	ErrBadURI = errors.New("sip: bad URI")
	// ErrNotListening means the server has no listener for the trunk's
	// transport, so the callee could not reach it.
	ErrNotListening = errors.New("sip: not listening on the call's transport")
)

// keepEnded is how long an ended call stays in Lookup.
const keepEnded = 10 * time.Minute

// Dial places a call. It returns once the call is admitted and its INVITE
// is on its way; the call then goes on by itself until it ends (follow
// it with Events). Calls count against the Admission like inbound ones:
// over the limit Dial returns its error (transport.ErrBusy).
func (s *Server) Dial(req DialRequest) (*Call, error) {
	trunk, err := s.trunk(req.Trunk, req.To)
	if err != nil {
		return nil, err
	}
	to, err := recipient(req.To, trunk)
	if err != nil {
		return nil, err
	}
	network := "udp"
	if strings.EqualFold(trunk.Transport, "tcp") {
		network = "tcp"
	} else if t, ok := to.UriParams.Get("transport"); ok && strings.EqualFold(t, "tcp") && trunk.Address == "" {
		network = "tcp"
	}
	s.mu.Lock()
	listen, ok := s.listen[network]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w (%s)", ErrNotListening, network)
	}
	fromText := req.From
	if fromText == "" {
		fromText = trunk.From
	}
	if fromText == "" {
		fromText = trunk.Username
	}
	if fromText == "" {
		fromText = "voiced"
	}
	dest := trunk.Address
	if dest == "" {
		dest = to.HostPort()
	} else if _, _, err := net.SplitHostPort(dest); err != nil {
		dest = net.JoinHostPort(dest, "5060")
	}
	local := s.localIPTo(resolve(dest), listen.Addr())
	from, err := fromURI(fromText, local, trunk)
	if err != nil {
		return nil, err
	}
	ticket, err := s.adm.Admit()
	if err != nil {
		return nil, err
	}
	ringFor := req.RingTimeout
	if ringFor <= 0 {
		ringFor = 60 * time.Second
	}
	var b [8]byte
	rand.Read(b[:])
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &Call{id: hex.EncodeToString(b[:]), to: to.String(), cancel: cancel, done: make(chan struct{}),
		changed: make(chan struct{}), events: []CallEvent{{State: StateTrying, Time: time.Now()}}}
	run := req.Run
	if run == nil {
		run = s.run
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ticket.Release()
		return nil, transport.ErrShuttingDown
	}
	s.dials.Add(1)
	s.active++
	for id, old := range s.outbound {
		if !old.ended.IsZero() && time.Since(old.ended) > keepEnded {
			delete(s.outbound, id)
		}
	}
	s.outbound[c.id] = c
	s.mu.Unlock()
	ticket.Attach(c.stop)
	go func() {
		defer s.dials.Done()
		defer close(c.done)
		defer ticket.Release()
		defer func() {
			s.mu.Lock()
			s.active--
			s.mu.Unlock()
		}()
		defer cancel(nil)
		o := &outCall{s: s, c: c, run: run, to: to, from: from, trunk: trunk, network: network,
			local: local, listen: listen, ringFor: ringFor}
		o.log = s.log.With("call", c.id, "to", to.String())
		code, reason := o.dial(ctx)
		c.event(CallEvent{State: StateEnded, Code: code, Reason: reason})
	}()
	return c, nil
}

// Lookup returns an outbound call by ID: a live one, or one that ended in
// the last ten minutes.
func (s *Server) Lookup(id string) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outbound[id]
}

// trunk picks the trunk of a call.
func (s *Server) trunk(name, to string) (Trunk, error) {
	if name == "" {
		if len(s.cfg.Trunks) > 0 {
			return s.cfg.Trunks[0], nil
		}
		if !strings.Contains(to, "@") {
			return Trunk{}, fmt.Errorf("%w: %q names no host and no trunk is configured", ErrNoTrunk, to)
		}
		return Trunk{}, nil
	}
	for _, t := range s.cfg.Trunks {
		if t.Name == name {
			return t, nil
		}
	}
	return Trunk{}, fmt.Errorf("%w: %q", ErrNoTrunk, name)
}

// recipient is the Request-URI of a call to to.
func recipient(to string, trunk Trunk) (sip.Uri, error) {
	var u sip.Uri
	if !strings.HasPrefix(strings.ToLower(to), "sip:") {
		if strings.HasPrefix(strings.ToLower(to), "sips:") {
			return u, fmt.Errorf("%w: %q: sips is not supported", ErrBadURI, to)
		}
		if to == "" || strings.ContainsAny(to, "@<>\" \t\r\n;:") || trunk.Address == "" {
			return u, fmt.Errorf("%w: %q: want sip:user@host, or a number with a trunk", ErrBadURI, to)
		}
		host, _, err := net.SplitHostPort(trunk.Address)
		if err != nil {
			host = trunk.Address
		}
		to = "sip:" + to + "@" + host
	}
	if strings.ContainsAny(to, "<>\" \t\r\n") {
		return u, fmt.Errorf("%w: %q", ErrBadURI, to)
	}
	if err := sip.ParseUri(to, &u); err != nil || u.Host == "" {
		return u, fmt.Errorf("%w: %q", ErrBadURI, to)
	}
	return u, nil
}

// fromURI is the From URI: a user part at the trunk's host (or ours), or
// a full SIP URI.
func fromURI(from string, local netip.Addr, trunk Trunk) (sip.Uri, error) {
	var u sip.Uri
	if strings.HasPrefix(strings.ToLower(from), "sip:") {
		if strings.ContainsAny(from, "<>\" \t\r\n") || sip.ParseUri(from, &u) != nil {
			return u, fmt.Errorf("%w: from %q", ErrBadURI, from)
		}
		return u, nil
	}
	if strings.ContainsAny(from, "@<>\" \t\r\n;:") {
		return u, fmt.Errorf("%w: from %q", ErrBadURI, from)
	}
	host := local.String()
	if trunk.Address != "" {
		if h, _, err := net.SplitHostPort(trunk.Address); err == nil {
			host = h
		} else {
			host = trunk.Address
		}
	}
	return sip.Uri{Scheme: "sip", User: from, Host: host}, nil
}

// resolve is the address of host:port, if it has one.
func resolve(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	as, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(as) == 0 {
		return netip.Addr{}
	}
	return as[0].Unmap()
}

// outCall runs one outbound call on its own goroutine.
type outCall struct {
	s       *Server
	c       *Call
	log     *slog.Logger
	run     transport.Factory
	to      sip.Uri
	from    sip.Uri
	trunk   Trunk
	network string
	local   netip.Addr
	listen  netip.AddrPort
	ringFor time.Duration
}

// dial runs the call from INVITE to hang-up and returns the final status
// code and the reason it ended.
func (o *outCall) dial(ctx context.Context) (int, string) {
	s := o.s
	sock, port, err := s.ports.listen()
	if err != nil {
		o.log.Info("call failed", "err", err)
		return 0, ReasonFailed
	}
	defer sock.Close()
	var b [8]byte
	rand.Read(b[:])
	ans := answer{sessionID: binary.BigEndian.Uint64(b[:]) >> 1, version: 1, addr: o.local, port: port, dir: SendRecv}
	offerSDP := ans.marshal(nil)

	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "voiced", Host: o.local.String(), Port: int(o.listen.Port())}}
	if o.network == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	inv := sip.NewRequest(sip.INVITE, o.to)
	inv.SetBody(offerSDP)
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := &sip.FromHeader{Address: o.from, Params: sip.NewParams()}
	var tag [8]byte
	rand.Read(tag[:])
	from.Params.Add("tag", hex.EncodeToString(tag[:]))
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: o.to, Params: sip.NewParams()})
	inv.AppendHeader(&contact)
	if o.trunk.Address != "" {
		route := sip.Uri{Scheme: "sip", UriParams: sip.NewParams()}
		host, p, err := net.SplitHostPort(o.trunk.Address)
		if err != nil {
			host, p = o.trunk.Address, "5060"
		}
		route.Host = host
		route.Port, _ = strconv.Atoi(p)
		route.UriParams.Add("lr", "")
		inv.AppendHeader(&sip.RouteHeader{Address: route})
	}
	if o.network == "tcp" {
		inv.SetTransport("TCP")
	} else {
		inv.SetTransport("UDP")
	}
	dua := sipgo.DialogUA{Client: s.client, ContactHDR: contact}
	ringCtx, cancelRing := context.WithTimeoutCause(ctx, o.ringFor, errRingTimeout)
	defer cancelRing()
	dialog, err := dua.WriteInvite(ringCtx, inv)
	if err != nil {
		o.log.Info("call failed", "err", err)
		return 0, ReasonFailed
	}
	defer dialog.Close()
	start := time.Now()
	err = dialog.WaitAnswer(ringCtx, sipgo.AnswerOptions{
		Username: o.trunk.Username, Password: o.trunk.Password,
		OnResponse: func(res *sip.Response) error {
			switch {
			case res.StatusCode == 180 || res.StatusCode == 183:
				o.c.event(CallEvent{State: StateRinging, Code: res.StatusCode})
			case res.StatusCode == 100:
				o.c.event(CallEvent{State: StateTrying, Code: 100})
			}
			return nil
		},
	})
	if err != nil {
		var rerr *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &rerr):
			code := rerr.Res.StatusCode
			o.log.Info("call not answered", "code", code, "reason", rerr.Res.Reason)
			return code, failReason(code)
		case errors.Is(context.Cause(ringCtx), errRingTimeout):
			return 0, ReasonNoAnswer
		case errors.Is(context.Cause(ctx), errHangup):
			return 0, ReasonCancelled
		case errors.Is(context.Cause(ctx), transport.ErrShuttingDown):
			return 0, ReasonShutdown
		}
		o.log.Info("call failed", "err", err)
		return 0, ReasonFailed
	}
	res := dialog.InviteResponse
	if err := dialog.Ack(context.Background()); err != nil {
		o.log.Info("call failed: ACK", "err", err)
		return res.StatusCode, ReasonFailed
	}
	ansOffer, err := parseOffer(res.Body(), nil)
	if err != nil {
		o.log.Info("call failed: the answer's SDP", "err", err)
		dialog.Bye(context.Background())
		return res.StatusCode, ReasonFailed
	}
	o.c.event(CallEvent{State: StateAnswered, Code: res.StatusCode})
	o.log.Info("call answered", "took", time.Since(start).Round(time.Millisecond), "codec", ansOffer.codec.name)

	conn := transport.NewConn(transport.ConnConfig{Kind: "sip", Logger: s.cfg.Logger})
	acked := make(chan struct{})
	close(acked) // voiced sent the ACK
	cl := &call{s: s, conn: conn, dialog: dialog, signal: resolve(res.Source()),
		ready: make(chan struct{}), acked: acked, closed: conn.Done(), infoDigits: make(chan byte, 32)}
	cl.ackOnce.Do(func() {})
	if h := res.Contact(); h != nil {
		cl.remote = *h.Address.Clone()
	} else {
		cl.remote = *o.to.Clone()
	}
	cl.log = conn.Logger().With("call", o.c.id, "to", o.to.String())
	cl.media = newMedia(sock, port, cl.log, s.cfg.MediaTimeout, s.cfg.FirstMediaTimeout)
	cl.media.apply(ansOffer, SendRecv, cl.signal)
	cl.neg = ansOffer
	cl.format = ansOffer.codec.format()
	ans.codec, ans.pt, ans.dtmfPT = ansOffer.codec, ansOffer.pt, ansOffer.dtmfPT
	cl.ans = ans
	s.mu.Lock()
	s.calls[dialog.ID] = cl
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, dialog.ID)
		s.mu.Unlock()
	}()
	o.c.mu.Lock()
	o.c.session = cl.close
	o.c.mu.Unlock()
	if err := context.Cause(ctx); err != nil { // hung up while answering
		cl.close(err)
	}
	cl.serve(o.run)
	switch err := conn.Err(); {
	case errors.Is(err, ErrHangup):
		return 0, ReasonRemoteHangup
	case errors.Is(err, errHangup):
		return 0, ReasonHangup
	case errors.Is(err, ErrMediaTimeout):
		return 0, ReasonMediaTimeout
	case errors.Is(err, transport.ErrShuttingDown):
		return 0, ReasonShutdown
	}
	return 0, ReasonCompleted
}

var errRingTimeout = errors.New("sip: not answered in time")

// failReason names a final non-2xx status.
func failReason(code int) string {
	switch code {
	case 486, 600:
		return ReasonBusy
	case 408, 480, 487:
		return ReasonNoAnswer
	case 401, 407:
		return ReasonAuthFailed
	}
	return ReasonRejected
}
