package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// call is one answered (or being answered) INVITE.
type call struct {
	s      *Server
	conn   *transport.Conn // the session skeleton: id, close-once, events
	log    *slog.Logger
	dialog dialogSession
	uas    *sipgo.DialogServerSession // the dialog of an inbound call, nil for outbound
	media  *media
	signal netip.Addr // where SIP comes from

	ready   chan struct{} // closed by Feed: the pipeline takes input
	acked   chan struct{} // closed when the 200 OK is acknowledged
	ackOnce sync.Once
	closed  <-chan struct{} // conn.Done()

	mu  sync.Mutex
	ans answer
	neg *offer // the offer in force
	// pendingOffer is set while a re-INVITE without SDP waits for the
	// answer in its ACK.
	pendingOffer bool

	infoDigits chan byte

	// format is the call's audio format, the codec's first negotiated
	// (8 kHz for G.711, 16 kHz for G.722): re-INVITEs keep its rate.
	format  frame.Format
	remote  sip.Uri // the peer's Contact: the target of in-dialog requests
	out     *output // the last stage, once the session is built
	endOnce sync.Once
	refer   chan int // a transfer's NOTIFY status codes, guarded by mu
}

// dialogSession is what a call needs of its dialog, inbound
// (sipgo.DialogServerSession) or outbound (sipgo.DialogClientSession).
type dialogSession interface {
	ReadRequest(req *sip.Request, tx sip.ServerTransaction) error
	ReadBye(req *sip.Request, tx sip.ServerTransaction) error
	Bye(ctx context.Context) error
	LoadState() sip.DialogState
}

// answer runs one call from its INVITE to its end, on the INVITE's
// handler goroutine.
func (s *Server) answer(req *sip.Request, tx sip.ServerTransaction, ticket *transport.Ticket) {
	var b [8]byte
	rand.Read(b[:])
	conn := transport.NewConn(transport.ConnConfig{Kind: "sip", Logger: s.cfg.Logger})
	c := &call{
		s: s, conn: conn,
		signal:     sourceIP(req),
		ready:      make(chan struct{}),
		acked:      make(chan struct{}),
		closed:     conn.Done(),
		infoDigits: make(chan byte, 32),
	}
	user := req.Recipient.User
	if h := req.Contact(); h != nil {
		c.remote = *h.Address.Clone()
	} else if f := req.From(); f != nil {
		c.remote = *f.Address.Clone()
	}
	c.log = conn.Logger().With("call_id", callID(req), "to", user)

	if len(req.Body()) == 0 {
		// A late offer (the SDP would come in the ACK) is not supported.
		respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 voiced "an SDP offer is required"`))
		return
	}
	o, err := parseOffer(req.Body(), nil)
	if err != nil {
		c.log.Info("call refused", "err", err)
		respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `305 voiced "no common codec: G722, PCMU or PCMA at 8000 Hz"`))
		return
	}
	sock, port, err := s.ports.listen()
	if err != nil {
		c.log.Warn("call refused", "err", err)
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	c.media = newMedia(sock, port, c.log, s.cfg.MediaTimeout, s.cfg.FirstMediaTimeout)
	defer sock.Close()
	dir := o.dir.reverse()
	c.media.apply(o, dir, c.signal)
	c.neg = o
	c.format = o.codec.format()
	c.ans = answer{
		sessionID: binary.BigEndian.Uint64(b[:]) >> 1, version: 1,
		addr: s.localIPTo(sourceIP(req), s.listenAddr(req)), port: port,
		codec: o.codec, pt: o.pt, dtmfPT: o.dtmfPT, dir: dir,
	}

	dua := sipgo.DialogUA{Client: s.client, ContactHDR: s.contact(req)}
	dialog, err := dua.ReadInvite(req, tx)
	if err != nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	c.dialog, c.uas = dialog, dialog
	s.mu.Lock()
	s.calls[dialog.ID] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, dialog.ID)
		s.mu.Unlock()
		dialog.Close()
	}()
	// A phone line has no channel for the protocol's events: drain them
	// until the session is closed (at the latest when answer returns).
	defer conn.Close(nil)
	go func() {
		for {
			select {
			case <-conn.Outgoing():
			case <-conn.Done():
				return
			}
		}
	}()
	ticket.Attach(c.close)
	if err := dialog.Respond(180, "Ringing", nil); err != nil {
		return
	}

	run := s.run
	if r, ok := s.cfg.Routes[user]; ok {
		run = r
	}
	// G.722 audio is already at 16 kHz: it skips the upsampling that
	// G.711's 8 kHz gets before VAD and STT, and the bot's voice is coded
	// at 16 kHz.
	in, err := transport.NewInput(c.format, s.cfg.PipelineFormat)
	if err != nil {
		dialog.Respond(500, "Server Internal Error", nil)
		return
	}
	play := transport.NewPlayout(c.media, transport.PlayoutConfig{Format: c.format})
	c.out = &output{Playout: play, m: c.media}
	sess := conn.Session(c.format, c.format, in, c.out, c.feed)
	sess.Metadata = map[string]string{"sip.to": user}
	if from := req.From(); from != nil {
		sess.Metadata["sip.from"] = from.Address.User
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Ending the call closes the RTP socket, which ends its reader.
	stop := context.AfterFunc(ctx, func() { sock.Close() })
	defer stop()
	defer func() { // after the media goroutines are done
		st := c.media.stats
		c.log.Debug("rtp", "received", c.media.received.Load(), "dropped", c.media.dropped.Load(),
			"late", st.Late, "duplicates", st.Duplicates, "lost", st.Lost, "resets", st.Resets)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	runErr := make(chan error, 1)
	start := time.Now()
	c.log.Info("call", "from", req.From().Address.String(), "codec", o.codec.name, "rtp_port", port)
	wg.Go(func() {
		err := run(ctx, sess)
		c.close(err)
		runErr <- err
	})

	select {
	case <-c.ready:
	case <-c.closed:
		// The factory failed before taking input, or the caller
		// cancelled (sipgo answers the CANCEL and the INVITE with 487).
		switch err := conn.Err(); {
		case errors.Is(err, ErrHangup):
		case errors.Is(err, transport.ErrShuttingDown):
			dialog.Respond(503, "Service Unavailable", nil)
		default:
			dialog.Respond(500, "Server Internal Error", nil)
		}
		c.finish(runErr)
		return
	case <-dialog.Context().Done():
		c.close(ErrHangup)
		c.finish(runErr)
		return
	}
	c.mu.Lock()
	body := c.ans.marshal(c.neg)
	c.mu.Unlock()
	wg.Go(func() { c.media.run(ctx) })
	wg.Go(func() { c.media.send(ctx) })
	if err := c.answerOK(tx, dua.ContactHDR, body); err != nil {
		c.close(err)
		c.finish(runErr)
		return
	}
	c.log.Info("call answered", "took", time.Since(start).Round(time.Microsecond))
	c.finish(runErr)
}

// answerOK sends the 200 OK with the SDP answer and retransmits it (RFC
// 3261 §13.3.1.4: from T1, doubling up to T2) until the ACK comes, the call
// ends or 64×T1 passes.
func (c *call) answerOK(tx sip.ServerTransaction, contact sip.ContactHeader, body []byte) error {
	res := sip.NewSDPResponseFromRequest(c.uas.InviteRequest, body)
	res.AppendHeader(&contact)
	c.uas.InviteResponse = res
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAnswered, err)
	}
	give := time.NewTimer(64 * sip.T1)
	defer give.Stop()
	wait := sip.T1
	retry := time.NewTimer(wait)
	defer retry.Stop()
	for {
		select {
		case <-c.acked:
			return nil
		case <-c.closed:
			return c.conn.Err()
		case <-give.C:
			return ErrNotAnswered
		case <-retry.C:
			if err := tx.Respond(res); err != nil {
				return fmt.Errorf("%w: %w", ErrNotAnswered, err)
			}
			wait = min(2*wait, sip.T2)
			retry.Reset(wait)
		}
	}
}

// serve runs the session of an answered outbound call until it ends, and
// hangs up unless the callee did.
func (c *call) serve(run transport.Factory) {
	conn := c.conn
	defer conn.Close(nil)
	go func() {
		for {
			select {
			case <-conn.Outgoing():
			case <-conn.Done():
				return
			}
		}
	}()
	in, err := transport.NewInput(c.format, c.s.cfg.PipelineFormat)
	if err != nil {
		c.close(err)
		return
	}
	play := transport.NewPlayout(c.media, transport.PlayoutConfig{Format: c.format})
	c.out = &output{Playout: play, m: c.media}
	sess := conn.Session(c.format, c.format, in, c.out, c.feed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.media.conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	runErr := make(chan error, 1)
	wg.Go(func() {
		err := run(ctx, sess)
		c.close(err)
		runErr <- err
	})
	select {
	case <-c.ready:
		wg.Go(func() { c.media.run(ctx) })
		wg.Go(func() { c.media.send(ctx) })
	case <-c.closed:
	}
	c.finish(runErr)
}

// finish waits for the session to end and hangs up if the caller has not.
func (c *call) finish(runErr <-chan error) {
	err := <-runErr
	if c.dialog.LoadState() == sip.DialogStateConfirmed || c.dialog.LoadState() == sip.DialogStateEstablished {
		if !errors.Is(c.conn.Err(), ErrHangup) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if berr := c.dialog.Bye(ctx); berr != nil {
				c.log.Debug("bye failed", "err", berr)
			}
			cancel()
		}
	}
	if transport.Expected(err) || errors.Is(err, ErrMediaTimeout) || errors.Is(err, errHangup) || errors.Is(err, ErrCallEnded) {
		c.log.Info("call ended", "err", err)
	} else {
		c.log.Warn("call failed", "err", err)
	}
}

// close ends the session; err nil is a normal end. Idempotent; it makes a
// blocked Feed return.
func (c *call) close(err error) { c.conn.Close(err) }

// ack confirms the dialog, and takes the answer of a re-INVITE without
// SDP from the ACK's body.
func (c *call) ack(req *sip.Request, tx sip.ServerTransaction) {
	if c.uas != nil && c.uas.ReadAck(req, tx) == nil && c.uas.InviteResponse != nil {
		c.ackOnce.Do(func() { close(c.acked) })
	}
	c.mu.Lock()
	pending := c.pendingOffer
	c.pendingOffer = false
	c.mu.Unlock()
	if !pending || len(req.Body()) == 0 {
		return
	}
	c.mu.Lock()
	prefer := c.neg.codec
	c.mu.Unlock()
	o, err := parseOffer(req.Body(), &prefer)
	if err != nil {
		c.log.Info("re-INVITE answer in ACK refused", "err", err)
		return
	}
	c.mu.Lock()
	c.neg = o
	dir := c.ans.dir
	c.mu.Unlock()
	if o.dir != SendRecv {
		dir = o.dir.reverse()
	}
	c.media.apply(o, dir, c.signal)
}

// reinvite answers an INVITE within the call: hold, unhold, a new address
// or codec. An INVITE without SDP is answered with an offer; the answer
// comes in the ACK. A re-INVITE never ends the call: one voiced cannot
// accept gets 488 and the call goes on as before.
func (c *call) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	if err := c.dialog.ReadRequest(req, tx); err != nil {
		respond(tx, req, 500, "Server Internal Error", sip.NewHeader("Retry-After", "1"))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(req.Body()) == 0 {
		c.ans.version++
		c.ans.dir = SendRecv
		c.pendingOffer = true
		c.reply(tx, req, c.ans.marshal(nil))
		return
	}
	o, err := parseOffer(req.Body(), &c.neg.codec)
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	dir := o.dir.reverse()
	if o.addr.Addr().IsUnspecified() {
		dir = Inactive // RFC 2543 hold
	}
	c.ans.version++
	c.ans.codec, c.ans.pt, c.ans.dtmfPT, c.ans.dir = o.codec, o.pt, o.dtmfPT, dir
	c.neg = o
	c.media.apply(o, dir, c.signal)
	c.log.Info("re-INVITE", "direction", o.dir, "held", o.hold())
	c.reply(tx, req, c.ans.marshal(o))
}

func (c *call) reply(tx sip.ServerTransaction, req *sip.Request, body []byte) {
	res := sip.NewSDPResponseFromRequest(req, body)
	ct := c.s.contact(req)
	res.AppendHeader(&ct)
	tx.Respond(res)
}

// digit takes a key from a SIP INFO.
func (c *call) digit(d byte) {
	select {
	case c.infoDigits <- d:
	default:
	}
}

// feed implements transport.Session.Feed: it lets the INVITE be answered,
// then pushes the caller's audio and keys until the call ends.
func (c *call) feed(ctx context.Context, p transport.Pusher) error {
	close(c.ready)
	select {
	case <-c.acked:
	case <-c.closed:
		return c.conn.Err()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	var keys strings.Builder
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	flush := func() error {
		if keys.Len() == 0 {
			return nil
		}
		text := "DTMF: " + keys.String()
		keys.Reset()
		// Typed text: the turn-taking stage decides whether it
		// interrupts the bot.
		return p.Push(ctx, &frame.Transcript{Text: text, Final: true, Typed: true})
	}
	key := func(d byte) error {
		if err := p.Push(ctx, &frame.DTMF{Digit: d}); err != nil {
			return err
		}
		c.log.Debug("dtmf", "digit", string(d))
		keys.WriteByte(d)
		if d == '#' || keys.Len() >= 32 {
			pause.Stop()
			return flush()
		}
		pause.Reset(c.s.cfg.DTMFPause)
		return nil
	}
	for {
		var err error
		select {
		case <-c.closed:
			return c.conn.Err()
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.media.dead:
			return ErrMediaTimeout
		case pcm := <-c.media.audio:
			err = p.Push(ctx, &frame.InputAudio{Format: c.format, Samples: pcm})
		case d := <-c.media.digits:
			err = key(d)
		case d := <-c.infoDigits:
			err = key(d)
		case <-pause.C:
			err = flush()
		}
		if err != nil {
			return err
		}
	}
}

// output is the call's last stage: the shared playout, whose barge-in also
// drops the audio already handed to the RTP sender.
type output struct {
	*transport.Playout
	m      *media
	spoken atomic.Int64 // OutputAudio frames seen: end_call waits for them to stop
}

// Process implements pipeline.Processor.
func (o *output) Process(ctx context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f.(type) {
	case *frame.Interruption:
		o.m.clear()
	case *frame.OutputAudio:
		o.spoken.Add(1)
	}
	return o.Playout.Process(ctx, f, out)
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
