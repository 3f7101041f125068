package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	"github.com/voiced-dev/voiced/transport/carrier"
)

// carrierCaller plays a carrier's part of a media-stream call: it streams
// the caller's audio in the vendor's framing, 20 ms per message, without a
// break (silence when the caller is quiet), "plays" what voiced sends in
// real time, answers each mark once the audio before it has played, and
// drops its playback on the vendor's clear (answering the marks it held),
// as the carriers do. The vendor's framing is a carrierWire.
type carrierCaller struct {
	t    *testing.T
	ws   *gws.Conn
	wire carrierWire

	mu      sync.Mutex
	queue   []int16   // caller audio waiting to be sent (at wire.rate())
	playEnd time.Time // when what was received has played
	marks   []pendingMark
	heard   []heardMsg // media received
	clears  []time.Time
	closed  chan struct{}
	sendErr error

	wmu sync.Mutex // one writer at a time
}

// wsMsg is one WebSocket message.
type wsMsg struct {
	binary bool
	data   []byte
}

func jsonMsg(v any) wsMsg {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return wsMsg{data: b}
}

// fromVoiced is a message voiced sent, decoded by a carrierWire.
type fromVoiced struct {
	kind string  // "media", "mark", "clear"
	pcm  []int16 // media
	mark string  // mark
}

// carrierWire is one vendor's framing, seen from the carrier's side.
type carrierWire interface {
	rate() int // of the caller's audio and of voiced's answer
	start() []wsMsg
	media(pcm []int16, seq int) wsMsg
	dtmf(digit string) wsMsg
	markDone(name string) wsMsg
	// decode checks that a message from voiced is the vendor's, of this
	// stream, and decodes it.
	decode(binary bool, data []byte) (fromVoiced, error)
}

type pendingMark struct {
	name string
	at   time.Time
}

type heardMsg struct {
	at   time.Time
	peak int
	n    int // samples
}

func dialCarrier(t *testing.T, url string, wire carrierWire) *carrierCaller {
	t.Helper()
	ws, _, err := gws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &carrierCaller{t: t, ws: ws, wire: wire, closed: make(chan struct{})}
	for _, m := range wire.start() {
		c.send(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.read() })
	wg.Go(func() { c.pace(ctx) })
	t.Cleanup(func() { cancel(); ws.Close(); wg.Wait() })
	return c
}

func (c *carrierCaller) send(m wsMsg) {
	typ := gws.TextMessage
	if m.binary {
		typ = gws.BinaryMessage
	}
	c.wmu.Lock()
	err := c.ws.WriteMessage(typ, m.data)
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		c.sendErr = err
		c.mu.Unlock()
	}
}

// pace sends 20 ms of caller audio every 20 ms, and answers due marks.
func (c *carrierCaller) pace(ctx context.Context) {
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
			pcm := make([]int16, c.wire.rate()/50)
			n := copy(pcm, c.queue)
			c.queue = c.queue[n:]
			var due []string
			for len(c.marks) > 0 && !c.marks[0].at.After(now) {
				due = append(due, c.marks[0].name)
				c.marks = c.marks[1:]
			}
			c.mu.Unlock()
			seq++
			c.send(c.wire.media(pcm, seq))
			for _, m := range due {
				c.send(c.wire.markDone(m))
			}
		}
	}
}

func (c *carrierCaller) read() {
	defer close(c.closed)
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		m, err := c.wire.decode(typ == gws.BinaryMessage, data)
		if err != nil {
			c.t.Errorf("voiced sent %.200q: %v", data, err)
			continue
		}
		c.mu.Lock()
		switch m.kind {
		case "media":
			peak := 0
			for _, s := range m.pcm {
				peak = max(peak, abs(int(s)))
			}
			c.heard = append(c.heard, heardMsg{at: now, peak: peak, n: len(m.pcm)})
			c.playEnd = later(c.playEnd, now).Add(time.Duration(len(m.pcm)) * time.Second / time.Duration(c.wire.rate()))
		case "mark":
			c.marks = append(c.marks, pendingMark{m.mark, later(c.playEnd, now)})
		case "clear":
			c.clears = append(c.clears, now)
			c.playEnd = now
			for i := range c.marks {
				c.marks[i].at = now
			}
		default:
			c.t.Errorf("voiced sent a %q message", m.kind)
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
func (c *carrierCaller) say(pcm16k []int16) time.Time {
	pcm := pcm16k
	if r := c.wire.rate(); r != 16000 {
		rs, err := audio.NewResampler(16000, r)
		if err != nil {
			c.t.Fatal(err)
		}
		pcm = rs.Process(nil, pcm16k)
	}
	c.mu.Lock()
	c.queue = append(c.queue, pcm...)
	c.mu.Unlock()
	time.Sleep(time.Duration(len(pcm)) * time.Second / time.Duration(c.wire.rate()))
	return time.Now()
}

func (c *carrierCaller) key(d string) { c.send(c.wire.dtmf(d)) }

// audibleSince returns the arrival of the first audible media after t.
func (c *carrierCaller) audibleSince(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.heard {
		if !h.at.Before(t) && h.peak > 300 {
			return h.at, true
		}
	}
	return time.Time{}, false
}

func (c *carrierCaller) clearSince(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, at := range c.clears {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (c *carrierCaller) samplesBetween(from, to time.Time) int {
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

// carrierCase is one vendor's call: its framing, its call-control
// credentials, and the hang-up request voiced must make (none for Exotel,
// whose call flow goes on when the stream closes).
type carrierCase struct {
	vendor string
	wire   carrierWire
	env    map[string]string
	// hangup is the start of the one REST request expected, as
	// "METHOD path body Authorization"; empty when none is.
	hangup string
}

// TestE2ECarrierCalls is a phone call over each carrier's media stream
// (Twilio, Telnyx, Plivo, Vonage, Exotel) against the real server (Silero
// VAD, pocketsphinx, the scripted demo agent, flite): the caller speaks
// and hears the answer, keys a digit that reaches the agent, cuts a long
// answer off (voiced sends the vendor's clear and stops the old answer's
// audio), and goes quiet until the agent gives up (idle): voiced plays the
// goodbye, waits for its mark and hangs the call up through the vendor's
// REST API (a local fake that checks the request) or, for Exotel, by
// closing the stream.
func TestE2ECarrierCalls(t *testing.T) {
	vonageKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	vonagePEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(vonageKey)}))
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, tc := range []carrierCase{
		{"twilio", twilioWire{}, map[string]string{"TWILIO_ACCOUNT_SID": "ACe2e", "TWILIO_AUTH_TOKEN": "e2e-token"},
			"POST /2010-04-01/Accounts/ACe2e/Calls/CAe2e.json Status=completed " + basic("ACe2e", "e2e-token")},
		{"telnyx", telnyxWire{}, map[string]string{"TELNYX_API_KEY": "e2e-key"},
			"POST /v2/calls/call-e2e/actions/hangup {} Bearer e2e-key"},
		{"plivo", plivoWire{}, map[string]string{"PLIVO_AUTH_ID": "MAe2e", "PLIVO_AUTH_TOKEN": "e2e-token"},
			"DELETE /v1/Account/MAe2e/Call/call-e2e/  " + basic("MAe2e", "e2e-token")},
		{"vonage", vonageWire{}, map[string]string{"VONAGE_APPLICATION_ID": "app-e2e", "VONAGE_PRIVATE_KEY": vonagePEM},
			`PUT /v1/calls/uuid-e2e {"action":"hangup"} Bearer ey`},
		{"exotel", exotelWire{}, nil, ""},
	} {
		t.Run(tc.vendor, func(t *testing.T) { testCarrierCall(t, tc) })
	}
}

func testCarrierCall(t *testing.T, tc carrierCase) {
	var mu sync.Mutex
	var rest []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		rest = append(rest, r.Method+" "+r.URL.Path+" "+string(b)+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, `{"status":"completed"}`)
	}))
	defer api.Close()
	for k, v := range tc.env {
		t.Setenv(k, v)
	}

	cfg := config.Default()
	for _, a := range []*carrier.API{&cfg.Carriers.Twilio, &cfg.Carriers.Telnyx, &cfg.Carriers.Plivo, &cfg.Carriers.Vonage} {
		a.BaseURL = api.URL
	}
	cfg.Session.IdleEnabled = true
	cfg.Idle.Timeout = 3 * time.Second
	cfg.Idle.MaxPrompts = 1
	seen := &typedSeen{}
	srv := testenv.Start(t, cfg, func(s *server.Server) {
		s.Builder().Observers = append(s.Builder().Observers, seen)
	})
	c := dialCarrier(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/carrier/"+tc.vendor, tc.wire)
	// 1. A spoken turn is answered out loud.
	time.Sleep(300 * time.Millisecond)
	stopped := c.say(speech(t, "hello there"))
	heard, ok := time.Time{}, false
	if !waitUntil(15*time.Second, func() bool { heard, ok = c.audibleSince(stopped); return ok }) {
		t.Fatal("no audible answer to the caller's speech")
	}
	t.Logf("voice-to-voice over %s: %v at the caller", tc.vendor, heard.Sub(stopped).Round(time.Millisecond))
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
	// Words of substance beside the interrupt words, so that the barge-in
	// does not rest on the spotting pass alone (it hears "wait" or "stop"
	// over 8 kHz about 20 times in 22) and survives the detector splitting
	// the phrase at its comma (the turn-taking stage's own tests cover
	// short words and stop words).
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
	switch {
	case tc.hangup == "" && len(rest) != 0:
		t.Errorf("REST calls %q, want none", rest)
	case tc.hangup != "" && (len(rest) != 1 || !strings.HasPrefix(rest[0], tc.hangup)):
		t.Errorf("REST calls %q, want one starting %q", rest, tc.hangup)
	}
	c.mu.Lock()
	pending := len(c.marks)
	c.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d marks not yet answered when voiced hung up", pending)
	}
}
