package webrtc_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/webrtc"
	"github.com/voiced-dev/voiced/transport/websocket"
)

// The fake factory builds a real pipeline around the transport's stages:
//
//	s.Input → recorder → bot → s.Output
//
// The recorder keeps the audio that reaches the pipeline proper; the bot
// answers every final transcript with a TTSText and a 440 Hz tone at the
// session's output rate (200 ms, or 5 s for the text "long").

type record struct {
	kind  string // the session's Kind
	mu    sync.Mutex
	audio []*frame.InputAudio
	typed []frame.Frame // the Transcripts and Interruptions the transport pushed
	done  chan struct{}
	err   error
}

func (r *record) Name() string { return "recorder" }

func (r *record) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	r.mu.Lock()
	switch f := f.(type) {
	case *frame.InputAudio:
		c := *f
		c.Samples = append([]int16(nil), f.Samples...)
		r.audio = append(r.audio, &c)
	case *frame.Transcript:
		c := *f
		r.typed = append(r.typed, &c)
	case *frame.Interruption:
		r.typed = append(r.typed, f)
	}
	r.mu.Unlock()
	out.Pass(f)
	return nil
}

// samples returns the input audio received, concatenated, and the formats
// it came in.
func (r *record) samples() ([]int16, map[frame.Format]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []int16
	formats := map[frame.Format]bool{}
	for _, a := range r.audio {
		formats[a.Format] = true
		all = append(all, a.Samples...)
	}
	return all, formats
}

type bot struct{ out frame.Format }

func (b bot) Name() string { return "bot" }

func (b bot) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	tr, ok := f.(*frame.Transcript)
	if !ok || !tr.Final {
		out.Pass(f)
		return nil
	}
	d := 200 * time.Millisecond
	if tr.Text == "long" {
		d = 5 * time.Second
	}
	text := "echo: " + tr.Text
	out.Emit(&frame.TTSText{Text: text})
	chunk, n := b.out.Samples(20*time.Millisecond), b.out.Samples(d)
	for sent := 0; sent < n; sent += chunk {
		pcm := make([]int16, min(chunk, n-sent))
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(sent+i)/float64(b.out.SampleRate)))
		}
		a := &frame.OutputAudio{Format: b.out, Samples: pcm}
		if sent+chunk >= n {
			a.Spoken = text
		}
		out.Emit(a)
	}
	return nil
}

type factory struct {
	mu       sync.Mutex
	sessions []*record
}

func (fa *factory) last() *record {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.sessions) == 0 {
		return nil
	}
	return fa.sessions[len(fa.sessions)-1]
}

// run builds the fake pipeline and runs it with transport.Run, as
// session.Builder.Run does.
func (fa *factory) run(ctx context.Context, s *transport.Session) (err error) {
	r := &record{done: make(chan struct{}), kind: s.Kind}
	fa.mu.Lock()
	fa.sessions = append(fa.sessions, r)
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

type server struct {
	h   *webrtc.Handler
	fa  *factory
	url string
}

// checkGoroutines fails the test if goroutines started during it are still
// running once its cleanups (registered later, run earlier) are done.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// pion's timers and UDP readers finish shortly after Close.
		if waitFor(10*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
			return
		}
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	})
}

func newServer(t *testing.T, cfg webrtc.Config) *server {
	t.Helper()
	checkGoroutines(t)
	cfg.Loopback = true
	fa := &factory{}
	h := webrtc.NewHandler(cfg, fa.run)
	mux := http.NewServeMux()
	mux.Handle("POST /webrtc/offer", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &server{h: h, fa: fa, url: srv.URL + "/webrtc/offer"}
}

func ready(t *testing.T, c *client) Event {
	t.Helper()
	if !waitFor(10*time.Second, func() bool { return c.count("ready", time.Time{}) > 0 }) {
		t.Fatal("no ready event")
	}
	ev, _ := c.first("ready", time.Time{})
	return ev
}

// sine returns d of a 440 Hz tone at 16 kHz.
func sine(d time.Duration) []int16 {
	pcm := make([]int16, int(d.Seconds()*16000))
	for i := range pcm {
		pcm[i] = int16(10000 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	return pcm
}

func TestTypedTurn(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		name := "sdp"
		if asJSON {
			name = "json"
		}
		t.Run(name, func(t *testing.T) {
			s := newServer(t, webrtc.Config{})
			c := newClient(t)
			c.connect(s.url, asJSON)
			ev := ready(t, c)
			if ev.SessionID == "" || ev.SampleRate != 48000 {
				t.Errorf("ready %+v: want a session id and 48000 Hz", ev)
			}
			if k := s.fa.last().kind; k != "webrtc" {
				t.Errorf("session kind %q, want webrtc", k)
			}
			since := time.Now()
			c.send(map[string]string{"type": "text", "text": "hello"})
			if !c.silenceUntil(10*time.Second, func() bool { return c.count("bot_stopped_speaking", since) > 0 }) {
				evs, _ := c.snapshot()
				t.Fatalf("no answer; events: %s", types(evs))
			}
			tr, _ := c.first("transcript", since)
			if tr.Text != "hello" || !tr.Final {
				t.Errorf("transcript %+v, want final \"hello\"", tr)
			}
			bt, _ := c.first("bot_text", since)
			if bt.Text != "echo: hello" {
				t.Errorf("bot_text %q", bt.Text)
			}
			if _, ok := c.firstAudible(since); !ok {
				t.Error("no audible reply audio")
			}
			// 200 ms of reply: 10 packets of 960 samples.
			start, _ := c.first("bot_started_speaking", since)
			if n := c.audioBetween(start.At.Add(-time.Second), time.Now()); n < 9600 {
				t.Errorf("received %d samples of reply, want ≥ 9600", n)
			}
			// "end" drains and closes the session.
			c.send(map[string]string{"type": "end"})
			r := s.fa.last()
			select {
			case <-r.done:
			case <-time.After(10 * time.Second):
				t.Fatal("session did not end after end")
			}
			if r.err != nil {
				t.Errorf("session ended with %v, want nil", r.err)
			}
			select {
			case <-c.gone:
			case <-time.After(15 * time.Second):
				t.Error("the server did not close the peer connection")
			}
		})
	}
}

// TestAudioIn sends a tone with every 10th packet lost and pairs swapped:
// the pipeline gets it at 16 kHz, in full (lost packets concealed), and
// still a tone.
func TestAudioIn(t *testing.T) {
	s := newServer(t, webrtc.Config{})
	c := newClient(t)
	c.dropEvery, c.swap = 10, true
	c.connect(s.url, false)
	ready(t, c)
	tone := sine(2 * time.Second)
	c.stream(tone)
	c.swap = false
	c.dropEvery = 0
	c.silence(200 * time.Millisecond) // flushes the held packet and gaps
	r := s.fa.last()
	var got []int16
	waitFor(5*time.Second, func() bool { got, _ = r.samples(); return len(got) >= len(tone)+3200-640 })
	got, formats := r.samples()
	if len(formats) != 1 || !formats[frame.Mono16k] {
		t.Errorf("pipeline audio formats %v, want only %+v", formats, frame.Mono16k)
	}
	// Tone plus silence, all of it (lost packets are concealed, not
	// skipped); a frame may still be in the resampler or the jitter buffer.
	if want := len(tone) + 3200; len(got) < want-640 || len(got) > want {
		t.Errorf("pipeline got %d samples, want %d (within 40 ms)", len(got), want)
	}
	// Where the tone was, the signal is loud and zero-crossings match 440 Hz.
	seg := got[3200:min(len(got), 3200+16000)]
	var energy float64
	cross := 0
	for i, v := range seg {
		energy += float64(v) * float64(v)
		if i > 0 && (seg[i-1] < 0) != (v < 0) {
			cross++
		}
	}
	rms := math.Sqrt(energy / float64(len(seg)))
	if rms < 3000 {
		t.Errorf("tone RMS %.0f, want ≥ 3000 (sent 7071)", rms)
	}
	if hz := float64(cross) / 2 / (float64(len(seg)) / 16000); hz < 400 || hz > 480 {
		t.Errorf("tone at %.0f Hz, want 440", hz)
	}
}

// TestBargeIn interrupts a long answer with typed text: the transport
// pushes exactly the typed transcripts (the fake turn-taking stage
// interrupts), `interrupted` comes, and the old answer's audio stops.
func TestBargeIn(t *testing.T) {
	s := newServer(t, webrtc.Config{})
	c := dial(t, s.url)
	ready(t, c)
	since := time.Now()
	c.send(map[string]string{"type": "text", "text": "long"})
	if !c.silenceUntil(10*time.Second, func() bool { return c.count("bot_started_speaking", since) > 0 }) {
		t.Fatal("the long answer did not start")
	}
	c.silence(time.Second)
	barge := time.Now()
	c.send(map[string]string{"type": "text", "text": "stop"})
	if !c.silenceUntil(10*time.Second, func() bool { return c.count("bot_stopped_speaking", barge) >= 2 }) {
		evs, _ := c.snapshot()
		t.Fatalf("no interruption and answer; events: %s", types(evs))
	}
	intr, ok := c.first("interrupted", barge)
	if !ok {
		t.Fatal("no interrupted event")
	}
	stop, _ := c.first("bot_stopped_speaking", barge)
	if stop.Interrupted == nil || !*stop.Interrupted {
		t.Errorf("first bot_stopped_speaking after the barge-in: %+v, want interrupted", stop)
	}
	next, _ := c.first("bot_started_speaking", intr.At)
	// What was already sent (the playout's 100 ms lead) may still arrive.
	after := c.audioBetween(intr.At, next.At)
	if ms := after / 48; ms > 300 {
		t.Errorf("%d ms of the old answer arrived after `interrupted`", ms)
	}
	t.Logf("%d ms of the old answer after `interrupted`", after/48)

	r := s.fa.last()
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []string
	for _, f := range r.typed {
		switch f := f.(type) {
		case *frame.Transcript:
			got = append(got, fmt.Sprintf("transcript %q typed=%v final=%v", f.Text, f.Typed, f.Final))
		default:
			got = append(got, fmt.Sprintf("%T", f))
		}
	}
	want := []string{`transcript "long" typed=true final=true`, `transcript "stop" typed=true final=true`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the transport pushed %q, want %q", got, want)
	}
}

func TestBadOffers(t *testing.T) {
	s := newServer(t, webrtc.Config{})
	good := newClient(t).offer()
	audioless := strings.Join(strings.FieldsFunc(good, func(r rune) bool { return r == '\n' }), "\n")
	audioless = audioless[:strings.Index(audioless, "m=audio")] // session part only
	for _, tc := range []struct {
		name, ct, body string
		status         int
		msg            string
	}{
		{"garbage", "application/sdp", "hello", 400, "malformed SDP"},
		{"empty", "application/sdp", "", 400, "malformed SDP"},
		{"truncated", "application/sdp", good[:len(good)/3], 400, ""},
		{"no audio", "application/sdp", audioless, 400, "no audio"},
		{"json not an object", "application/json", `"v=0"`, 400, "JSON"},
		{"json answer", "application/json", `{"type":"answer","sdp":"v=0"}`, 400, `want "offer"`},
		{"json unknown field", "application/json", `{"type":"offer","sdp":"v=0","x":1}`, 400, "unknown field"},
		{"content type", "text/plain", good, 415, "application/sdp"},
		{"too large", "application/sdp", strings.Repeat("a", webrtc.MaxOffer+1), 413, "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, s.url, tc.ct, tc.body, nil)
			if status != tc.status || !strings.Contains(body, tc.msg) {
				t.Errorf("HTTP %d %q, want %d containing %q", status, body, tc.status, tc.msg)
			}
		})
	}
	if n := s.h.Sessions(); n != 0 {
		t.Errorf("%d sessions after bad offers", n)
	}
	// Nothing else is affected: a good offer still works.
	c := dial(t, s.url)
	ready(t, c)
}

func TestOrigin(t *testing.T) {
	s := newServer(t, webrtc.Config{Origins: []string{"https://app.example"}})
	host := strings.TrimPrefix(strings.TrimSuffix(s.url, "/webrtc/offer"), "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://app.example", true},
		{"https://evil.example", false},
		{"::bad", false},
	} {
		c := newClient(t)
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		status, body := post(t, s.url, "application/sdp", c.offer(), h)
		if tc.ok && status != http.StatusCreated || !tc.ok && status != http.StatusForbidden {
			t.Errorf("origin %q: HTTP %d %q", tc.origin, status, body)
		}
		c.close()
	}
}

func TestSessionLimit(t *testing.T) {
	s := newServer(t, webrtc.Config{MaxSessions: 1})
	c1 := dial(t, s.url)
	ready(t, c1)
	c2 := newClient(t)
	if status, body := post(t, s.url, "application/sdp", c2.offer(), nil); status != http.StatusServiceUnavailable {
		t.Fatalf("second session: HTTP %d %q, want 503", status, body)
	}
	// The peer hangs up: its session ends, and a new one is taken.
	c1.close()
	if !waitFor(10*time.Second, func() bool { return s.h.Sessions() == 0 }) {
		t.Fatal("session did not end after the peer closed")
	}
	if r := s.fa.last(); !errors.Is(r.err, webrtc.ErrPeerGone) {
		t.Errorf("session ended with %v, want ErrPeerGone", r.err)
	}
	c3 := dial(t, s.url)
	ready(t, c3)
}

// TestAdmissionAcrossEdges: a WebSocket session and a WebRTC one count
// against one shared limit (server.max_sessions), and Shutdown of the
// shared Admission ends both.
func TestAdmissionAcrossEdges(t *testing.T) {
	adm := transport.NewAdmission(1)
	s := newServer(t, webrtc.Config{Admission: adm})
	wsh := websocket.NewHandler(websocket.Config{Admission: adm}, s.fa.run)
	wsrv := httptest.NewServer(wsh)
	defer wsrv.Close()
	ws, _, err := gws.DefaultDialer.Dial("ws"+strings.TrimPrefix(wsrv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if !waitFor(10*time.Second, func() bool { return adm.Sessions() == 1 }) {
		t.Fatal("the WebSocket session was not admitted")
	}
	status, body := post(t, s.url, "application/sdp", newClient(t).offer(), nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "max_sessions 1") {
		t.Fatalf("WebRTC offer beside a WebSocket session: HTTP %d %q, want 503 naming max_sessions", status, body)
	}
	ws.WriteMessage(gws.TextMessage, []byte(`{"type":"end"}`))
	if !waitFor(10*time.Second, func() bool { return adm.Sessions() == 0 }) {
		t.Fatal("the WebSocket session did not end")
	}
	c := dial(t, s.url)
	ready(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := adm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := s.fa.last(); !errors.Is(r.err, transport.ErrShuttingDown) {
		t.Errorf("WebRTC session ended with %v, want ErrShuttingDown", r.err)
	}
	if _, resp, err := gws.DefaultDialer.Dial("ws"+strings.TrimPrefix(wsrv.URL, "http"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket after Shutdown: %v, want HTTP 503", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	s := newServer(t, webrtc.Config{})
	for _, tc := range []struct{ msg, code string }{
		{"nope", "invalid_json"},
		{`{"type":"start"}`, "unknown_type"},
		{`{"type":"text","text":"` + strings.Repeat("a", transport.MaxText+1) + `"}`, "too_large"},
	} {
		c := dial(t, s.url)
		ready(t, c)
		if err := c.dc.SendText(tc.msg); err != nil {
			t.Fatal(err)
		}
		if !waitFor(10*time.Second, func() bool { return c.count("error", time.Time{}) > 0 }) {
			t.Fatalf("%.20q: no error event", tc.msg)
		}
		if ev, _ := c.first("error", time.Time{}); ev.Code != tc.code {
			t.Errorf("%.20q: error %q (%s), want %q", tc.msg, ev.Code, ev.Message, tc.code)
		}
		select {
		case <-c.gone:
		case <-time.After(15 * time.Second):
			t.Errorf("%.20q: the server did not close the connection", tc.msg)
		}
	}
}

func TestNoAudioTimesOut(t *testing.T) {
	s := newServer(t, webrtc.Config{ConnectTimeout: 300 * time.Millisecond})
	c := dial(t, s.url) // never sends audio
	if !waitFor(10*time.Second, func() bool { return c.count("error", time.Time{}) > 0 }) {
		t.Fatal("no error event")
	}
	if ev, _ := c.first("error", time.Time{}); ev.Code != "idle" {
		t.Errorf("error %q, want idle", ev.Code)
	}
	if !waitFor(10*time.Second, func() bool { return s.h.Sessions() == 0 }) {
		t.Fatal("session still live")
	}
}

func TestShutdown(t *testing.T) {
	s := newServer(t, webrtc.Config{})
	c := dial(t, s.url)
	ready(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, ok := c.first("error", time.Time{}); !ok || ev.Code != "shutting_down" {
		// The event may still be in flight when Shutdown returns.
		waitFor(2*time.Second, func() bool { return c.count("error", time.Time{}) > 0 })
		ev, _ = c.first("error", time.Time{})
		if ev.Code != "shutting_down" {
			t.Errorf("error event %+v, want shutting_down", ev)
		}
	}
	if status, _ := post(t, s.url, "application/sdp", newClient(t).offer(), nil); status != http.StatusServiceUnavailable {
		t.Errorf("offer after Shutdown: HTTP %d, want 503", status)
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true,
		":8080": false, "0.0.0.0:80": false, "10.0.0.1:80": false, "nonsense": false,
	} {
		if got := webrtc.LoopbackAddr(addr); got != want {
			t.Errorf("LoopbackAddr(%q) = %v", addr, got)
		}
	}
}

// TestInputTooFast: a peer sending RTP far faster than real time is held
// back and then ended with too_fast; the pipeline got about real time.
func TestInputTooFast(t *testing.T) {
	s := newServer(t, webrtc.Config{InputBurst: 200 * time.Millisecond, InputMaxAhead: 300 * time.Millisecond})
	c := newClient(t)
	c.connect(s.url, false)
	ready(t, c)
	start := time.Now()
	frame := make([]int16, 960)
	// 20 s of audio as fast as the client can send it, in bursts of 1 s.
	for i := 0; i < 1000 && c.count("error", time.Time{}) == 0; i++ {
		c.packet(frame)
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !waitFor(10*time.Second, func() bool { return c.count("error", time.Time{}) > 0 }) {
		t.Fatal("no error event")
	}
	if ev, _ := c.first("error", time.Time{}); ev.Code != "too_fast" {
		t.Errorf("error %q, want too_fast", ev.Code)
	}
	elapsed := time.Since(start)
	got, _ := s.fa.last().samples()
	if d := time.Duration(len(got)) * time.Second / 16000; d > elapsed+time.Second {
		t.Errorf("pipeline got %v of audio in %v", d, elapsed)
	}
	if !waitFor(10*time.Second, func() bool { return s.h.Sessions() == 0 }) {
		t.Fatal("session still live")
	}
}
