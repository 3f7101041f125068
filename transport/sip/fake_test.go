package sip

import (
	"context"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// The fake factory builds a real pipeline around the call's stages:
//
//	s.Input → recorder → bot → s.Output
//
// The recorder keeps what reaches the pipeline proper; the bot answers the
// first speech it hears, and every DTMF entry, with a 440 Hz tone.

const replyLen = 600 * time.Millisecond

type record struct {
	s *transport.Session

	mu     sync.Mutex
	audio  []int16 // input audio, as the second stage saw it
	bad    []frame.Format
	digits []byte
	texts  []string // typed transcripts

	err  error
	done chan struct{}
}

func (r *record) Name() string { return "recorder" }

func (r *record) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	r.mu.Lock()
	switch f := f.(type) {
	case *frame.InputAudio:
		if f.Format != frame.Mono16k {
			r.bad = append(r.bad, f.Format)
		}
		r.audio = append(r.audio, f.Samples...)
	case *frame.DTMF:
		r.digits = append(r.digits, f.Digit)
	case *frame.Transcript:
		r.texts = append(r.texts, f.Text)
	}
	r.mu.Unlock()
	out.Pass(f)
	return nil
}

func (r *record) snapshot() (pcm []int16, digits string, texts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.audio...), string(r.digits), append([]string(nil), r.texts...)
}

// bot replies with a tone to the first loud input and to each transcript.
type bot struct {
	spoke  bool
	format frame.Format // the session's output
}

func (b *bot) Name() string { return "bot" }

func (b *bot) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	switch f := f.(type) {
	case *frame.InputAudio:
		if !b.spoke && audio.DBFS(f.Samples) > -35 {
			b.spoke = true
			b.reply(out, "hello")
		}
	case *frame.Transcript:
		b.reply(out, "you pressed "+f.Text)
		return nil
	}
	out.Pass(f)
	return nil
}

func (b *bot) reply(out pipeline.Emitter, text string) {
	out.Emit(&frame.TTSText{Text: text})
	n := b.format.Samples(replyLen)
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/float64(b.format.SampleRate)))
	}
	out.Emit(&frame.OutputAudio{Format: b.format, Samples: pcm, Spoken: text})
}

// factory is a transport.Factory recording its sessions.
type factory struct {
	mu       sync.Mutex
	sessions []*record
	started  chan *record
}

func newFactory() *factory { return &factory{started: make(chan *record, 16)} }

func (fa *factory) run(ctx context.Context, s *transport.Session) error {
	r := &record{s: s, done: make(chan struct{})}
	fa.mu.Lock()
	fa.sessions = append(fa.sessions, r)
	fa.mu.Unlock()
	fa.started <- r
	err := runSession(ctx, s, s.Input, r, &bot{format: s.Out}, s.Output)
	r.err = err
	close(r.done)
	return err
}

// runSession runs a pipeline of procs over s.
func runSession(ctx context.Context, s *transport.Session, procs ...pipeline.Processor) error {
	return transport.Run(ctx, s, pipeline.New(pipeline.Options{}, procs...))
}

// startServer serves SIP on loopback UDP and TCP (the same port) until t
// ends.
func startServer(t *testing.T, cfg Config, run transport.Factory) (*Server, netip.AddrPort) {
	t.Helper()
	if cfg.RTPPortMin == 0 {
		cfg.RTPPortMin, cfg.RTPPortMax = 30000, 30999
	}
	if testing.Verbose() {
		cfg.Logger = testLogger()
	}
	s, err := NewServer(cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var addr netip.AddrPort
	for range 10 {
		addr, err = s.Listen(ctx, "udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if _, err = s.Listen(ctx, "tcp", addr.String()); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := s.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
	})
	return s, addr
}

// requireBinary returns the path of a peer program, skipping the test when
// it is missing (failing under VOICED_REQUIRE_SERVICES=1).
func requireBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s not installed (apt-get install %s; make deps) and VOICED_REQUIRE_SERVICES=1", name, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s; make deps); set VOICED_REQUIRE_SERVICES=1 to fail instead", name, pkg)
	}
	return p
}

// freePort returns a port free on loopback for UDP and TCP (a SIP peer
// listens on both), with the next one free for UDP too (RTP and RTCP).
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 != 0 || port > 65000 {
			continue
		}
		c2, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", itoa(port+1)))
		if err != nil {
			continue
		}
		c2.Close()
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port pair")
	return 0
}

// tsStep is the RTP timestamp step of a 20 ms packet at the 8 kHz clock
// of G.711 and G.722.
const tsStep = 160
