package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	"github.com/voiced-dev/voiced/internal/testenv"
	"github.com/voiced-dev/voiced/pipeline"
)

// twilioCaller plays Twilio's part of a Media Streams call: it streams the
// caller's audio as μ-law at 8 kHz, 20 ms per message, without a break
// (silence when the caller is quiet), "plays" what voiced sends in real
// time, answers each mark once the audio before it has played, and drops
// its playback on clear (answering the marks it held), as Twilio does.
type twilioCaller struct {
	t  *testing.T
	ws *gws.Conn

	mu      sync.Mutex
	queue   []int16   // caller audio waiting to be sent (8 kHz)
	playEnd time.Time // when what was received has played
	marks   []pendingMark
	heard   []heardMsg // media received
	clears  []time.Time
	closed  chan struct{}
	sendErr error

	wmu sync.Mutex // one writer at a time
}

type pendingMark struct {
	name string
	at   time.Time
}

type heardMsg struct {
	at   time.Time
	peak int
	n    int
}

func dialTwilio(t *testing.T, url string) *twilioCaller {
	t.Helper()
	ws, _, err := gws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &twilioCaller{t: t, ws: ws, closed: make(chan struct{})}
	c.send(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
	c.send(map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZe2e", "start": map[string]any{
		"accountSid": "ACe2e", "streamSid": "MZe2e", "callSid": "CAe2e", "tracks": []string{"inbound"},
		"mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.read() })
	wg.Go(func() { c.pace(ctx) })
	t.Cleanup(func() { cancel(); ws.Close(); wg.Wait() })
	return c
}

func (c *twilioCaller) send(v any) {
	b, _ := json.Marshal(v)
	c.wmu.Lock()
	err := c.ws.WriteMessage(gws.TextMessage, b)
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		c.sendErr = err
		c.mu.Unlock()
	}
}

// pace sends 20 ms of caller audio every 20 ms, and answers due marks.
func (c *twilioCaller) pace(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.closed:
			return
		case now := <-tick.C:
			c.mu.Lock()
			pcm := make([]int16, 160)
			n := copy(pcm, c.queue)
			c.queue = c.queue[n:]
			var due []string
			for len(c.marks) > 0 && !c.marks[0].at.After(now) {
				due = append(due, c.marks[0].name)
				c.marks = c.marks[1:]
			}
			c.mu.Unlock()
			seq++
			c.send(map[string]any{"event": "media", "streamSid": "MZe2e", "media": map[string]any{
				"track": "inbound", "chunk": seq, "payload": base64.StdEncoding.EncodeToString(audio.EncodeULaw(nil, pcm)),
			}})
			for _, m := range due {
				c.send(map[string]any{"event": "mark", "streamSid": "MZe2e", "mark": map[string]string{"name": m}})
			}
		}
	}
}

func (c *twilioCaller) read() {
	defer close(c.closed)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var m struct {
			Event     string `json:"event"`
			StreamSid string `json:"streamSid"`
			Media     struct {
				Payload string `json:"payload"`
			} `json:"media"`
			Mark struct {
				Name string `json:"name"`
			} `json:"mark"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.StreamSid != "MZe2e" {
			c.t.Errorf("voiced sent %s (%v): not a Twilio message of this stream", data, err)
			continue
		}
		c.mu.Lock()
		switch m.Event {
		case "media":
			b, err := base64.StdEncoding.DecodeString(m.Media.Payload)
			if err != nil {
				c.t.Errorf("media payload: %v", err)
			}
			peak := 0
			for _, s := range audio.DecodeULaw(nil, b) {
				peak = max(peak, abs(int(s)))
			}
			c.heard = append(c.heard, heardMsg{at: now, peak: peak, n: len(b)})
			c.playEnd = later(c.playEnd, now).Add(time.Duration(len(b)) * time.Second / 8000)
		case "mark":
			c.marks = append(c.marks, pendingMark{m.Mark.Name, later(c.playEnd, now)})
		case "clear":
			c.clears = append(c.clears, now)
			c.playEnd = now
			for i := range c.marks {
				c.marks[i].at = now
			}
		default:
			c.t.Errorf("voiced sent a %q message", m.Event)
		}
		c.mu.Unlock()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// say queues speech (16 kHz, from flite) as the caller's voice and returns
// when it has been sent.
func (c *twilioCaller) say(pcm16k []int16) time.Time {
	rs, err := audio.NewResampler(16000, 8000)
	if err != nil {
		c.t.Fatal(err)
	}
	pcm := rs.Process(nil, pcm16k)
	c.mu.Lock()
	c.queue = append(c.queue, pcm...)
	c.mu.Unlock()
	time.Sleep(time.Duration(len(pcm)) * time.Second / 8000)
	return time.Now()
}

func (c *twilioCaller) key(d string) {
	c.send(map[string]any{"event": "dtmf", "streamSid": "MZe2e", "dtmf": map[string]string{"track": "inbound_track", "digit": d}})
}

// audibleSince returns the arrival of the first audible media after t.
func (c *twilioCaller) audibleSince(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.heard {
		if !h.at.Before(t) && h.peak > 300 {
			return h.at, true
		}
	}
	return time.Time{}, false
}

func (c *twilioCaller) clearSince(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, at := range c.clears {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (c *twilioCaller) samplesBetween(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, h := range c.heard {
		if !h.at.Before(from) && h.at.Before(to) {
			n += h.n
		}
	}
	return n
}

func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// typedSeen records the typed transcripts the agent's pipeline carried.
type typedSeen struct {
	mu   sync.Mutex
	text []string
}

func (s *typedSeen) OnHop(h pipeline.Hop) {
	if tr, ok := h.Frame.(*frame.Transcript); ok && tr.Typed && h.First {
		s.mu.Lock()
		s.text = append(s.text, tr.Text)
		s.mu.Unlock()
	}
}

func (s *typedSeen) has(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.text {
		if t == text {
			return true
		}
	}
	return false
}

// TestE2ETwilioCall is a phone call over Twilio Media Streams against the
// real server (Silero VAD, pocketsphinx, the scripted demo agent, flite):
// the caller speaks and hears the answer, keys a digit that reaches the
// agent, cuts a long answer off (voiced sends clear and stops the old
// answer's audio), and goes quiet until the agent gives up (idle): voiced
// plays the goodbye, waits for its mark and hangs the call up through
// Twilio's REST API (a local fake that checks the request).
func TestE2ETwilioCall(t *testing.T) {
	var mu sync.Mutex
	var rest []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		rest = append(rest, r.Method+" "+r.URL.Path+" "+string(b)+" "+user+":"+pass)
		mu.Unlock()
		io.WriteString(w, `{"status":"completed"}`)
	}))
	defer api.Close()
	t.Setenv("TWILIO_ACCOUNT_SID", "ACe2e")
	t.Setenv("TWILIO_AUTH_TOKEN", "e2e-token")

	cfg := config.Default()
	cfg.Carriers.Twilio.BaseURL = api.URL
	cfg.Session.IdleEnabled = true
	cfg.Idle.Timeout = 4 * time.Second
	cfg.Idle.MaxPrompts = 1
	seen := &typedSeen{}
	srv := testenv.Start(t, cfg, func(s *server.Server) {
		s.Builder().Observers = append(s.Builder().Observers, seen)
	})
	c := dialTwilio(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/carrier/twilio")

	// 1. A spoken turn is answered out loud.
	time.Sleep(300 * time.Millisecond)
	stopped := c.say(speech(t, "hello there"))
	heard, ok := time.Time{}, false
	if !waitUntil(15*time.Second, func() bool { heard, ok = c.audibleSince(stopped); return ok }) {
		t.Fatal("no audible answer to the caller's speech")
	}
	t.Logf("voice-to-voice over Twilio Media Streams: %v at the caller", heard.Sub(stopped).Round(time.Millisecond))
	waitUntil(15*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.heard) > 0 && time.Since(c.heard[len(c.heard)-1].at) > 500*time.Millisecond
	})

	// 2. A key reaches the agent, whose (long) answer is cut off.
	since := time.Now()
	c.key("5")
	c.key("#")
	if !waitUntil(10*time.Second, func() bool { _, ok := c.audibleSince(since); return ok }) {
		t.Fatal("no answer to the key")
	}
	if !seen.has("DTMF: 5#") {
		t.Errorf("the agent did not get the key; typed transcripts %q", seen.text)
	}
	time.Sleep(1200 * time.Millisecond) // let it talk
	barge := time.Now()
	// Words of substance: over 8 kHz audio pocketsphinx seldom hears
	// "wait" or "stop", and the detector may split a short phrase at its
	// comma into two bursts, each too short to qualify on its own (the
	// turn-taking stage's own tests cover short words and stop words).
	c.say(speech(t, "wait, stop please, I have a question"))
	var cleared time.Time
	if !waitUntil(8*time.Second, func() bool { cleared, ok = c.clearSince(barge); return ok }) {
		t.Fatal("voiced sent no clear when the caller barged in")
	}
	t.Logf("clear %v after the caller started speaking", cleared.Sub(barge).Round(time.Millisecond))
	if n := c.samplesBetween(cleared, cleared.Add(200*time.Millisecond)); n > 0 {
		t.Errorf("%d samples of audio right after clear", n)
	}

	// 3. The caller goes quiet: the agent prompts, then says goodbye and
	// ends the call, which voiced hangs up.
	select {
	case <-c.closed:
	case <-time.After(40 * time.Second):
		t.Fatal("voiced did not end the idle call")
	}
	mu.Lock()
	defer mu.Unlock()
	want := "POST /2010-04-01/Accounts/ACe2e/Calls/CAe2e.json Status=completed ACe2e:e2e-token"
	if len(rest) != 1 || rest[0] != want {
		t.Errorf("REST calls %q, want [%q]", rest, want)
	}
	c.mu.Lock()
	pending := len(c.marks)
	c.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d marks not yet answered when voiced hung up", pending)
	}
}
