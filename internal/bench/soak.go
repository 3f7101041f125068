package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/agents/llm/fake"
	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/internal/cmem"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	sttfake "github.com/voiced-dev/voiced/processors/stt/fake"
	ttsfake "github.com/voiced-dev/voiced/processors/tts/fake"
	"github.com/voiced-dev/voiced/transport"
)

// SoakConfig sets up a soak run: the real server on loopback, Sessions
// well-behaved WebSocket clients at all times (each speaks a few turns in
// real time, is answered, hangs up and is replaced), and one misbehaving
// client of each kind at any time, for Duration.
type SoakConfig struct {
	Sessions int           // concurrent well-behaved sessions (default 200)
	Duration time.Duration // of the churn (default 10 min)
	// Turns is the most turns a well-behaved session speaks (default 3):
	// session i speaks 1 + i%Turns, so sessions end at different times.
	Turns int
	// Speech is the user's utterance (16 kHz mono).
	Speech []int16
	// Limit is the per-session input lateness p99 allowed (default
	// 20 ms), Tolerance how far goroutines and RSS may end above their
	// baseline (default 0.05).
	Limit     time.Duration
	Tolerance float64
	// TurnTimeout is how long a client waits for an answer before it
	// counts the turn as lost (default 20 s).
	TurnTimeout time.Duration
	// Server limits the misbehaving clients run into (defaults 5 s, 10 s;
	// the server's own defaults are 30 s and 60 s, shortened so that the
	// clients that never speak are cut several times in a run).
	StartTimeout, InputIdleTimeout time.Duration
	// InputMaxAhead is server.input_max_ahead (default: the server's).
	InputMaxAhead time.Duration
	Logger        *slog.Logger
	// ServerLogger receives the server's records at Warn and above.
	ServerLogger *slog.Logger
}

// Soak providers: fast fakes, so that what is measured is voiced itself
// (the real Silero VAD runs on every session's audio).
var soakProfile = Profile{Name: "soak-fast", STTFinal: 30 * time.Millisecond, LLMFirst: 50 * time.Millisecond,
	TokensPerSecond: 200, TTSFirst: 30 * time.Millisecond, TTSRTF: 0.1}

// soakPerChar makes the bot's answer (Reply) about 1.8 s of audio.
const soakPerChar = 25 * time.Millisecond

// A soak run's state, shared by its clients.
type soak struct {
	cfg    SoakConfig
	url    string
	speech [][]byte // the utterance as 20 ms PCM16LE messages
	quiet  []byte   // 20 ms of silence
	ends   *endLog

	late sync.Map // session ID → *sessionLate, while its client runs

	mu     sync.Mutex
	res    *SoakResult
	p99s   []time.Duration // per well-behaved session
	misbyK map[string]*MisbehaviorResult
}

// sessionLate collects one session's input lateness samples.
type sessionLate struct {
	mu sync.Mutex
	v  []time.Duration
}

func (s *soak) observeLateness(id string, d time.Duration) {
	if v, ok := s.late.Load(id); ok {
		l := v.(*sessionLate)
		l.mu.Lock()
		l.v = append(l.v, d)
		l.mu.Unlock()
	}
}

// startSoak fills in cfg's defaults and starts the server: the default
// configuration, its limits set for one loopback address carrying every
// client, the fast fakes in its builder. stop stops it.
func startSoak(cfg SoakConfig) (s *soak, srv *server.Server, stop func(), err error) {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 200
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Minute
	}
	if cfg.Turns <= 0 {
		cfg.Turns = 3
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 20 * time.Millisecond
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 0.05
	}
	if cfg.TurnTimeout <= 0 {
		cfg.TurnTimeout = 20 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 5 * time.Second
	}
	if cfg.InputIdleTimeout <= 0 {
		cfg.InputIdleTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ServerLogger == nil {
		cfg.ServerLogger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Speech) < 320 {
		return nil, nil, nil, errors.New("bench: soak needs speech")
	}
	// Native memory freed by ended sessions goes back, as under serve.
	cmem.Tune()

	res := &SoakResult{Sessions: cfg.Sessions, Duration: cfg.Duration, Turns: cfg.Turns,
		Speech: time.Duration(len(cfg.Speech)) * time.Second / 16000, Limit: cfg.Limit, Tolerance: cfg.Tolerance,
		StartTimeout: cfg.StartTimeout, InputIdleTimeout: cfg.InputIdleTimeout}
	s = &soak{cfg: cfg, res: res, ends: newEndLog(cfg.ServerLogger.Handler()), misbyK: map[string]*MisbehaviorResult{}}
	for i := 0; i+320 <= len(cfg.Speech); i += 320 {
		s.speech = append(s.speech, audio.EncodePCM16(nil, cfg.Speech[i:i+320]))
	}
	s.quiet = make([]byte, 640)

	sc := config.Default()
	sc.Server.Addr = "127.0.0.1:0"
	sc.Server.MaxSessions = cfg.Sessions + 100
	sc.Server.MaxSessionsPerAddr, sc.Server.SessionsPerAddrRate = -1, -1
	sc.Server.MaxCPUUtilization, sc.Server.MaxInputLateness = 1, time.Hour // measured here, not admitted by
	sc.Server.StartTimeout, sc.Server.InputIdleTimeout = cfg.StartTimeout, cfg.InputIdleTimeout
	sc.Server.ShutdownGrace = time.Millisecond
	if cfg.InputMaxAhead > 0 {
		sc.Server.InputMaxAhead = cfg.InputMaxAhead
	}
	res.InputMaxAhead = sc.Server.InputMaxAhead
	srv = server.New(sc, slog.New(s.ends))
	if err := srv.Load(); err != nil {
		srv.Close()
		return nil, nil, nil, fmt.Errorf("bench: soak: load the server (run make models): %w", err)
	}
	b := srv.Builder()
	b.STT = sttfake.New(sttfake.Config{Transcript: Transcript, Final: soakProfile.STTFinal})
	b.TTS = ttsfake.New(ttsfake.Config{FirstAudio: soakProfile.TTSFirst, RTF: soakProfile.TTSRTF, PerChar: soakPerChar})
	b.Model = fake.New(fake.Config{Reply: Reply, FirstToken: soakProfile.LLMFirst, TokensPerSecond: soakProfile.TokensPerSecond, Expect: Transcript})
	b.Agents, b.Entry, b.Voices, b.Config.Voice = nil, "", nil, ""
	b.OnInputLateness = s.observeLateness

	ln, err := net.Listen("tcp", sc.Server.Addr)
	if err != nil {
		srv.Close()
		return nil, nil, nil, fmt.Errorf("bench: soak: %w", err)
	}
	hs := srv.HTTPServer()
	go hs.Serve(ln)
	s.url = "ws://" + ln.Addr().String() + "/ws"
	cfg.Logger.Info("soak: server up", "url", s.url)
	return s, srv, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
		srv.Close()
	}, nil
}

// RunSoak runs the soak and returns its measurements; Criteria judges
// them. ctx cancels it.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	s, srv, stop, err := startSoak(cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	cfg, res, log := s.cfg, s.res, s.cfg.Logger
	var m Results
	m.machine()
	res.Date, res.Commit, res.CPU, res.Cores, res.GoVersion, res.LoadBefore = m.Date, m.Commit, m.CPU, m.Cores, m.GoVersion, m.LoadBefore

	// Warm-up: a few sessions, one turn each, so that pools and lazily
	// made state exist before the baseline; they are not counted.
	var warm SoakResult
	s.res = &warm
	var wg sync.WaitGroup
	for range min(cfg.Sessions, 5) {
		wg.Go(func() { s.good(ctx, 1, time.Time{}) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	s.mu.Lock()
	s.res, s.p99s = res, nil
	s.mu.Unlock()
	if warm.TurnsAnswered == 0 {
		return nil, fmt.Errorf("bench: soak: the warm-up sessions were not answered (%s)", warm.FirstFailure)
	}
	log.Info("soak: warmed up", "sessions", warm.GoodSessions, "answered", warm.TurnsAnswered)
	res.Baseline = settle(srv, 3*time.Second, nil)
	log.Info("soak: baseline", "goroutines", res.Baseline.Goroutines, "rss_mb", res.Baseline.RSS>>20)

	// The load.
	begin := time.Now()
	deadline := begin.Add(cfg.Duration)
	cpu0 := cpuTime()
	var peak atomic.Pointer[Snapshot]
	peak.Store(&Snapshot{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			sn := snapshot(srv)
			if p := peak.Load(); sn.RSS > p.RSS || sn.Goroutines > p.Goroutines || sn.Sessions > p.Sessions {
				peak.Store(&Snapshot{RSS: max(sn.RSS, p.RSS), Goroutines: max(sn.Goroutines, p.Goroutines), Sessions: max(sn.Sessions, p.Sessions)})
			}
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}()
	for i := range cfg.Sessions {
		// Slots start spread over the first 5 s (or a quarter of a short
		// run), then each replaces its session as soon as it hangs up.
		delay := time.Duration(i) * min(5*time.Second, cfg.Duration/4) / time.Duration(cfg.Sessions)
		wg.Go(func() {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				s.good(ctx, 1+(i+n)%cfg.Turns, deadline)
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
	<-sampled
	res.Wall = time.Since(begin)
	res.CPU1 = float64(cpuTime()-cpu0) / float64(res.Wall)
	res.Peak = *peak.Load()
	res.LoadAfter = loadLine()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	// After: every client gone; the server settles.
	res.After = settle(srv, 30*time.Second, &res.Baseline)
	s.mu.Lock()
	res.Lateness = Summarize(s.p99s)
	for _, k := range misbehaviors {
		if r := s.misbyK[k.name]; r != nil {
			res.Misbehaving = append(res.Misbehaving, *r)
		}
	}
	s.mu.Unlock()
	log.Info("soak: after", "goroutines", res.After.Goroutines, "rss_mb", res.After.RSS>>20, "sessions", res.After.Sessions)
	return res, nil
}

// Snapshot is the process's state at one moment.
type Snapshot struct {
	Goroutines int   `json:"goroutines"`
	RSS        int64 `json:"rss_bytes"`
	Heap       int64 `json:"heap_bytes"`
	Sessions   int   `json:"sessions"` // live sessions the server counts
}

func snapshot(srv *server.Server) Snapshot {
	return Snapshot{Goroutines: runtime.NumGoroutine(), RSS: rss(), Heap: int64(heapBytes()), Sessions: srv.Admission().Sessions()}
}

// settle waits until the server has no session, then measures after a
// full GC with the Go heap and glibc's free memory handed back, once a
// second until the measurement is within tolerance of base (when set) or
// wait runs out, and returns the last.
func settle(srv *server.Server, wait time.Duration, base *Snapshot) Snapshot {
	end := time.Now().Add(wait)
	for srv.Admission().Sessions() > 0 && time.Now().Before(end) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // trims and timers of the last sessions
	for {
		debug.FreeOSMemory()
		cmem.TrimNow()
		sn := snapshot(srv)
		if base == nil || time.Now().After(end) ||
			(float64(sn.Goroutines) <= float64(base.Goroutines)*1.05 && float64(sn.RSS) <= float64(base.RSS)*1.05) {
			return sn
		}
		time.Sleep(time.Second)
	}
}

// soakEvent is what a client reads of a server event.
type soakEvent struct {
	Type        string `json:"type"`
	SessionID   string `json:"session_id"`
	Code        string `json:"code"`
	Interrupted bool   `json:"interrupted"`
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
func (s *soak) good(ctx context.Context, turns int, deadline time.Time) {
	asked, answered, fail := 0, 0, ""
	var late *sessionLate
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.res.GoodSessions++
		s.res.TurnsAsked += asked
		s.res.TurnsAnswered += answered
		if fail != "" {
			s.res.GoodFailed++
			if s.res.FirstFailure == "" {
				s.res.FirstFailure = fail
			}
		}
		if late == nil {
			return
		}
		late.mu.Lock() // an observation may still be under way
		defer late.mu.Unlock()
		if len(late.v) > 0 {
			d := Summarize(late.v)
			s.p99s = append(s.p99s, d.P99)
			s.res.LateFrames += d.N
			if d.P99 > s.cfg.Limit {
				s.res.LateSessions++
			}
		}
	}()
	c, err := dialSoak(ctx, s.url, 0)
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
	var id string
	select {
	case id = <-c.ready:
	case <-c.done:
		fail = fmt.Sprintf("closed before ready (%d %s)", c.closeCode, c.closeReason)
		return
	case <-time.After(10 * time.Second):
		fail = "no ready within 10 s"
		return
	}
	late = &sessionLate{}
	s.late.Store(id, late)
	defer s.late.Delete(id)
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
	if err, ok := s.ends.wait(id, 2*time.Second); ok && err != nil && !transport.Expected(err) {
		fail = fmt.Sprintf("server: session failed: %v", err)
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
	server    error // the session's end as the server logged it (nil: unknown)
	logged    bool
	took      time.Duration
	note      string
}

func serverCode(code string) func(misOutcome) bool {
	return func(o misOutcome) bool { return o.logged && transport.ErrorCode(o.server) == code }
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
func (s *soak) misbehave(ctx context.Context, k misbehavior, n int) {
	begin := time.Now()
	var o misOutcome
	ok := false
	defer func() {
		o.took = time.Since(begin)
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.misbyK[k.name]
		if r == nil {
			r = &MisbehaviorResult{Kind: k.name, Does: k.does, Want: k.want, Outcomes: map[string]int{}}
			s.misbyK[k.name] = r
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
	c, err := dialSoak(ctx, s.url, readBuf)
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
			if _, done := s.ends.peek(id); done {
				break
			}
		}
		o.server, o.logged = s.ends.wait(id, 10*time.Second)
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
		o.server, o.logged = s.ends.wait(id, 2*time.Second)
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
	if o.logged {
		if code := transport.ErrorCode(o.server); code != "" {
			d += "; server: " + code
		} else if o.server != nil {
			d += "; server: " + o.server.Error()
		} else {
			d += "; server: normal end"
		}
	}
	if o.note != "" {
		d += "; " + o.note
	}
	return d
}

// endLog is the server's log handler: it keeps how each session ended
// (transport.Conn.LogEnd's record) until the soak takes it, and passes
// records at Warn and above on.
type endLog struct {
	attrs []slog.Attr
	next  slog.Handler

	mu   *sync.Mutex
	errs map[string]error // by session ID
	cond *sync.Cond
}

func newEndLog(next slog.Handler) *endLog {
	h := &endLog{next: next, mu: new(sync.Mutex), errs: map[string]error{}}
	h.cond = sync.NewCond(h.mu)
	return h
}

func (h *endLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *endLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "session ended" || r.Message == "session failed" {
		var id string
		var err error
		for _, a := range h.attrs {
			if a.Key == "session" {
				id = a.Value.String()
			}
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				err, _ = a.Value.Any().(error)
			}
			return true
		})
		if id != "" {
			h.mu.Lock()
			h.errs[id] = err
			h.cond.Broadcast()
			h.mu.Unlock()
		}
		return nil // the soak reports them
	}
	if r.Level >= slog.LevelWarn && h.next.Enabled(ctx, r.Level) {
		return h.next.WithAttrs(h.attrs).Handle(ctx, r)
	}
	return nil
}

func (h *endLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *endLog) WithGroup(string) slog.Handler { return h } // the server's records use none

// peek returns session id's end if it was logged, leaving it.
func (h *endLog) peek(id string) (error, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	err, ok := h.errs[id]
	return err, ok
}

// wait takes session id's end, waiting up to d for it to be logged.
func (h *endLog) wait(id string, d time.Duration) (error, bool) {
	t := time.AfterFunc(d, func() {
		h.mu.Lock()
		h.cond.Broadcast()
		h.mu.Unlock()
	})
	defer t.Stop()
	end := time.Now().Add(d)
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if err, ok := h.errs[id]; ok {
			delete(h.errs, id)
			return err, true
		}
		if !time.Now().Before(end) {
			return nil, false
		}
		h.cond.Wait()
	}
}
