package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Registration makes voiced an extension of a PBX or a registrar's user
// (RFC 3261 §10): voiced REGISTERs its contact for the address of record
// sip:User@Domain, answers digest challenges, refreshes the binding before
// it expires, registers again after a failure, and removes the binding on
// Shutdown. Calls the PBX sends to the extension arrive as any other
// INVITE, routed by the dialed user (Config.Routes).
type Registration struct {
	// Registrar is the registrar's host:port (port default 5060).
	Registrar string
	// Transport is "udp" (default) or "tcp". voiced must listen on it.
	Transport string
	// User is the extension (the address of record's user part).
	User string
	// Domain is the address of record's host (default the registrar's).
	Domain string
	// Username and Password answer 401/407 (Username default User).
	Username, Password string
	// Expires is the binding's lifetime voiced asks for (default 300 s);
	// the registrar may grant less.
	Expires time.Duration
	// RetryMin and RetryMax bound the wait before registering again after
	// a failure (default 5 s doubling up to 5 minutes).
	RetryMin, RetryMax time.Duration
}

// RegState is the state of a registration.
type RegState struct {
	Registered bool
	// Expires is when the binding runs out, when registered.
	Expires time.Time
	// Err is the last failure, nil once registered.
	Err error
}

// ErrRegister wraps a registrar's refusal.
var ErrRegister = errors.New("sip: register")

type registrar struct {
	s      *Server
	r      Registration
	callID string
	tag    string
	cseq   uint32

	mu    sync.Mutex
	state RegState
}

// Register starts keeping r registered until ctx ends or Shutdown (which
// unregisters). It returns at once; the state is read with
// Registrations.
func (s *Server) Register(ctx context.Context, r Registration) error {
	if r.Registrar == "" || r.User == "" {
		return fmt.Errorf("%w: registrar and user are required", ErrRegister)
	}
	if r.Expires <= 0 {
		r.Expires = 300 * time.Second
	}
	if r.RetryMin <= 0 {
		r.RetryMin = 5 * time.Second
	}
	if r.RetryMax < r.RetryMin {
		r.RetryMax = max(r.RetryMin, 5*time.Minute)
	}
	if r.Username == "" {
		r.Username = r.User
	}
	if _, _, err := net.SplitHostPort(r.Registrar); err != nil {
		r.Registrar = net.JoinHostPort(r.Registrar, "5060")
	}
	if r.Domain == "" {
		r.Domain, _, _ = net.SplitHostPort(r.Registrar)
	}
	var b [16]byte
	rand.Read(b[:])
	reg := &registrar{s: s, r: r, callID: hex.EncodeToString(b[:12]), tag: hex.EncodeToString(b[12:]), cseq: 1}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return fmt.Errorf("%w: server shutting down", ErrRegister)
	}
	s.regs = append(s.regs, reg)
	s.dials.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.dials.Done()
		reg.run(ctx)
	}()
	return nil
}

// Registrations returns the state of each registration, in the order they
// were started.
func (s *Server) Registrations() []RegState {
	s.mu.Lock()
	regs := append([]*registrar(nil), s.regs...)
	s.mu.Unlock()
	out := make([]RegState, len(regs))
	for i, r := range regs {
		r.mu.Lock()
		out[i] = r.state
		r.mu.Unlock()
	}
	return out
}

func (g *registrar) set(st RegState) {
	g.mu.Lock()
	g.state = st
	g.mu.Unlock()
}

// run registers, refreshes and retries until ctx ends or the server
// stops, then removes the binding.
func (g *registrar) run(ctx context.Context) {
	log := g.s.log.With("registrar", g.r.Registrar, "user", g.r.User)
	retry := g.r.RetryMin
	registered := false
	for {
		var wait time.Duration
		granted, err := g.register(ctx, g.r.Expires)
		if err != nil {
			g.set(RegState{Err: err})
			log.Warn("register failed", "err", err, "retry_in", retry)
			wait = retry
			retry = min(2*retry, g.r.RetryMax)
			registered = false
		} else {
			if !registered {
				log.Info("registered", "expires", granted)
			}
			registered = true
			g.set(RegState{Registered: true, Expires: time.Now().Add(granted)})
			retry = g.r.RetryMin
			// Refresh at half the lifetime, and at least a few seconds
			// early on long ones.
			wait = min(granted/2, max(granted-30*time.Second, granted/2))
			wait = max(wait, 500*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
		case <-g.s.quit:
		}
		t.Stop()
		if registered {
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := g.register(uctx, 0); err != nil {
				log.Info("unregister failed", "err", err)
			}
			cancel()
		}
		g.set(RegState{})
		return
	}
}

// register sends one REGISTER asking for expires (0 removes the
// binding), answering a digest challenge, and returns the lifetime the
// registrar granted.
func (g *registrar) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	s := g.s
	network := "udp"
	if strings.EqualFold(g.r.Transport, "tcp") {
		network = "tcp"
	}
	s.mu.Lock()
	listen, ok := s.listen[network]
	s.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("%w (%s)", ErrNotListening, network)
	}
	local := s.localIPTo(resolve(g.r.Registrar), listen.Addr())
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: g.r.User, Host: local.String(), Port: int(listen.Port())}}
	if network == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	aor := sip.Uri{Scheme: "sip", User: g.r.User, Host: g.r.Domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: g.r.Domain})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", g.tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	callID := sip.CallIDHeader(g.callID)
	req.AppendHeader(&callID)
	g.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: g.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetDestination(g.r.Registrar)
	req.SetTransport(strings.ToUpper(network))
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrRegister, err)
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && g.r.Password != "" {
		res, err = s.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: g.r.Username, Password: g.r.Password})
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrRegister, err)
		}
		g.cseq = req.CSeq().SeqNo
	}
	if !res.IsSuccess() {
		return 0, fmt.Errorf("%w: %d %s", ErrRegister, res.StatusCode, res.Reason)
	}
	if expires == 0 {
		return 0, nil
	}
	return grantedExpiry(res, contact.Address, expires), nil
}

// grantedExpiry reads the lifetime the registrar granted our contact: its
// expires parameter in the 200's Contact list, else the Expires header,
// else what was asked for.
func grantedExpiry(res *sip.Response, ours sip.Uri, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		var c sip.ContactHeader
		if ch, ok := h.(*sip.ContactHeader); ok {
			c = *ch
		} else if c.Params = sip.NewParams(); func() error {
			_, err := sip.ParseAddressValue(h.Value(), &c.Address, &c.Params)
			return err
		}() != nil {
			continue
		}
		if c.Address.Host != ours.Host || c.Address.Port != ours.Port || c.Address.User != ours.User {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}
