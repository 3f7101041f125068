// Package sip is the SIP transport: a PBX, a SIP trunk or a softphone calls
// voiced directly (RFC 3261 over UDP and TCP, on github.com/emiago/sipgo),
// and each call is one conversation.
//
// An INVITE is answered 100 Trying at once and 180 Ringing once the call
// is admitted; the session factory then builds the call's pipeline, and the
// 200 OK with the SDP answer (RFC 3264: G.722 at 16 kHz when offered, else
// PCMU or PCMA at 8 kHz, with telephone-event) goes out as soon as the
// pipeline takes input. Calls out offer G.722 first. An offer
// without a common codec gets 488. A BYE from the caller ends the session at
// once, mid-sentence or not; when the session ends on voiced's side, voiced
// sends the BYE.
//
// Media is RTP (RFC 3550) on a port of a configurable range: caller audio
// goes through the shared receive path (transport/rtpaudio: jitter buffer,
// loss concealment) with a G.722 or G.711 decoder; 8 kHz G.711 audio is
// upsampled to the pipeline's format with the band-limited resampler, while
// G.722's 16 kHz goes in as it is. The bot's voice leaves at the codec's
// rate as exactly one packet per 20 ms, with encoded silence when the bot
// is quiet. RTP is sent back to
// where it comes from (symmetric RTP, for NAT); packets from other
// addresses are dropped. A call whose media stops ends after
// Config.MediaTimeout. Re-INVITEs put the call on hold and back (the media
// timeout is paused while held).
//
// Keys pressed on the phone (RFC 4733 telephone-events, or SIP INFO with
// application/dtmf-relay) reach the pipeline as frame.DTMF frames; the keys
// of one entry, up to '#' or a pause, then reach the agent as a typed
// transcript "DTMF: 1234#".
//
// Calls are admitted by a transport.Admission, shared with the server's
// other edges, and each call's session is a transport.Conn.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// Config configures a Server. The zero value works on loopback.
type Config struct {
	// ExternalIP is the address put in SDP and Contact headers (the
	// public address behind NAT). Default: the address a call came in on.
	ExternalIP string
	// RTPPortMin and RTPPortMax bound the RTP ports (default 10000–20000).
	RTPPortMin, RTPPortMax int
	// RTPIP is the local address RTP sockets bind (default: all).
	RTPIP string
	// Admission is the server's limit on live sessions, shared with its
	// other edges; calls it refuses get 503. Nil: a limit of MaxSessions
	// calls (default transport.DefaultMaxSessions) of this server's own.
	Admission   *transport.Admission
	MaxSessions int
	// MediaTimeout ends a call without RTP for this long (default 15 s);
	// FirstMediaTimeout applies before the first packet (default 30 s).
	MediaTimeout, FirstMediaTimeout time.Duration
	// DTMFPause ends an entry of keys that has no '#' (default 3 s).
	DTMFPause time.Duration
	// Routes chooses the session factory by the dialed user part
	// (sip:billing@host starts the factory of "billing"); other calls
	// get the Server's factory.
	Routes map[string]transport.Factory
	// PipelineFormat is the format of the pipeline's audio (default 16
	// kHz mono).
	PipelineFormat frame.Format
	// Auth guards new calls: a source allowlist and digest
	// authentication. The zero value lets every call in.
	Auth Auth
	// Trunks are where outbound calls go (Dial); the first is the
	// default.
	Trunks []Trunk
	// UserAgent is the User-Agent header (default "voiced").
	UserAgent string
	// TLS is the server side of SIP over TLS (RFC 3261 §26.3.1, usually
	// port 5061): Listen with network "tls" needs it. Its certificate may
	// change while serving (GetCertificate), new connections taking the
	// new one.
	TLS    *tls.Config
	Logger *slog.Logger
}

var (
	// ErrHangup ends a session whose caller hung up (BYE or CANCEL); it
	// wraps transport.ErrClientGone.
	ErrHangup = fmt.Errorf("sip: caller hung up: %w", transport.ErrClientGone)
	// ErrNotAnswered ends a session whose 200 OK was never acknowledged.
	ErrNotAnswered = errors.New("sip: answer not acknowledged")
)

// Server answers SIP calls. It is safe for concurrent use.
type Server struct {
	cfg    Config
	run    transport.Factory
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	ports  *portPool
	extIP  netip.Addr
	adm    *transport.Admission
	ownAdm bool // adm is this server's own: Shutdown shuts it down
	guard  *guard

	mu       sync.Mutex
	calls    map[string]*call          // by dialog ID
	outbound map[string]*Call          // by Call.ID, live and lately ended
	dials    sync.WaitGroup            // outbound calls' goroutines
	closing  bool                      // Shutdown began: no new outbound calls
	regs     []*registrar              // Register
	quit     chan struct{}             // closed when Shutdown begins
	active   int                       // admitted calls, ≥ len(calls)
	listen   map[string]netip.AddrPort // by network
	wg       sync.WaitGroup            // listeners
	stop     chan struct{}             // closed by Shutdown: listeners close
	stopOnce sync.Once
}

// NewServer returns a server running run for each call.
func NewServer(cfg Config, run transport.Factory) (*Server, error) {
	if cfg.RTPPortMin <= 0 {
		cfg.RTPPortMin = 10000
	}
	if cfg.RTPPortMax <= 0 {
		cfg.RTPPortMax = 20000
	}
	if cfg.RTPPortMax < cfg.RTPPortMin+1 || cfg.RTPPortMax > 65535 {
		return nil, fmt.Errorf("sip: bad RTP port range %d-%d", cfg.RTPPortMin, cfg.RTPPortMax)
	}
	cfg.RTPPortMin += cfg.RTPPortMin % 2
	if cfg.MediaTimeout <= 0 {
		cfg.MediaTimeout = 15 * time.Second
	}
	if cfg.FirstMediaTimeout <= 0 {
		cfg.FirstMediaTimeout = 30 * time.Second
	}
	if cfg.DTMFPause <= 0 {
		cfg.DTMFPause = 3 * time.Second
	}
	if cfg.PipelineFormat == (frame.Format{}) {
		cfg.PipelineFormat = frame.Mono16k
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "voiced"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, run: run, log: cfg.Logger.With("transport", "sip"),
		calls: map[string]*call{}, outbound: map[string]*Call{}, listen: map[string]netip.AddrPort{}, stop: make(chan struct{}), quit: make(chan struct{}),
		adm: cfg.Admission}
	if s.adm == nil {
		s.adm, s.ownAdm = transport.NewAdmission(cfg.MaxSessions), true
	}
	g, err := newGuard(cfg.Auth)
	if err != nil {
		return nil, err
	}
	s.guard = g
	if cfg.ExternalIP != "" {
		ip, err := netip.ParseAddr(cfg.ExternalIP)
		if err != nil {
			return nil, fmt.Errorf("sip: external IP: %w", err)
		}
		s.extIP = ip
	}
	rtpIP := netip.IPv4Unspecified()
	if cfg.RTPIP != "" {
		ip, err := netip.ParseAddr(cfg.RTPIP)
		if err != nil {
			return nil, fmt.Errorf("sip: RTP IP: %w", err)
		}
		rtpIP = ip
	}
	s.ports = &portPool{ip: rtpIP, min: cfg.RTPPortMin, max: cfg.RTPPortMax}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(cfg.Logger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(cfg.Logger)))
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(cfg.Logger))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	s.ua, s.srv, s.client = ua, srv, client
	srv.OnInvite(s.onInvite)
	srv.OnAck(s.onAck)
	srv.OnBye(s.onBye)
	srv.OnInfo(s.onInfo)
	srv.OnOptions(s.onOptions)
	srv.OnNotify(s.onNotify)
	return s, nil
}

// Listen opens addr (host:port) on network ("udp", "tcp", or "tls" with
// Config.TLS) and serves it until ctx ends or Shutdown. It returns once the
// socket is open; the address it is bound to is returned (port 0 picks
// one).
func (s *Server) Listen(ctx context.Context, network, addr string) (netip.AddrPort, error) {
	var (
		bound netip.AddrPort
		serve func() error
		stopL func() error
	)
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return bound, fmt.Errorf("sip: %w", err)
		}
		bound = c.LocalAddr().(*net.UDPAddr).AddrPort()
		serve, stopL = func() error { return s.srv.ServeUDP(c) }, c.Close
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return bound, fmt.Errorf("sip: %w", err)
		}
		bound = l.Addr().(*net.TCPAddr).AddrPort()
		serve, stopL = func() error { return s.srv.ServeTCP(l) }, l.Close
	case "tls":
		if s.cfg.TLS == nil {
			return bound, errors.New("sip: network tls: no TLS configuration (a certificate and its key)")
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return bound, fmt.Errorf("sip: %w", err)
		}
		bound = l.Addr().(*net.TCPAddr).AddrPort()
		tl := tls.NewListener(l, s.cfg.TLS)
		serve, stopL = func() error { return s.srv.ServeTLS(tl) }, tl.Close
	default:
		return bound, fmt.Errorf("sip: network %q: want udp, tcp or tls", network)
	}
	bound = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	s.mu.Lock()
	s.listen[network] = bound
	s.mu.Unlock()
	s.wg.Add(2)
	stop := make(chan struct{})
	go func() {
		defer s.wg.Done()
		serve()
		close(stop)
	}()
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			stopL()
		case <-s.stop:
			stopL()
		case <-stop:
		}
	}()
	s.log.Info("listening", "network", network, "addr", bound)
	return bound, nil
}

// Sessions returns the number of admitted calls.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Shutdown ends live calls with a BYE and waits for them to finish or ctx
// to end (when the Admission is the server's own; a shared one is shut
// down by its owner), then closes the listeners.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.ownAdm {
		err = s.adm.Shutdown(ctx)
	}
	s.mu.Lock()
	if !s.closing {
		close(s.quit)
	}
	s.closing = true
	live := make([]*Call, 0, len(s.outbound))
	for _, c := range s.outbound {
		live = append(live, c)
	}
	s.mu.Unlock()
	for _, c := range live {
		c.stop(transport.ErrShuttingDown)
	}
	dialed := make(chan struct{})
	go func() { s.dials.Wait(); close(dialed) }()
	select {
	case <-dialed:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	s.stopOnce.Do(func() { close(s.stop) })
	s.srv.Close()
	s.ua.Close()
	s.wg.Wait()
	return err
}

// network is the listener network a request came over.
func network(req *sip.Request) string {
	switch req.Transport() {
	case "UDP", "":
		return "udp"
	case "TLS":
		return "tls"
	}
	return "tcp"
}

// listenAddr is the address of the listener req came in on.
func (s *Server) listenAddr(req *sip.Request) netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listen[network(req)].Addr()
}

// contact is the Contact header for a request that arrived at us.
func (s *Server) contact(req *sip.Request) sip.ContactHeader {
	network := network(req)
	s.mu.Lock()
	l := s.listen[network]
	s.mu.Unlock()
	host := s.localIPTo(sourceIP(req), l.Addr())
	uri := sip.Uri{Scheme: "sip", Host: host.String(), Port: int(l.Port())}
	if network != "udp" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", network)
	}
	return sip.ContactHeader{Address: uri}
}

// localIPTo is the address peer reaches this server at: the external IP,
// else the listening address, else the address the system routes to peer
// from.
func (s *Server) localIPTo(peer, listen netip.Addr) netip.Addr {
	if s.extIP.IsValid() {
		return s.extIP
	}
	if listen.IsValid() && !listen.IsUnspecified() {
		return listen
	}
	if src := peer; src.IsValid() {
		// A connected UDP socket sends nothing but learns its source.
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 9))); err == nil {
			a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			c.Close()
			return a
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	tx.Respond(res)
}

// lookup finds the call of an in-dialog request: one voiced answered
// (UAS) or one it placed (UAC).
func (s *Server) lookup(req *sip.Request) *call {
	uas, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	uac, _ := sip.DialogIDFromRequestUAC(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.calls[uas]; ok {
		return c
	}
	return s.calls[uac]
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			if c := s.lookup(req); c != nil {
				c.reinvite(req, tx)
				return
			}
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
	}
	switch v, user := s.guard.check(req, sourceIP(req)); v {
	case forbidden:
		s.log.Info("call refused: source not allowed", "call_id", callID(req), "from", req.Source())
		respond(tx, req, 403, "Forbidden")
		return
	case challenge, stale:
		code, reason, hdrs := s.guard.challenges(v == stale)
		respond(tx, req, code, reason, hdrs...)
		return
	default:
		if user != "" {
			s.log.Debug("caller authenticated", "call_id", callID(req), "user", user)
		}
	}
	respond(tx, req, 100, "Trying")
	ticket, err := s.adm.AdmitFrom(req.Source())
	if err != nil {
		// SIP has no 429: every refusal is 503 with a Retry-After, the
		// reason phrase telling a per-address limit apart.
		phrase := "Service Unavailable"
		if transport.RefuseStatus(err) == 429 {
			phrase = "Too Many Calls From This Address"
		}
		respond(tx, req, 503, phrase, sip.NewHeader("Retry-After", strconv.Itoa(transport.RetryAfter(err))))
		return
	}
	defer ticket.Release()
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
	}()
	s.answer(req, tx, ticket)
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := s.lookup(req); c != nil {
		c.ack(req, tx)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if req.CSeq() == nil || c.uas != nil && req.CSeq().SeqNo < c.uas.InviteRequest.CSeq().SeqNo {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	// End the session first: answering may wait on sipgo's INVITE
	// transaction, and the caller is gone either way.
	c.close(ErrHangup)
	c.dialog.ReadBye(req, tx)
}

func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, err := parseDTMFInfo(ct, req.Body())
	if err != nil {
		if len(req.Body()) == 0 {
			respond(tx, req, 200, "OK") // an INFO keep-alive
			return
		}
		respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	c.digit(d) // before the answer, so keys keep the order they were sent in
	respond(tx, req, 200, "OK")
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 200, "OK",
		sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY"),
		sip.NewHeader("Accept", "application/sdp"))
}

// sourceIP is the address a request came from.
func sourceIP(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		host, _, err := net.SplitHostPort(req.Source())
		if err != nil {
			return netip.Addr{}
		}
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}
