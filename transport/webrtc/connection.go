package webrtc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/audio/opus"
	"github.com/voiced-dev/voiced/transport"
)

// conn is one WebRTC session: the shared skeleton plus the peer connection.
// Its lifetime: accept builds it, serve runs the Factory; Close (from any
// goroutine: the peer, Shutdown, the session) makes the writer flush the
// events and close the peer connection, which ends the track readers.
type conn struct {
	*transport.Conn
	h  *Handler
	pc *pion.PeerConnection

	out      *pion.TrackLocalStaticRTP
	senderWG sync.WaitGroup // the RTCP reader of the sender

	sender rtpSender // used on the playout goroutine only

	track  chan *pion.TrackRemote // the peer's first audio track
	msgs   chan []byte            // data-channel text messages
	lastRx atomic.Int64           // unix nanoseconds of the last packet or message

	dcMu   sync.Mutex
	dc     *pion.DataChannel
	dcOpen chan struct{} // closed when the events channel opens

	wdone chan struct{} // closed when the writer has closed the peer connection
}

func newConn(h *Handler, pc *pion.PeerConnection) (*conn, error) {
	enc, err := opus.NewEncoder()
	if err != nil {
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	c := &conn{
		Conn:   transport.NewConn(transport.ConnConfig{Kind: Kind, Logger: h.log}),
		h:      h,
		pc:     pc,
		sender: rtpSender{enc: enc},
		track:  make(chan *pion.TrackRemote, 1),
		msgs:   make(chan []byte, 64),
		dcOpen: make(chan struct{}),
		wdone:  make(chan struct{}),
	}
	c.lastRx.Store(time.Now().UnixNano())
	c.out, err = pion.NewTrackLocalStaticRTP(opusCodec.RTPCodecCapability, "audio", "voiced")
	if err != nil {
		return nil, fmt.Errorf("webrtc: output track: %w", err)
	}
	c.sender.track = c.out
	sender, err := pc.AddTrack(c.out)
	if err != nil {
		return nil, fmt.Errorf("webrtc: add track: %w", err)
	}
	// RTCP must be read for the interceptors (NACK, reports) to work; the
	// read fails once the connection is closed.
	c.senderWG.Go(func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	})
	pc.OnTrack(func(t *pion.TrackRemote, _ *pion.RTPReceiver) {
		if t.Kind() != pion.RTPCodecTypeAudio {
			return
		}
		select {
		case c.track <- t:
		default: // only the first audio track is heard
		}
	})
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) {
		c.Logger().Debug("connection state", "state", s.String())
		switch s {
		case pion.PeerConnectionStateFailed:
			c.Close(fmt.Errorf("%w: ICE failed", ErrPeerGone))
		case pion.PeerConnectionStateClosed:
			c.Close(fmt.Errorf("%w: connection closed", ErrPeerGone))
		}
	})
	pc.OnDataChannel(c.onDataChannel)
	return c, nil
}

// serve runs the session until it ends, then waits for the peer connection
// to be closed.
func (c *conn) serve(h *Handler) {
	go c.writer()
	defer func() {
		<-c.wdone
		c.senderWG.Wait()
	}()
	in, err := transport.NewInput(opus.Format, h.cfg.PipelineFormat)
	if err != nil {
		c.Close(err)
		return
	}
	play := transport.NewPlayout(c, transport.PlayoutConfig{Format: opus.Format, Lead: h.cfg.PlayoutLead})
	s := c.Session(opus.Format, opus.Format, in, play, c.feed)
	c.Logger().Info("session started")
	// The session outlives the offer's request: its context is its own,
	// and Shutdown ends it through Close.
	err = h.run(context.Background(), s)
	c.Close(err)
	c.LogEnd(err)
}

// feed implements transport.Session.Feed: it pushes the peer's typed
// messages, and its audio once the track arrives, until the peer ends or
// goes away.
func (c *conn) feed(ctx context.Context, p transport.Pusher) error {
	c.Ready(p, opus.Format, opus.Format)
	connect := time.NewTimer(c.h.cfg.ConnectTimeout)
	defer connect.Stop()
	idle := time.NewTicker(c.h.cfg.IdleTimeout / 4)
	defer idle.Stop()

	var readc chan error // nil until the track arrives
	stopReader := func() {}
	stop := func() {
		stopReader()
		if readc != nil {
			<-readc
			readc = nil
		}
	}
	defer stop()
	for {
		select {
		case tr := <-c.track:
			connect.Stop()
			rctx, cancel := context.WithCancel(ctx)
			stopReader = cancel
			readc = make(chan error, 1)
			go func() { readc <- c.readAudio(rctx, p, tr) }()
		case <-connect.C:
			return fmt.Errorf("%w: no audio within %v", ErrIdle, c.h.cfg.ConnectTimeout)
		case data := <-c.msgs:
			m, err := parseMessage(data)
			if err != nil {
				return err
			}
			if m.Type == "end" {
				stop() // no audio after End
			}
			if done, err := transport.Deliver(ctx, p, m); done || err != nil {
				return err
			}
		case err := <-readc:
			readc = nil
			return err
		case <-c.Done():
			return c.Err()
		case <-ctx.Done():
			return ctx.Err()
		case now := <-idle.C:
			if now.Sub(time.Unix(0, c.lastRx.Load())) > c.h.cfg.IdleTimeout {
				return fmt.Errorf("%w: nothing received for %v", ErrIdle, c.h.cfg.IdleTimeout)
			}
		}
	}
}
