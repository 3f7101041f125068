package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// sine returns n samples of a 440 Hz tone at rate, amplitude 8000.
func sine(rate, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/float64(rate)))
	}
	return s
}

// TestStartRates runs a whole conversation at each protocol rate: ready
// carries the rates, one second of audio reaches the pipeline at 16 kHz with
// its level intact, typed text is answered with audio at the output rate,
// and end closes with 1000 "end".
func TestStartRates(t *testing.T) {
	s := newServer(t, Config{})
	cases := []struct{ in, out, wantOut int }{
		{8000, 0, 8000},
		{16000, 0, 16000},
		{22050, 0, 22050},
		{24000, 0, 24000},
		{44100, 0, 44100},
		{48000, 0, 48000},
		{48000, 24000, 24000},
		{8000, 44100, 44100},
		{16000, 22050, 22050},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d-%d", tc.in, tc.out), func(t *testing.T) {
			t.Parallel()
			c := s.dial(t, nil)
			ready := c.start(tc.in, tc.out)
			if ready.SampleRate != tc.in || ready.OutputSampleRate != tc.wantOut || ready.SessionID == "" {
				t.Fatalf("ready = %+v, want sample_rate %d output_sample_rate %d and a session_id", ready, tc.in, tc.wantOut)
			}
			rec := s.fa.session(t, ready.SessionID)

			// One second of a tone, in 20 ms messages.
			tone := sine(tc.in, tc.in)
			for i := 0; i < len(tone); i += tc.in / 50 {
				c.audio(tone[i:min(i+tc.in/50, len(tone))])
			}
			want := len(tone) * 16000 / tc.in
			var got []int16
			waitFor(t, "input audio", func() bool { got = rec.samples(t); return len(got) >= want-2 })
			if d := len(got) - want; d < -2 || d > 2 {
				t.Errorf("pipeline got %d samples for %d at %d Hz, want %d±2", len(got), len(tone), tc.in, want)
			}
			// Past the filter's start-up, the tone keeps its level.
			if in, out := audio.RMS(tone), audio.RMS(got[len(got)/4:]); math.Abs(out/in-1) > 0.05 {
				t.Errorf("tone RMS %.4f at 16 kHz, %.4f at %d Hz", out, in, tc.in)
			}

			c.text("hello")
			ms := c.until("bot_stopped_speaking")
			checkReply(t, ms, "hello", 2, tc.wantOut, replySamples(tc.wantOut, "hello"))

			c.sendJSON(map[string]string{"type": "end"})
			rest, ce := c.closed()
			if len(rest) != 0 || ce.Code != 1000 || ce.Text != "end" {
				t.Errorf("after end: %s then close %d %q, want close 1000 \"end\"", describe(rest), ce.Code, ce.Text)
			}
			if err := waitDone(t, rec); err != nil {
				t.Errorf("factory returned %v after end", err)
			}
		})
	}
}

// TestDefaultRate: a first message that is not start runs the session at
// 16 kHz both ways, and the message itself is not lost.
func TestDefaultRate(t *testing.T) {
	s := newServer(t, Config{})
	t.Run("binary", func(t *testing.T) {
		c := s.dial(t, nil)
		pcm := []int16{1, -2, 3, -4, 32767, -32768}
		c.audio(pcm)
		ready := c.until("ready")[0].ev
		if ready.SampleRate != 16000 || ready.OutputSampleRate != 16000 {
			t.Fatalf("ready = %+v, want 16000/16000", ready)
		}
		rec := s.fa.session(t, ready.SessionID)
		var got []int16
		waitFor(t, "input audio", func() bool { got = rec.samples(t); return len(got) >= len(pcm) })
		if fmt.Sprint(got) != fmt.Sprint(pcm) {
			t.Errorf("pipeline got %v, want %v unchanged", got, pcm)
		}
		c.text("after audio")
		checkReply(t, c.until("bot_stopped_speaking"), "after audio", 2, 16000, replySamples(16000, "after audio"))
	})
	t.Run("text", func(t *testing.T) {
		c := s.dial(t, nil)
		c.text("first")
		ms := c.until("bot_stopped_speaking")
		if ms[0].ev == nil || ms[0].ev.Type != "ready" || ms[0].ev.SampleRate != 16000 || ms[0].ev.OutputSampleRate != 16000 {
			t.Fatalf("first message %s, want ready 16000/16000", describe(ms[:1]))
		}
		if i := indexOf(ms, "transcript"); i < 0 || ms[i].ev.Text != "first" || ms[i].ev.Final == nil || !*ms[i].ev.Final {
			t.Errorf("no final transcript \"first\" in %s", describe(ms))
		}
		checkReply(t, ms, "first", 0, 16000, replySamples(16000, "first"))
	})
}

func indexOf(ms []msg, typ string) int {
	for i, m := range ms {
		if m.ev != nil && m.ev.Type == typ {
			return i
		}
	}
	return -1
}

// TestTypedText: typed text reaches the pipeline as exactly one typed final
// Transcript and nothing else (no Interruption: barge-in belongs to the
// turn-taking stage, played here by the fake interrupter). Typed over the
// bot's voice it interrupts it, and no audio of the old turn follows the
// interrupted event.
func TestTypedText(t *testing.T) {
	s := newServer(t, Config{})
	c := s.dial(t, nil)
	ready := c.start(16000, 0)
	rec := s.fa.session(t, ready.SessionID)

	// The transcript is pushed in turn 1 and answered in turn 2.
	c.text("  long  ") // trimmed
	ms := c.until("bot_started_speaking")
	i := indexOf(ms, "transcript")
	if i < 0 || ms[i].ev.Text != "long" || *ms[i].ev.Turn != 1 {
		t.Fatalf("want transcript \"long\" in turn 1, got %s", describe(ms))
	}
	t1 := uint32(2) // the turn answering "long"
	c.text("stop")
	ms = c.until("bot_stopped_speaking")
	last := ms[len(ms)-1].ev
	if last.Interrupted == nil || !*last.Interrupted || *last.Turn != t1+1 {
		t.Errorf("bot_stopped_speaking %+v, want interrupted in turn %d", last, t1+1)
	}
	// The interrupted event comes before it, with no audio in between: the
	// old turn's audio may precede both but never follows.
	i = indexOf(ms, "interrupted")
	if i < 0 || *ms[i].ev.Turn != t1+1 {
		t.Fatalf("want interrupted (turn %d) before bot_stopped_speaking: %s", t1+1, describe(ms))
	}
	old := 0
	for j, m := range ms {
		old += len(m.pcm)
		if j > i && m.ev == nil {
			t.Errorf("audio after interrupted: %s", describe(ms))
		}
	}
	if old >= replySamples(16000, "long") {
		t.Errorf("the whole %d samples of the interrupted answer were sent", old)
	}
	// The answer to "stop" (its bot_text may have come already).
	var reply []msg
	for _, m := range ms {
		if m.ev != nil && m.ev.Type == "bot_text" {
			reply = append(reply, m)
		}
	}
	reply = append(reply, c.until("bot_stopped_speaking")...)
	checkReply(t, reply, "stop", t1+1, 16000, replySamples(16000, "stop"))

	got := rec.frames()
	// Pushed in the turn current at the time; the interrupter then starts
	// the turn that answers.
	want := []string{fmt.Sprintf("transcript %d long", t1-1), fmt.Sprintf("transcript %d stop", t1)}
	if len(got) != len(want) {
		t.Fatalf("pipeline got %d frames, want %v", len(got), want)
	}
	for i, f := range got {
		var d string
		switch f := f.(type) {
		case *frame.Interruption:
			d = fmt.Sprintf("interruption %d", f.Turn)
		case *frame.Transcript:
			d = fmt.Sprintf("transcript %d %s", f.Turn, f.Text)
			if !f.Typed || !f.Final {
				t.Errorf("transcript %q: Typed %v Final %v, want both", f.Text, f.Typed, f.Final)
			}
		}
		if d != want[i] {
			t.Errorf("frame %d = %q, want %q", i, d, want[i])
		}
	}

	// Blank text is ignored: the session answers the next text in turn 4.
	c.text("   ")
	c.text("again")
	checkReply(t, c.until("bot_stopped_speaking"), "again", t1+2, 16000, replySamples(16000, "again"))
}

// TestEndDrains: end right after text still delivers the whole answer, then
// closes with 1000 "end", and the pipeline drained.
func TestEndDrains(t *testing.T) {
	s := newServer(t, Config{})
	c := s.dial(t, nil)
	ready := c.start(24000, 0)
	rec := s.fa.session(t, ready.SessionID)
	if rec.s.Kind != "websocket" {
		t.Errorf("session kind %q, want websocket", rec.s.Kind)
	}
	c.text("bye")
	c.sendJSON(map[string]string{"type": "end"})
	ms, ce := c.closed()
	if ce.Code != 1000 || ce.Text != "end" {
		t.Errorf("close %d %q, want 1000 \"end\"", ce.Code, ce.Text)
	}
	checkReply(t, ms, "bye", 0, 24000, replySamples(24000, "bye"))
	if err := waitDone(t, rec); err != nil {
		t.Errorf("factory returned %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.ended {
		t.Error("End never reached the pipeline")
	}
}

// TestBadInput sends each bad input of docs/protocol.md's error table on its
// own session and checks the error event and close code, while another
// session on the same server keeps working.
func TestBadInput(t *testing.T) {
	type m struct {
		typ  int
		data []byte
	}
	txt := func(s string) m { return m{gws.TextMessage, []byte(s)} }
	bin := func(n int) m { return m{gws.BinaryMessage, make([]byte, n)} }
	start := txt(`{"type":"start","sample_rate":16000}`)
	cases := []struct {
		name  string
		msgs  []m
		code  string // "" when no error event is promised
		close int
	}{
		{"utf8 first", []m{{gws.TextMessage, []byte{'{', 0xff, 0xfe, '}'}}}, "invalid_utf8", 1007},
		{"utf8", []m{start, {gws.TextMessage, []byte("\xc3\x28")}}, "invalid_utf8", 1007},
		{"json word", []m{start, txt("hello")}, "invalid_json", 1007},
		{"json array first", []m{txt(`[{"type":"start"}]`)}, "invalid_json", 1007},
		{"json truncated", []m{start, txt(`{"type":"text"`)}, "invalid_json", 1007},
		{"json empty", []m{start, txt("")}, "invalid_json", 1007},
		{"json wrong field type", []m{start, txt(`{"type":"text","text":5}`)}, "invalid_json", 1007},
		{"unknown type", []m{start, txt(`{"type":"dance"}`)}, "unknown_type", 1008},
		{"no type first", []m{txt(`{"sample_rate":16000}`)}, "unknown_type", 1008},
		{"empty type", []m{start, txt(`{"type":""}`)}, "unknown_type", 1008},
		{"start twice", []m{start, start}, "bad_start", 1008},
		{"start after audio", []m{bin(320), start}, "bad_start", 1008},
		{"start after text", []m{txt(`{"type":"text","text":"hi"}`), start}, "bad_start", 1008},
		{"rate unknown", []m{txt(`{"type":"start","sample_rate":12345}`)}, "bad_start", 1008},
		{"rate not in protocol", []m{txt(`{"type":"start","sample_rate":32000}`)}, "bad_start", 1008},
		{"rate negative", []m{txt(`{"type":"start","sample_rate":-16000}`)}, "bad_start", 1008},
		{"output rate", []m{txt(`{"type":"start","sample_rate":16000,"output_sample_rate":11025}`)}, "bad_start", 1008},
		{"odd audio first", []m{bin(1)}, "odd_audio", 1007},
		{"odd audio", []m{start, bin(641)}, "odd_audio", 1007},
		{"audio over a second", []m{start, bin(32002)}, "too_large", 1009},
		{"audio over a second at 8k", []m{txt(`{"type":"start","sample_rate":8000}`), bin(16002)}, "too_large", 1009},
		{"audio over a second first", []m{bin(32002)}, "too_large", 1009},
		{"text too long", []m{start, txt(`{"type":"text","text":"` + strings.Repeat("é", 2049) + `"}`)}, "too_large", 1009},
		{"message over 1 MiB", []m{start, bin(MaxMessage + 2)}, "", 1009},
		{"message over 1 MiB first", []m{txt(`{"type":"text","text":"` + strings.Repeat("a", MaxMessage) + `"}`)}, "", 1009},
		{"provider failure", []m{start, txt(`{"type":"text","text":"fail"}`)}, "internal", 1011},
	}

	s := newServer(t, Config{InputBurst: time.Hour}) // the other session sends a second of audio per case, faster than real time
	other := s.dial(t, nil)
	otherRec := s.fa.session(t, other.start(16000, 0).SessionID)
	turn := uint32(1)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			other := &client{t: t, ws: other.ws}
			c := s.dial(t, nil)
			for _, m := range tc.msgs {
				c.send(m.typ, m.data)
			}
			ms, ce := c.closed()
			if ce.Code != tc.close {
				t.Errorf("close %d %q, want %d", ce.Code, ce.Text, tc.close)
			}
			var errs []*wireEvent
			for _, m := range ms {
				if m.ev != nil && m.ev.Type == "error" {
					errs = append(errs, m.ev)
				}
			}
			if tc.code != "" {
				if len(errs) != 1 || errs[0].Code != tc.code || errs[0].Message == "" {
					t.Errorf("events %s, want one error %q with a message", describe(ms), tc.code)
				}
				if ce.Text != tc.code {
					t.Errorf("close reason %q, want %q", ce.Text, tc.code)
				}
				if len(ms) > 0 && ms[len(ms)-1].ev != errs[0] {
					t.Errorf("error event is not the last message: %s", describe(ms))
				}
			}
			for _, e := range errs {
				if tc.code == "" && e.Code != "too_large" {
					t.Errorf("error %q, want none or too_large", e.Code)
				}
			}
			if i := indexOf(ms, "ready"); i >= 0 {
				// The factory ran: it must have returned with the cause.
				err := waitDone(t, s.fa.session(t, ms[i].ev.SessionID))
				want := transport.ErrBadInput
				if tc.code == "internal" {
					want = errProviderFailed
				}
				if !errors.Is(err, want) {
					t.Errorf("factory returned %v, want %v", err, want)
				}
			}

			// The other session still works: it hears audio and answers text.
			before := len(otherRec.samples(t))
			other.audio(make([]int16, 16000)) // exactly one second: allowed
			waitFor(t, "the other session's audio", func() bool { return len(otherRec.samples(t)) == before+16000 })
			turn++
			text := "still there after " + tc.name
			other.text(text)
			checkReply(t, other.until("bot_stopped_speaking"), text, turn, 16000, replySamples(16000, text))
		})
	}
	waitFor(t, "the bad sessions to end", func() bool { return s.h.Sessions() == 1 })
}

// TestOrigins: browsers from other origins are refused unless configured.
func TestOrigins(t *testing.T) {
	s := newServer(t, Config{Origins: []string{"https://app.example.com", "HTTP://Other.Example:8080"}})
	star := newServer(t, Config{Origins: []string{"*"}})
	host := strings.TrimPrefix(s.srv.URL, "http://")
	cases := []struct {
		srv    *server
		origin string
		ok     bool
	}{
		{s, "", true}, // not a browser
		{s, "http://" + host, true},
		{s, "https://" + host, true}, // the host is what is compared
		{s, "https://app.example.com", true},
		{s, "http://other.example:8080", true},
		{s, "https://evil.example.com", false},
		{s, "https://app.example.com.evil.example", false},
		{s, "http://app.example.com", false}, // the scheme matters
		{s, "null", false},
		{s, "http://" + strings.Replace(host, "127.0.0.1", "localhost", 1), false},
		{star, "https://evil.example.com", true},
	}
	for _, tc := range cases {
		t.Run(tc.origin, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ws, resp, err := gws.DefaultDialer.Dial(tc.srv.url, h)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer ws.Close()
				c := &client{t: t, ws: ws}
				c.start(16000, 0)
				return
			}
			if err == nil {
				ws.Close()
				t.Fatal("accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("refusal %v, want HTTP 403", resp)
			}
		})
	}
}

// TestMaxSessions: sessions beyond the limit get HTTP 503 until one ends.
func TestMaxSessions(t *testing.T) {
	s := newServer(t, Config{MaxSessions: 2})
	a, b := s.dial(t, nil), s.dial(t, nil)
	a.start(16000, 0)
	b.start(16000, 0)
	for range 3 {
		_, resp, err := gws.DefaultDialer.Dial(s.url, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("third session: err %v resp %v, want HTTP 503", err, resp)
		}
	}
	a.sendJSON(map[string]string{"type": "end"})
	if _, ce := a.closed(); ce.Code != 1000 {
		t.Fatalf("close %d", ce.Code)
	}
	waitFor(t, "the session to end", func() bool { return s.h.Sessions() == 1 })
	c := s.dial(t, nil)
	c.start(16000, 0)
}

// TestPerAddrLimits: one client address gets HTTP 429 with the reason
// beyond its concurrent sessions and its rate of new ones.
func TestPerAddrLimits(t *testing.T) {
	adm := transport.NewAdmissionConfig(transport.AdmissionConfig{MaxPerAddr: 2, AddrRate: 0.001, AddrBurst: 3, LimitLoopback: true})
	s := newServer(t, Config{Admission: adm})
	refused := func(want string) {
		t.Helper()
		_, resp, err := gws.DefaultDialer.Dial(s.url, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("err %v resp %v, want HTTP 429", err, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), want) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 body %q (Retry-After %q), want %q", body, resp.Header.Get("Retry-After"), want)
		}
	}
	a, b := s.dial(t, nil), s.dial(t, nil)
	a.start(16000, 0)
	b.start(16000, 0)
	refused("max_sessions_per_addr 2")
	a.sendJSON(map[string]string{"type": "end"})
	if _, ce := a.closed(); ce.Code != 1000 {
		t.Fatalf("close %d", ce.Code)
	}
	waitFor(t, "the session to end", func() bool { return s.h.Sessions() == 1 })
	c := s.dial(t, nil) // the third of the burst
	c.start(16000, 0)
	c.sendJSON(map[string]string{"type": "end"})
	c.closed()
	waitFor(t, "the session to end", func() bool { return s.h.Sessions() == 1 })
	refused("sessions started too fast")
}

// TestMaxSessionsConcurrent: a burst of simultaneous connections cannot
// overshoot the limit.
func TestMaxSessionsConcurrent(t *testing.T) {
	const limit, tries = 3, 12
	s := newServer(t, Config{MaxSessions: limit})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*gws.Conn
	refused := 0
	for range tries {
		wg.Go(func() {
			ws, resp, err := gws.DefaultDialer.Dial(s.url, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				conns = append(conns, ws)
			case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
				refused++
			default:
				t.Errorf("dial: %v", err)
			}
		})
	}
	wg.Wait()
	for _, ws := range conns {
		ws.Close()
	}
	if len(conns) != limit || refused != tries-limit {
		t.Errorf("%d accepted, %d refused; want %d, %d", len(conns), refused, limit, tries-limit)
	}
}

// TestShutdown: live sessions (running or still in the handshake) get
// shutting_down and close 1001, Shutdown returns, new sessions are refused.
func TestShutdown(t *testing.T) {
	s := newServer(t, Config{})
	a, b := s.dial(t, nil), s.dial(t, nil)
	recA := s.fa.session(t, a.start(16000, 0).SessionID)
	b.text("long")
	b.until("bot_started_speaking")
	idle := s.dial(t, nil) // sends nothing
	waitFor(t, "three sessions", func() bool { return s.h.Sessions() == 3 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		done <- s.h.Shutdown(ctx)
	}()
	for name, c := range map[string]*client{"a": a, "b": b, "idle": idle} {
		ms, ce := c.closed()
		if ce.Code != 1001 || ce.Text != "shutting_down" {
			t.Errorf("%s: close %d %q, want 1001 shutting_down", name, ce.Code, ce.Text)
		}
		if len(ms) == 0 || ms[len(ms)-1].ev == nil || ms[len(ms)-1].ev.Code != "shutting_down" {
			t.Errorf("%s: last messages %s, want an error shutting_down", name, describe(ms))
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := waitDone(t, recA); !errors.Is(err, transport.ErrShuttingDown) {
		t.Errorf("factory returned %v, want %v", err, transport.ErrShuttingDown)
	}
	if n := s.h.Sessions(); n != 0 {
		t.Errorf("%d sessions after Shutdown", n)
	}
	_, resp, err := gws.DefaultDialer.Dial(s.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Shutdown: err %v resp %v, want HTTP 503", err, resp)
	}
}

// TestShutdownSilentClient: a client that never answers the close does not
// hold Shutdown up.
func TestShutdownSilentClient(t *testing.T) {
	s := newServer(t, Config{})
	c := s.dial(t, nil)
	rec := s.fa.session(t, c.start(16000, 0).SessionID)
	// The client stops reading: it will never answer the close.
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	if err := s.h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := waitDone(t, rec); !errors.Is(err, transport.ErrShuttingDown) {
		t.Errorf("factory returned %v, want %v", err, transport.ErrShuttingDown)
	}
}

// TestAbruptDisconnect: a client that drops the connection ends its pipeline,
// and every goroutine of the session ends.
func TestAbruptDisconnect(t *testing.T) {
	s := newServer(t, Config{})
	// Warm up the server's own goroutines with one full session.
	warm := s.dial(t, nil)
	warm.start(16000, 0)
	warm.sendJSON(map[string]string{"type": "end"})
	warm.closed()
	warm.ws.Close()
	waitFor(t, "the warm-up session to end", func() bool { return s.h.Sessions() == 0 })
	base := runtime.NumGoroutine()

	for _, mid := range []string{"idle", "speaking", "handshake"} {
		c := s.dial(t, nil)
		var rec *record
		switch mid {
		case "idle":
			rec = s.fa.session(t, c.start(48000, 0).SessionID)
			c.audio(sine(48000, 4800))
		case "speaking":
			rec = s.fa.session(t, c.start(16000, 0).SessionID)
			c.text("long")
			c.until("bot_started_speaking")
		case "handshake":
			waitFor(t, "the connection", func() bool { return s.h.Sessions() == 1 })
		}
		c.ws.NetConn().Close() // no close frame
		if rec != nil {
			if err := waitDone(t, rec); !errors.Is(err, errClientGone) {
				t.Errorf("%s: factory returned %v, want %v", mid, err, errClientGone)
			}
		}
		waitFor(t, "the session to end", func() bool { return s.h.Sessions() == 0 })
	}

	deadline := time.Now().Add(readTimeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, bytes.TrimSpace(buf))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStartTimeout: a client that sends nothing is let go.
func TestStartTimeout(t *testing.T) {
	s := newServer(t, Config{StartTimeout: 50 * time.Millisecond})
	c := s.dial(t, nil)
	ms, ce := c.closed()
	if len(ms) != 0 || ce.Code != gws.CloseGoingAway {
		t.Errorf("%s then close %d %q, want close %d", describe(ms), ce.Code, ce.Text, gws.CloseGoingAway)
	}
	waitFor(t, "the session to end", func() bool { return s.h.Sessions() == 0 })
}

// TestInputIdle: a client that sends start and then nothing is ended
// with code idle instead of holding its session.
func TestInputIdle(t *testing.T) {
	s := newServer(t, Config{InputIdleTimeout: 150 * time.Millisecond})
	c := s.dial(t, nil)
	c.sendJSON(map[string]any{"type": "start", "sample_rate": 16000})
	c.until("ready")
	start := time.Now()
	ms, ce := c.closed()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("idle session ended after %v", el)
	}
	if n := len(ms); n == 0 || ms[n-1].ev == nil || ms[n-1].ev.Code != "idle" || ce.Code != gws.ClosePolicyViolation {
		t.Errorf("%s then close %d %q, want an idle error and close %d", describe(ms), ce.Code, ce.Text, gws.ClosePolicyViolation)
	}
	waitFor(t, "the session to end", func() bool { return s.h.Sessions() == 0 })
}

// TestInputTooFast: audio sent far faster than real time is held to real
// time, and the sender is cut off with too_fast once it has been held for
// InputMaxAhead; the pipeline never got much more audio than real time
// allows.
func TestInputTooFast(t *testing.T) {
	s := newServer(t, Config{InputBurst: 200 * time.Millisecond, InputMaxAhead: 300 * time.Millisecond})
	c := s.dial(t, nil)
	c.sendJSON(map[string]any{"type": "start", "sample_rate": 16000})
	ready := c.until("ready")
	id := ready[len(ready)-1].ev.SessionID
	start := time.Now()
	// 60 s of audio in 100 ms messages, as fast as the socket takes them.
	go func() {
		chunk := make([]int16, 1600)
		for range 600 {
			b := make([]byte, 2*len(chunk))
			if c.ws.WriteMessage(gws.BinaryMessage, b) != nil {
				return
			}
		}
	}()
	ms, ce := c.closed()
	elapsed := time.Since(start)
	if n := len(ms); n == 0 || ms[n-1].ev == nil || ms[n-1].ev.Code != "too_fast" || ce.Code != gws.ClosePolicyViolation {
		t.Fatalf("%s then close %d %q, want too_fast and close %d", describe(ms), ce.Code, ce.Text, gws.ClosePolicyViolation)
	}
	r := s.fa.session(t, id)
	<-r.done
	got := frame.Mono16k.Duration(len(r.samples(t)))
	if limit := elapsed + 200*time.Millisecond + 100*time.Millisecond; got > limit {
		t.Errorf("pipeline got %v of audio in %v: more than real time allows (%v)", got, elapsed, limit)
	}
	if elapsed > 5*time.Second {
		t.Errorf("cut off after %v", elapsed)
	}
}

// TestSubprotocol: a browser that carries its credential in a subprotocol
// offers "voiced" beside it and must get "voiced" back, or it fails the
// connection.
func TestSubprotocol(t *testing.T) {
	s := newServer(t, Config{})
	d := gws.Dialer{Subprotocols: []string{"voiced", "bearer.abc.def.ghi"}}
	ws, resp, err := d.Dial(s.url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "voiced" || ws.Subprotocol() != "voiced" {
		t.Fatalf("selected subprotocol %q, want voiced", got)
	}
}
