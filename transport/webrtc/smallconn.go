package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtvi"
)

// smallConn is one SmallWebRTC session. Unlike conn, it outlives its peer
// connection: a restart (restart_pc) replaces the peer connection and its
// chat channel, and the session, its pipeline and the bot's output track
// carry on.
//
// Lifetime: offer builds it and negotiates the first peer connection,
// serve runs the Factory; Close (the peer, Shutdown, the session) makes
// the writer flush the messages, say peerLeft and close the peer
// connection.
type smallConn struct {
	*transport.Conn
	h       *SmallHandler
	startID string          // the /start session id, "" on /api/offer
	meta    json.RawMessage // the /start body, or the offer's requestData

	out    *pion.TrackLocalStaticRTP // the bot's voice, on every peer connection in turn
	sender rtpSender                 // used on the playout goroutine only

	neg sync.Mutex // serializes negotiations and candidates

	mu     sync.Mutex
	pc     *pion.PeerConnection // the current peer connection
	dc     *pion.DataChannel    // its chat channel, once open
	since  time.Time            // when pc was answered
	ncand  int                  // candidates pc has from the peer (offer and PATCHes)
	micOK  bool                 // pc's audio section can carry the mic
	asked  bool                 // renegotiate was asked for pc
	closed bool                 // closePeers ran: no new peer connection

	wg sync.WaitGroup // RTCP readers and video drains of the peer connections

	tracks   chan *pion.TrackRemote // audio tracks of the peer connections, as they arrive
	msgs     chan []byte            // chat messages for the application protocol
	opened   chan struct{}          // poked (cap 1) when a chat channel opens
	lastPing atomic.Int64           // unix nanoseconds of the last ping
	lastRx   atomic.Int64           // unix nanoseconds of the last packet or message
	muted    atomic.Bool            // trackStatus turned the mic off
	wdone    chan struct{}          // closed when the writer has closed the peer connection
}

func newSmallConn(h *SmallHandler, startID string, meta json.RawMessage) (*smallConn, error) {
	enc, err := opus.NewEncoder()
	if err != nil {
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	c := &smallConn{
		Conn:    transport.NewConn(transport.ConnConfig{Kind: SmallKind, Logger: h.cfg.Logger, ErrorMessage: rtvi.ErrorMessage}),
		h:       h,
		startID: startID,
		meta:    meta,
		sender:  rtpSender{enc: enc},
		tracks:  make(chan *pion.TrackRemote, 4),
		msgs:    make(chan []byte, 64),
		opened:  make(chan struct{}, 1),
		wdone:   make(chan struct{}),
	}
	now := time.Now().UnixNano()
	c.lastPing.Store(now)
	c.lastRx.Store(now)
	c.out, err = pion.NewTrackLocalStaticRTP(opusCodec.RTPCodecCapability, "audio", "voiced")
	if err != nil {
		return nil, fmt.Errorf("webrtc: output track: %w", err)
	}
	c.sender.track = c.out
	return c, nil
}

// WriteAudio implements transport.AudioWriter (see conn.WriteAudio).
func (c *smallConn) WriteAudio(pcm []int16) error { return c.sender.write(pcm) }

// current returns the current peer connection.
func (c *smallConn) current() *pion.PeerConnection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pc
}

// newPeer builds a peer connection that sends the bot's voice on its first
// audio section and hands its tracks and chat channel to the session.
func (c *smallConn) newPeer() (*pion.PeerConnection, error) {
	pc, err := c.h.api.NewPeerConnection(pion.Configuration{ICEServers: c.h.cfg.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	sender, err := pc.AddTrack(c.out)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("webrtc: add track: %w", err)
	}
	// RTCP must be read for the interceptors to work; the read fails once
	// the connection is closed.
	c.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	})
	pc.OnTrack(func(t *pion.TrackRemote, _ *pion.RTPReceiver) {
		if t.Kind() != pion.RTPCodecTypeAudio {
			// Video is answered, not used: drain it until the connection ends.
			c.wg.Go(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := t.Read(buf); err != nil {
						return
					}
				}
			})
			return
		}
		for {
			select {
			case c.tracks <- t:
				return
			default:
			}
			select { // the newest track wins
			case <-c.tracks:
			default:
			}
		}
	})
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		c.Logger().Debug("connection state", "state", s.String())
		// A failed connection is left to the client, which restarts it
		// (restart_pc), and to the ping timeout.
		if s == pion.PeerConnectionStateClosed && c.current() == pc {
			c.Close(fmt.Errorf("%w: connection closed", ErrPeerGone))
		}
	})
	pc.OnDataChannel(func(dc *pion.DataChannel) { c.onChat(pc, dc) })
	return pc, nil
}

// negotiate answers an offer (with ncand candidates): on the current
// peer connection (renegotiation), or on a new one when there is none yet
// or restart is set. The answer carries the gathered candidates.
func (c *smallConn) negotiate(ctx context.Context, offer string, ncand int, restart bool) (string, error) {
	c.neg.Lock()
	defer c.neg.Unlock()
	select {
	case <-c.Done():
		return "", errStatus(http.StatusNotFound, "session %s has ended", c.ID())
	default:
	}
	pc := c.current()
	fresh := pc == nil || restart
	if fresh {
		var err error
		if pc, err = c.newPeer(); err != nil {
			return "", err
		}
	}
	answer, err := c.answer(ctx, pc, offer)
	if err != nil {
		if fresh {
			pc.Close()
		}
		return "", err
	}
	micOK := offerSendsAudio(offer)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		pc.Close()
		return "", errStatus(http.StatusNotFound, "session %s has ended", c.ID())
	}
	old := c.pc
	if fresh {
		c.pc, c.dc, c.since = pc, nil, time.Now()
	}
	c.micOK, c.asked, c.ncand = micOK, false, ncand
	c.mu.Unlock()
	if fresh && old != nil {
		c.Logger().Info("peer connection restarted")
		old.Close()
	}
	return answer, nil
}

// answer applies offer to pc and returns the answer once ICE gathering
// is complete.
func (c *smallConn) answer(ctx context.Context, pc *pion.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return "", errStatus(http.StatusBadRequest, "bad offer: %v", err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", errStatus(http.StatusBadRequest, "cannot answer the offer: %v", err)
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("webrtc: set local description: %w", err)
	}
	t := time.NewTimer(c.h.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return "", errors.New("webrtc: ICE gathering timed out")
	case <-ctx.Done():
		return "", errStatus(http.StatusServiceUnavailable, "%v", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// offerSendsAudio reports whether the offer's first audio section lets
// the client send (sendrecv or sendonly): whether the mic can be heard.
func offerSendsAudio(offer string) bool {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return false
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		for _, a := range m.Attributes {
			switch a.Key {
			case "recvonly", "inactive":
				return false
			}
		}
		return m.MediaName.Port.Value != 0
	}
	return false
}

// addCandidates adds trickled candidates to the current peer connection.
// An empty candidate ends the client's candidates.
func (c *smallConn) addCandidates(cands []iceCandidate) error {
	c.neg.Lock()
	defer c.neg.Unlock()
	c.mu.Lock()
	pc := c.pc
	n := c.ncand + len(cands)
	if n <= c.h.cfg.MaxCandidates {
		c.ncand = n
	}
	c.mu.Unlock()
	if pc == nil {
		return errStatus(http.StatusConflict, "no offer answered yet")
	}
	if n > c.h.cfg.MaxCandidates {
		return errStatus(http.StatusBadRequest, "candidates: %d in all for this peer connection; at most %d are accepted", n, c.h.cfg.MaxCandidates)
	}
	for i, cand := range cands {
		init := pion.ICECandidateInit{Candidate: cand.Candidate, SDPMid: cand.SDPMid, SDPMLineIndex: cand.SDPMLineIndex}
		if err := pc.AddICECandidate(init); err != nil {
			return errStatus(http.StatusBadRequest, "candidates[%d]: %v", i, err)
		}
	}
	return nil
}

// closePeers closes the current peer connection for good.
func (c *smallConn) closePeers() {
	c.mu.Lock()
	pc := c.pc
	c.closed = true
	c.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
}

// serve runs the session until it ends, then waits for the peer
// connection to be closed.
func (c *smallConn) serve() {
	go c.writer()
	defer func() {
		<-c.wdone
		c.wg.Wait()
	}()
	in, err := transport.NewInput(opus.Format, c.h.cfg.PipelineFormat)
	if err != nil {
		c.Close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: opus.Format, Lead: c.h.cfg.PlayoutLead})
	b := rtvi.NewBridge(rtvi.Config{
		SessionID:     c.ID(),
		Metadata:      c.meta,
		ClientMessage: c.h.cfg.ClientMessage,
		Logger:        c.Logger(),
		Send: func(msg []byte, optional bool) {
			c.Enqueue(transport.Outgoing{Data: msg}, !optional)
		},
	})
	s := c.Session(opus.Format, opus.Format, in, play, func(ctx context.Context, p transport.Pusher) error {
		return c.feed(ctx, p, b)
	})
	s.Observer, s.Notify, s.Start, s.Metadata = b, b.Notify, c.meta, transport.StartMetadata(c.meta)
	c.Logger().Info("session started")
	// The session outlives the offer's request: its context is its own,
	// and Shutdown ends it through Close.
	err = c.h.run(context.Background(), s)
	c.Close(err)
	c.LogEnd(err)
}

// feed implements transport.Session.Feed: it hands the chat channel's
// RTVI messages to b, and the mic's audio from the current peer connection, until
// the client ends the session or goes away (no ping for PingTimeout, or
// no chat channel within ConnectTimeout of an answer).
func (c *smallConn) feed(ctx context.Context, p transport.Pusher, b *rtvi.Bridge) error {
	cfg := &c.h.cfg
	tick := time.NewTicker(cfg.PingTimeout / 4)
	defer tick.Stop()

	type result struct {
		gen int
		err error
	}
	readc := make(chan result, 1)
	gen := 0 // of the live reader
	stopReader := func() {}
	stop := func() {
		stopReader()
		stopReader = func() {}
		if gen > 0 {
			for r := range readc {
				if r.gen == gen {
					break
				}
			}
			gen = 0
		}
	}
	defer stop()
	next := 0
	in := trackIn{cfg: &cfg.Config, lastRx: &c.lastRx, log: c.Logger(), muted: &c.muted}
	for {
		select {
		case tr := <-c.tracks:
			stop()
			next++
			gen = next
			rctx, cancel := context.WithCancel(ctx)
			stopReader = cancel
			g := gen
			go func() { readc <- result{g, readTrack(rctx, p, tr, in)} }()
		case r := <-readc:
			if r.gen != gen {
				continue
			}
			gen = 0
			stopReader()
			stopReader = func() {}
			// A track that ends with its peer connection leaves the
			// session to a restart or to the ping timeout.
			if r.err != nil && !errors.Is(r.err, ErrPeerGone) {
				return r.err
			}
		case data := <-c.msgs:
			done, err := b.Handle(ctx, p, data)
			if err != nil {
				return err
			}
			if done {
				stop() // no audio after the end
				return nil
			}
		case now := <-tick.C:
			c.mu.Lock()
			open, since := c.dc != nil, c.since
			c.mu.Unlock()
			if !open {
				if now.Sub(since) > cfg.ConnectTimeout {
					return fmt.Errorf("%w: chat channel not open within %v", ErrIdle, cfg.ConnectTimeout)
				}
				continue
			}
			if now.Sub(time.Unix(0, c.lastPing.Load())) > cfg.PingTimeout {
				return fmt.Errorf("%w: no ping for %v", ErrIdle, cfg.PingTimeout)
			}
		case <-c.Done():
			return c.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
