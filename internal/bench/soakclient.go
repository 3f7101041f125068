package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
)

// The soak's clients run in a process of their own (`voiced bench
// soak-clients`, started by RunSoak), so that their goroutines, garbage
// and scheduling do not land in the server's process they measure. They
// ask the server's side over a small loopback HTTP API (soakControl) for
// what only it knows: a session's input lateness and how it ended.

// soakClientConfig is what RunSoak hands its client process on stdin.
type soakClientConfig struct {
	URL     string // the server's /ws
	Control string // the soak control API's base URL
	// Warm makes Sessions sessions of one turn each, once; otherwise the
	// load: Sessions slots churning for Duration and the misbehaving
	// clients beside them.
	Warm        bool
	Sessions    int
	Duration    time.Duration
	Turns       int
	TurnTimeout time.Duration
	Limit       time.Duration
	Speech      []byte // PCM16LE 16 kHz mono
	Debug       bool   // log at debug level
}

// soakTally is what the clients saw, which the client process writes to
// stdout as JSON when it ends.
type soakTally struct {
	GoodSessions, GoodFailed  int
	FirstFailure              string
	TurnsAsked, TurnsAnswered int
	P99s                      []time.Duration // per well-behaved session with lateness measured
	LateFrames, LateSessions  int
	Misbehaving               map[string]*MisbehaviorResult
}

// soakClients runs the clients of one soak process.
type soakClients struct {
	cfg    soakClientConfig
	ctl    *controlClient
	speech [][]byte // the utterance as 20 ms PCM16LE messages
	quiet  []byte   // 20 ms of silence

	mu sync.Mutex
	t  soakTally
}

func newSoakClients(cfg soakClientConfig) (*soakClients, error) {
	if len(cfg.Speech) < 640 {
		return nil, errors.New("bench: soak clients need speech")
	}
	c := &soakClients{cfg: cfg, ctl: &controlClient{base: cfg.Control}, quiet: make([]byte, 640),
		t: soakTally{Misbehaving: map[string]*MisbehaviorResult{}}}
	for i := 0; i+640 <= len(cfg.Speech); i += 640 {
		c.speech = append(c.speech, cfg.Speech[i:i+640])
	}
	return c, nil
}

// run runs the clients cfg asks for until they are done or ctx ends.
func (s *soakClients) run(ctx context.Context) soakTally {
	var wg sync.WaitGroup
	if s.cfg.Warm {
		for range s.cfg.Sessions {
			wg.Go(func() { s.good(ctx, 1, time.Time{}) })
		}
		wg.Wait()
		return s.tally()
	}
	deadline := time.Now().Add(s.cfg.Duration)
	for i := range s.cfg.Sessions {
		// Slots start spread over the first 5 s (or a quarter of a short
		// run), then each replaces its session as soon as it hangs up.
		delay := time.Duration(i) * min(5*time.Second, s.cfg.Duration/4) / time.Duration(s.cfg.Sessions)
		wg.Go(func() {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				s.good(ctx, 1+(i+n)%s.cfg.Turns, deadline)
			}
		})
	}
	for _, k := range misbehaviors {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				s.misbehave(ctx, k, n)
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		})
	}
	wg.Wait()
	return s.tally()
}

func (s *soakClients) tally() soakTally {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.t
	t.P99s = append([]time.Duration(nil), s.t.P99s...)
	return t
}

// SoakClientsCommand is the soak's client process (`voiced bench
// soak-clients`, which RunSoak starts): it reads a soakClientConfig from
// stdin, runs the clients, writes their soakTally to stdout, and stops
// early when stdin ends (RunSoak is gone or cancelled).
func SoakClientsCommand(stdin io.Reader, stdout, stderr io.Writer) error {
	dec := json.NewDecoder(stdin)
	var cfg soakClientConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("bench soak-clients: read the configuration from stdin: %w", err)
	}
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("from", "clients")
	s, err := newSoakClients(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, io.MultiReader(dec.Buffered(), stdin))
		cancel()
	}()
	log.Debug("soak clients: start", "warm", cfg.Warm, "sessions", cfg.Sessions, "duration", cfg.Duration)
	t := s.run(ctx)
	log.Debug("soak clients: done", "sessions", t.GoodSessions, "answered", t.TurnsAnswered)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench soak-clients: stopped: stdin ended")
	}
	return json.NewEncoder(stdout).Encode(t)
}

// serverEnd is how the server logged a session's end.
type serverEnd struct {
	Logged   bool   `json:"logged"`
	Failed   bool   `json:"failed"`   // ended with an error
	Code     string `json:"code"`     // transport.ErrorCode of the error
	Text     string `json:"text"`     // the error
	Expected bool   `json:"expected"` // transport.Expected: a client's doing, not the server's fault
}

// controlClient asks the soak's server side.
type controlClient struct {
	base string
	hc   http.Client
}

func (c *controlClient) call(method, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("soak control %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// watch starts collecting session id's input lateness.
func (c *controlClient) watch(id string) error {
	return c.call(http.MethodPost, "/watch", url.Values{"id": {id}}, nil)
}

// finish stops collecting session id's lateness and returns its summary.
func (c *controlClient) finish(id string) (Dist, error) {
	var d Dist
	err := c.call(http.MethodPost, "/finish", url.Values{"id": {id}}, &d)
	return d, err
}

// end returns session id's end, waiting up to wait for it to be logged;
// take forgets it afterwards.
func (c *controlClient) end(id string, wait time.Duration, take bool) serverEnd {
	q := url.Values{"id": {id}, "wait": {wait.String()}}
	if take {
		q.Set("take", "1")
	}
	var e serverEnd
	if err := c.call(http.MethodGet, "/end", q, &e); err != nil {
		return serverEnd{Text: err.Error()}
	}
	return e
}

// wsClient is one client connection with a reader that records events.
type wsClient struct {
	ws       *gws.Conn
	ready    chan string   // the session ID, once
	answered chan struct{} // one per answer heard to its end
	done     chan struct{} // the reader ended

	// Set by the reader before done is closed.
	errCode     string // the last error event's code
	closeCode   int    // the server's close code (1006 without a close frame)
	closeReason string
	answers     int

	// audio, if set before read starts, is given each binary message (the
	// bot's voice) as it arrives, on the reader's goroutine.
	audio func(at time.Time, pcm []byte)
}

// soakEvent is what a client reads of a server event.
type soakEvent struct {
	Type        string `json:"type"`
	SessionID   string `json:"session_id"`
	Code        string `json:"code"`
	Interrupted bool   `json:"interrupted"`
}

func dialSoak(ctx context.Context, url string, readBuf int) (*wsClient, error) {
	d := gws.Dialer{HandshakeTimeout: 10 * time.Second}
	if readBuf > 0 {
		// Set before connecting, so that the window offered is small
		// from the start.
		nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readBuf)
			}); err != nil {
				return err
			}
			return serr
		}}
		d.NetDialContext = nd.DialContext
	}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	return &wsClient{ws: ws, ready: make(chan string, 1), answered: make(chan struct{}, 16), done: make(chan struct{})}, nil
}

// read reads until the connection ends; stopAfterReady makes it stop
// reading (without closing) once ready arrived: a client that never reads.
func (c *wsClient) read(stopAfterReady bool) {
	defer close(c.done)
	c.closeCode = gws.CloseAbnormalClosure
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *gws.CloseError
			if errors.As(err, &ce) {
				c.closeCode, c.closeReason = ce.Code, ce.Text
			}
			return
		}
		if typ == gws.BinaryMessage && c.audio != nil {
			c.audio(time.Now(), data)
		}
		if typ != gws.TextMessage {
			continue
		}
		var ev soakEvent
		if json.Unmarshal(data, &ev) != nil {
			continue
		}
		switch ev.Type {
		case "ready":
			c.ready <- ev.SessionID
			if stopAfterReady {
				return
			}
		case "bot_stopped_speaking":
			if !ev.Interrupted {
				c.answers++
				select {
				case c.answered <- struct{}{}:
				default:
				}
			}
		case "error":
			c.errCode = ev.Code
		}
	}
}

func (c *wsClient) start() error {
	return c.ws.WriteMessage(gws.TextMessage, []byte(`{"type":"start","sample_rate":16000}`))
}

// good runs one well-behaved session of turns turns:
// it waits for ready, then per turn speaks the utterance in real time and
// streams silence until the answer has been heard to its end, then says
// end and expects the server's 1000 "end". After deadline (if set) it
// starts no new turn.
func (s *soakClients) good(ctx context.Context, turns int, deadline time.Time) {
	asked, answered, fail := 0, 0, ""
	var id string
	watched := false
	defer func() {
		var late Dist
		if watched {
			var err error
			if late, err = s.ctl.finish(id); err != nil && fail == "" {
				fail = "lateness: " + err.Error()
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.t.GoodSessions++
		s.t.TurnsAsked += asked
		s.t.TurnsAnswered += answered
		if fail != "" {
			s.t.GoodFailed++
			if s.t.FirstFailure == "" {
				s.t.FirstFailure = fail
			}
		}
		if late.N > 0 {
			s.t.P99s = append(s.t.P99s, late.P99)
			s.t.LateFrames += late.N
			if late.P99 > s.cfg.Limit {
				s.t.LateSessions++
			}
		}
	}()
	c, err := dialSoak(ctx, s.cfg.URL, 0)
	if err != nil {
		fail = err.Error()
		return
	}
	defer c.ws.Close()
	go c.read(false)
	if err := c.start(); err != nil {
		fail = "start: " + err.Error()
		return
	}
	select {
	case id = <-c.ready:
	case <-c.done:
		fail = fmt.Sprintf("closed before ready (%d %s)", c.closeCode, c.closeReason)
		return
	case <-time.After(10 * time.Second):
		fail = "no ready within 10 s"
		return
	}
	if err := s.ctl.watch(id); err != nil {
		fail = "lateness: " + err.Error()
		return
	}
	watched = true
	tick := time.NewTicker(frameDur)
	defer tick.Stop()
	send := func(b []byte) bool {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
		if err := c.ws.WriteMessage(gws.BinaryMessage, b); err != nil {
			fail = fmt.Sprintf("send: %v (closed %d %s, error %q)", err, c.closeCode, c.closeReason, c.errCode)
			return false
		}
		return true
	}
	for t := range turns {
		if t > 0 && !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		for _, b := range s.speech {
			if !send(b) {
				return
			}
		}
		asked++
		wait := time.Now().Add(s.cfg.TurnTimeout)
	listen:
		for {
			select {
			case <-c.answered:
				answered++
				break listen
			default:
			}
			if time.Now().After(wait) {
				fail = fmt.Sprintf("turn %d not answered within %v", t+1, s.cfg.TurnTimeout)
				return
			}
			if !send(s.quiet) {
				return
			}
		}
		for range 15 { // a breath before the next turn
			if !send(s.quiet) {
				return
			}
		}
	}
	if err := c.ws.WriteMessage(gws.TextMessage, []byte(`{"type":"end"}`)); err != nil {
		fail = "end: " + err.Error()
		return
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		fail = "no close within 10 s of end"
		return
	}
	if c.closeCode != gws.CloseNormalClosure || c.closeReason != "end" {
		fail = fmt.Sprintf("closed with %d %q (error %q), want 1000 \"end\"", c.closeCode, c.closeReason, c.errCode)
		return
	}
	if e := s.ctl.end(id, 2*time.Second, true); e.Logged && e.Failed && !e.Expected {
		fail = "server: session failed: " + e.Text
	}
}

// A misbehavior is a kind of bad client and what the server must do to it.
type misbehavior struct {
	name, does string
	// want is the documented outcome; ok judges one.
	want string
	ok   func(o misOutcome) bool
}

type misOutcome struct {
	errCode   string // the error event's code the client read
	closeCode int
	server    serverEnd // the session's end as the server logged it
	took      time.Duration
	note      string
}

func serverCode(code string) func(misOutcome) bool {
	return func(o misOutcome) bool { return o.server.Logged && o.server.Code == code }
}

// malformed are the bad messages a malformed client sends, in turn, and the
// codes docs/protocol.md gives them.
var malformed = []struct {
	text   bool
	data   []byte
	code   string
	closed int
}{
	{true, []byte(`{"type":`), "invalid_json", gws.CloseInvalidFramePayloadData},
	{true, []byte(`{"type":"shout"}`), "unknown_type", gws.ClosePolicyViolation},
	{false, []byte{1, 2, 3}, "odd_audio", gws.CloseInvalidFramePayloadData},
	{true, []byte{'"', 0xff, 0xfe, '"'}, "invalid_utf8", gws.CloseInvalidFramePayloadData},
	{true, []byte(`{"type":"start","sample_rate":16000}`), "bad_start", gws.ClosePolicyViolation},
}

var misbehaviors = []misbehavior{
	{name: "fast", does: "streams speech as fast as the socket takes it",
		want: "error `too_fast`, close 1008", ok: serverCode("too_fast")},
	{name: "silent", does: "sends start, then nothing (reads everything)",
		want: "error `idle`, close 1008, after input_idle_timeout", ok: serverCode("idle")},
	{name: "mute", does: "connects and sends nothing at all",
		want: "close 1001 without an error event, after start_timeout",
		ok:   func(o misOutcome) bool { return o.closeCode == gws.CloseGoingAway && o.errCode == "" }},
	{name: "slow-reader", does: "reads ready, then speaks in real time and never reads again (4 KiB receive buffer)",
		want: "session ended with `slow_client`", ok: serverCode("slow_client")},
	{name: "malformed", does: "sends start, then one bad message (bad JSON, unknown type, odd-length audio, invalid UTF-8, a second start, in turn)",
		want: "its documented error code and close code",
		ok:   nil}, // judged per message, in misbehave
}

// misbehave runs one misbehaving client of kind k and records what
// happened to it.
func (s *soakClients) misbehave(ctx context.Context, k misbehavior, n int) {
	begin := time.Now()
	var o misOutcome
	ok := false
	defer func() {
		o.took = time.Since(begin)
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.t.Misbehaving[k.name]
		if r == nil {
			r = &MisbehaviorResult{Kind: k.name, Does: k.does, Want: k.want, Outcomes: map[string]int{}}
			s.t.Misbehaving[k.name] = r
		}
		r.Clients++
		if ok {
			r.AsExpected++
		} else if r.FirstUnexpected == "" {
			r.FirstUnexpected = o.describe()
		}
		r.Outcomes[o.describe()]++
		r.MaxTook = max(r.MaxTook, o.took)
	}()
	readBuf := 0
	if k.name == "slow-reader" {
		readBuf = 4096
	}
	c, err := dialSoak(ctx, s.cfg.URL, readBuf)
	if err != nil {
		o.note = err.Error()
		return
	}
	defer c.ws.Close()
	go c.read(k.name == "slow-reader")
	if k.name != "mute" {
		if err := c.start(); err != nil {
			o.note = "start: " + err.Error()
			return
		}
	}
	capWait := 60 * time.Second
	switch k.name {
	case "fast":
		for i := 0; ctx.Err() == nil && time.Since(begin) < capWait; i++ {
			c.ws.SetWriteDeadline(time.Now().Add(capWait))
			if c.ws.WriteMessage(gws.BinaryMessage, s.speech[i%len(s.speech)]) != nil {
				break
			}
		}
	case "slow-reader":
		var id string
		select {
		case id = <-c.ready:
		case <-time.After(10 * time.Second):
			o.note = "no ready"
			return
		}
		tick := time.NewTicker(frameDur)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil && time.Since(begin) < capWait; i++ {
			<-tick.C
			b := s.quiet
			if j := i % (len(s.speech) + 250); j < len(s.speech) {
				b = s.speech[j]
			}
			c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if c.ws.WriteMessage(gws.BinaryMessage, b) != nil {
				break
			}
			if i%10 == 9 && s.ctl.end(id, 0, false).Logged {
				break
			}
		}
		o.server = s.ctl.end(id, 10*time.Second, true)
		o.closeCode = -1 // it never read the close
		ok = k.ok(o)
		return
	case "malformed":
		m := malformed[n%len(malformed)]
		typ := gws.BinaryMessage
		if m.text {
			typ = gws.TextMessage
		}
		if err := c.ws.WriteMessage(typ, m.data); err != nil {
			o.note = "send: " + err.Error()
		}
	}
	select {
	case <-c.done:
	case <-time.After(capWait + 10*time.Second):
		o.note = "not closed within " + (capWait + 10*time.Second).String()
	}
	o.errCode, o.closeCode = c.errCode, c.closeCode
	select {
	case id := <-c.ready:
		o.server = s.ctl.end(id, 2*time.Second, true)
	default:
	}
	if k.name == "malformed" {
		m := malformed[n%len(malformed)]
		ok = o.errCode == m.code && o.closeCode == m.closed
		return
	}
	ok = k.ok(o)
}

func (o misOutcome) describe() string {
	var d string
	switch {
	case o.closeCode == -1:
		d = "read nothing"
	case o.errCode != "":
		d = fmt.Sprintf("error %s, close %d", o.errCode, o.closeCode)
	default:
		d = fmt.Sprintf("close %d", o.closeCode)
	}
	if e := o.server; e.Logged {
		switch {
		case e.Code != "":
			d += "; server: " + e.Code
		case e.Failed:
			d += "; server: " + e.Text
		default:
			d += "; server: normal end"
		}
	} else if e.Text != "" {
		d += "; " + e.Text // the control API failed
	}
	if o.note != "" {
		d += "; " + o.note
	}
	return d
}

// speechBytes encodes the utterance for soakClientConfig.
func speechBytes(s []int16) []byte { return audio.EncodePCM16(nil, s) }
