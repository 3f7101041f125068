package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
)

// The fake factory builds a real pipeline around the transport's stages:
//
//	s.Input → recorder → bot → s.Output
//
// The recorder keeps what reaches the pipeline proper; the bot answers every
// final transcript with a TTSText and OutputAudio at the client's output
// rate, each sample set to 1000×turn so the client can tell turns apart.

// errProviderFailed is what the fake bot fails with on the text "fail".
var errProviderFailed = errors.New("fake provider failed")

const (
	replyShort = 200 * time.Millisecond // answer to any text
	replyLong  = 5 * time.Second        // answer to "long"
)

// record is what one session's pipeline saw.
type record struct {
	s *transport.Session

	mu    sync.Mutex
	audio []*frame.InputAudio // copies, as the second stage saw them
	seq   []frame.Frame       // Interruptions and Transcripts the transport pushed, in order
	ended bool                // End reached the recorder (it drained)

	err  error         // the factory's result, set before done closes
	done chan struct{} // closed when the factory returns
}

func (r *record) Name() string { return "recorder" }

func (r *record) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	r.mu.Lock()
	switch f := f.(type) {
	case *frame.InputAudio:
		c := *f
		c.Samples = append([]int16(nil), f.Samples...)
		r.audio = append(r.audio, &c)
	case *frame.Interruption:
		c := *f
		r.seq = append(r.seq, &c)
	case *frame.Transcript:
		c := *f
		r.seq = append(r.seq, &c)
	}
	r.mu.Unlock()
	out.Pass(f)
	return nil
}

func (r *record) Drain(context.Context, pipeline.Emitter) error {
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
	return nil
}

// samples returns the input audio the pipeline received, concatenated, and
// fails if any frame was not in the pipeline's format.
func (r *record) samples(t *testing.T) []int16 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []int16
	for _, a := range r.audio {
		if a.Format != frame.Mono16k {
			t.Errorf("pipeline got audio in %+v, want %+v", a.Format, frame.Mono16k)
		}
		all = append(all, a.Samples...)
	}
	return all
}

func (r *record) frames() []frame.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]frame.Frame(nil), r.seq...)
}

// bot answers final transcripts.
type bot struct{ out frame.Format }

func (b bot) Name() string { return "bot" }

func (b bot) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	tr, ok := f.(*frame.Transcript)
	if !ok || !tr.Final {
		out.Pass(f)
		return nil
	}
	if tr.Text == "fail" {
		return errProviderFailed
	}
	d := replyShort
	if tr.Text == "long" {
		d = replyLong
	}
	text := "echo: " + tr.Text
	out.Emit(&frame.TTSText{Text: text})
	chunk, n := b.out.Samples(20*time.Millisecond), b.out.Samples(d)
	for sent := 0; sent < n; sent += chunk {
		pcm := make([]int16, min(chunk, n-sent))
		for i := range pcm {
			pcm[i] = int16(1000 * tr.Turn)
		}
		a := &frame.OutputAudio{Format: b.out, Samples: pcm}
		if sent+chunk >= n {
			a.Spoken = text
		}
		out.Emit(a)
	}
	return nil
}

// factory is a transport.Factory recording its sessions.
type factory struct {
	mu       sync.Mutex
	sessions map[string]*record
}

func newFactory() *factory { return &factory{sessions: map[string]*record{}} }

// session returns the record of the session id (from the ready event).
func (fa *factory) session(t *testing.T, id string) *record {
	t.Helper()
	fa.mu.Lock()
	defer fa.mu.Unlock()
	r := fa.sessions[id]
	if r == nil {
		t.Fatalf("factory never ran session %q", id)
	}
	return r
}

// run builds the fake pipeline and runs it with transport.Run, as
// session.Builder.Run does.
func (fa *factory) run(ctx context.Context, s *transport.Session) (err error) {
	r := &record{s: s, done: make(chan struct{})}
	fa.mu.Lock()
	fa.sessions[s.ID] = r
	fa.mu.Unlock()
	defer func() { r.err = err; close(r.done) }()

	p := pipeline.New(pipeline.Options{Observers: []pipeline.Observer{s.Observer}}, s.Input, r, &interrupter{}, bot{out: s.Out}, s.Output)
	return transport.Run(ctx, s, p)
}

// interrupter stands for the pipeline's turn-taking stage, which owns
// barge-in: a typed transcript interrupts the current turn and is answered
// in the new one. The transport itself only pushes the transcript.
type interrupter struct{ rt pipeline.Runtime }

func (i *interrupter) Start(_ context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	i.rt = rt
	return nil
}

func (i *interrupter) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	tr, ok := f.(*frame.Transcript)
	if !ok || !tr.Typed {
		out.Pass(f)
		return nil
	}
	n := i.rt.Interrupt("user typed")
	out.Emit(&frame.Interruption{Meta: frame.Meta{Turn: n}, Reason: "user typed"})
	c := *tr
	c.Turn = n
	out.Emit(&c)
	return nil
}

// server is an httptest.Server running a Handler with the fake factory.
type server struct {
	h   *Handler
	fa  *factory
	srv *httptest.Server
	url string
}

func newServer(t *testing.T, cfg Config) *server {
	t.Helper()
	fa := newFactory()
	h := NewHandler(cfg, fa.run)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &server{h: h, fa: fa, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

// wireEvent is a server event as the client decodes it. Pointers tell a
// missing field from a zero one.
type wireEvent struct {
	Type             string  `json:"type"`
	Turn             *uint32 `json:"turn"`
	TMs              *int64  `json:"t_ms"`
	Text             string  `json:"text"`
	Final            *bool   `json:"final"`
	SessionID        string  `json:"session_id"`
	SampleRate       int     `json:"sample_rate"`
	OutputSampleRate int     `json:"output_sample_rate"`
	Interrupted      *bool   `json:"interrupted"`
	Code             string  `json:"code"`
	Message          string  `json:"message"`
}

// msg is one message the client read.
type msg struct {
	pcm []int16    // binary: the decoded audio
	ev  *wireEvent // text: the event
}

// client is a gorilla WebSocket client speaking the protocol.
type client struct {
	t  *testing.T
	ws *gws.Conn
}

// readTimeout only stops a broken test from hanging; no assertion depends on it.
const readTimeout = 20 * time.Second

func (s *server) dial(t *testing.T, header http.Header) *client {
	t.Helper()
	ws, resp, err := gws.DefaultDialer.Dial(s.url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	return c
}

func (c *client) send(typ int, data []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(typ, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) sendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(gws.TextMessage, b)
}

func (c *client) text(s string) {
	c.t.Helper()
	c.sendJSON(map[string]string{"type": "text", "text": s})
}

func (c *client) audio(pcm []int16) {
	c.t.Helper()
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		b[2*i], b[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	c.send(gws.BinaryMessage, b)
}

// read returns the next message, or the close error that ended the stream.
func (c *client) read() (msg, *gws.CloseError) {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		var ce *gws.CloseError
		if errors.As(err, &ce) {
			return msg{}, ce
		}
		c.t.Fatalf("read: %v", err)
	}
	if typ == gws.BinaryMessage {
		if len(data)%2 != 0 {
			c.t.Fatalf("binary message of odd length %d", len(data))
		}
		pcm := make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
		return msg{pcm: pcm}, nil
	}
	var ev wireEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		c.t.Fatalf("event %q: %v", data, err)
	}
	if ev.Type == "" || ev.Turn == nil || ev.TMs == nil {
		c.t.Errorf("event %s lacks type, turn or t_ms", data)
	}
	return msg{ev: &ev}, nil
}

// until reads up to and including the first event of type typ and returns
// every message read. It fails on a close.
func (c *client) until(typ string) []msg {
	c.t.Helper()
	var got []msg
	for {
		m, ce := c.read()
		if ce != nil {
			c.t.Fatalf("closed (%d %q) waiting for %q after %s", ce.Code, ce.Text, typ, describe(got))
		}
		got = append(got, m)
		if m.ev != nil && m.ev.Type == typ {
			return got
		}
	}
}

// closed reads until the server closes and returns the messages before the
// close and the close itself.
func (c *client) closed() ([]msg, *gws.CloseError) {
	c.t.Helper()
	var got []msg
	for {
		m, ce := c.read()
		if ce != nil {
			return got, ce
		}
		got = append(got, m)
	}
}

// start sends a start message and returns the ready event.
func (c *client) start(rate, outRate int) *wireEvent {
	c.t.Helper()
	m := map[string]any{"type": "start", "sample_rate": rate}
	if outRate != 0 {
		m["output_sample_rate"] = outRate
	}
	c.sendJSON(m)
	got := c.until("ready")
	if len(got) != 1 {
		c.t.Fatalf("messages before ready: %s", describe(got))
	}
	return got[0].ev
}

func describe(ms []msg) string {
	var b strings.Builder
	b.WriteString("[")
	for i, m := range ms {
		if i > 0 {
			b.WriteString(" ")
		}
		if m.ev != nil {
			fmt.Fprintf(&b, "%s(turn %d", m.ev.Type, *m.ev.Turn)
			if m.ev.Text != "" {
				fmt.Fprintf(&b, " %q", m.ev.Text)
			}
			if m.ev.Code != "" {
				fmt.Fprintf(&b, " %s", m.ev.Code)
			}
			b.WriteString(")")
		} else {
			fmt.Fprintf(&b, "audio(%d)", len(m.pcm))
		}
	}
	b.WriteString("]")
	return b.String()
}

// replySamples is what the fake bot sends in answer to text, at rate.
func replySamples(rate int, text string) int {
	d := replyShort
	if text == "long" {
		d = replyLong
	}
	return frame.Format{SampleRate: rate, Channels: 1}.Samples(d)
}

// checkReply checks a bot answer among ms: bot_text, bot_started_speaking
// before any audio, all n samples of the turn's audio in chunks of at most
// 20 ms, and bot_stopped_speaking (not interrupted) after the last of it.
// The answer's turn is the bot_text's; turn, if not 0, is the one expected.
// It returns the answer's turn.
func checkReply(t *testing.T, ms []msg, text string, turn uint32, rate, n int) uint32 {
	t.Helper()
	started, stopped, total := -1, -1, 0
	sawText := false
	for _, m := range ms {
		if m.ev != nil && m.ev.Type == "bot_text" && m.ev.Text == "echo: "+text {
			sawText = true
			if turn != 0 && *m.ev.Turn != turn {
				t.Errorf("answer in turn %d, want %d", *m.ev.Turn, turn)
			}
			turn = *m.ev.Turn
		}
	}
	for i, m := range ms {
		switch {
		case m.ev == nil:
			if started < 0 || stopped >= 0 {
				t.Errorf("audio at %d outside bot_started/stopped_speaking in %s", i, describe(ms))
			}
			if len(m.pcm) > rate/50 {
				t.Errorf("audio message of %d samples, over 20 ms at %d Hz", len(m.pcm), rate)
			}
			for _, v := range m.pcm {
				if v != int16(1000*turn) {
					t.Fatalf("audio sample %d, want %d (turn %d)", v, 1000*turn, turn)
				}
			}
			total += len(m.pcm)
		case m.ev.Type == "bot_started_speaking":
			started = i
		case m.ev.Type == "bot_stopped_speaking":
			stopped = i
			if m.ev.Interrupted == nil || *m.ev.Interrupted {
				t.Errorf("bot_stopped_speaking interrupted = %v, want false", m.ev.Interrupted)
			}
		}
	}
	if !sawText {
		t.Errorf("no bot_text %q in %s", "echo: "+text, describe(ms))
	}
	if started < 0 || stopped < 0 {
		t.Errorf("bot_started/stopped_speaking missing in %s", describe(ms))
	}
	if total != n {
		t.Errorf("got %d samples of reply audio, want %d", total, n)
	}
	return turn
}

// waitFor polls cond until it holds; the deadline only stops a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitDone(t *testing.T, r *record) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(readTimeout):
		t.Fatal("factory did not return")
		return nil
	}
}
