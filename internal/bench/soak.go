package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/agents/llm/fake"
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
// client of each kind at any time, for Duration. The clients run in a
// process of their own (see soakclient.go).
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
	// ClientLog receives the client process's stderr (default: discarded).
	ClientLog io.Writer
	// TraceDir, if set, keeps a flight recorder of the server process's
	// execution trace (runtime/trace) during the load and writes its last
	// seconds there when well-behaved sessions' frames run late: at most
	// three traces, 30 s apart. Tracing costs CPU of its own.
	TraceDir string
	// ClientNice is the client process's nice value (0: the server's). The
	// clients stand in for callers on other machines; on a small machine a
	// positive value keeps the server's threads from queueing behind them.
	ClientNice int
}

// Soak providers: fast fakes, so that what is measured is voiced itself
// (the real Silero VAD runs on every session's audio).
var soakProfile = Profile{Name: "soak-fast", STTFinal: 30 * time.Millisecond, LLMFirst: 50 * time.Millisecond,
	TokensPerSecond: 200, TTSFirst: 30 * time.Millisecond, TTSRTF: 0.1}

// soakPerChar makes the bot's answer (Reply) about 1.8 s of audio.
const soakPerChar = 25 * time.Millisecond

// soakServer is a soak run's server side: the server, how its sessions
// ended, and the input lateness of the sessions the clients watch, served
// to the clients by its control API.
type soakServer struct {
	cfg     SoakConfig
	srv     *server.Server
	url     string // the server's /ws
	control string // the control API's base URL
	ends    *endLog
	late    sync.Map // session ID → *sessionLate, while its client watches

	// Frames of watched sessions later than cfg.Limit, by second of the
	// load (from lateFrom), to tell spikes that hit every session at once
	// from sessions late on their own.
	lateMu   sync.Mutex
	lateFrom time.Time
	lateBy   map[int]int

	// lateSignal is signalled (never blocking) on each frame over the
	// limit, for the flight recorder (nil without one).
	lateSignal chan struct{}
}

// sessionLate collects one session's input lateness samples.
type sessionLate struct {
	mu sync.Mutex
	v  []time.Duration
}

func (s *soakServer) observeLateness(id string, d time.Duration) {
	if v, ok := s.late.Load(id); ok {
		l := v.(*sessionLate)
		l.mu.Lock()
		l.v = append(l.v, d)
		l.mu.Unlock()
		if d > s.cfg.Limit {
			s.lateMu.Lock()
			if !s.lateFrom.IsZero() {
				s.lateBy[int(time.Since(s.lateFrom)/time.Second)]++
			}
			s.lateMu.Unlock()
			select {
			case s.lateSignal <- struct{}{}:
			default:
			}
		}
	}
}

// lateSeconds returns the seconds of the load with frames over the limit,
// the most first.
func (s *soakServer) lateSeconds() []LateSecond {
	s.lateMu.Lock()
	defer s.lateMu.Unlock()
	out := make([]LateSecond, 0, len(s.lateBy))
	for at, n := range s.lateBy {
		out = append(out, LateSecond{At: at, Frames: n})
	}
	slices.SortFunc(out, func(a, b LateSecond) int { return cmp.Or(b.Frames-a.Frames, a.At-b.At) })
	return out
}

// startSoak fills in cfg's defaults and starts the server: the default
// configuration, its limits set for one loopback address carrying every
// client, the fast fakes in its builder; and the control API beside it.
// stop stops both.
func startSoak(cfg SoakConfig) (s *soakServer, stop func(), err error) {
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
	if cfg.ClientLog == nil {
		cfg.ClientLog = io.Discard
	}
	if len(cfg.Speech) < 320 {
		return nil, nil, errors.New("bench: soak needs speech")
	}
	// Native memory freed by ended sessions goes back, as under serve.
	cmem.Tune()

	s = &soakServer{cfg: cfg, ends: newEndLog(cfg.ServerLogger.Handler()), lateBy: map[int]int{}}
	if cfg.TraceDir != "" {
		s.lateSignal = make(chan struct{}, 1)
	}
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
	s.cfg.InputMaxAhead = sc.Server.InputMaxAhead
	srv := server.New(sc, slog.New(s.ends))
	if err := srv.Load(); err != nil {
		srv.Close()
		return nil, nil, fmt.Errorf("bench: soak: load the server (run make models): %w", err)
	}
	s.srv = srv
	b := srv.Builder()
	b.STT = sttfake.New(sttfake.Config{Transcript: Transcript, Final: soakProfile.STTFinal})
	b.TTS = ttsfake.New(ttsfake.Config{FirstAudio: soakProfile.TTSFirst, RTF: soakProfile.TTSRTF, PerChar: soakPerChar})
	b.Model = fake.New(fake.Config{Reply: Reply, FirstToken: soakProfile.LLMFirst, TokensPerSecond: soakProfile.TokensPerSecond, Expect: Transcript})
	b.Agents, b.Entry, b.Voices, b.Config.Voice = nil, "", nil, ""
	b.OnInputLateness = s.observeLateness

	ln, err := net.Listen("tcp", sc.Server.Addr)
	if err != nil {
		srv.Close()
		return nil, nil, fmt.Errorf("bench: soak: %w", err)
	}
	hs := srv.HTTPServer()
	go hs.Serve(ln)
	s.url = "ws://" + ln.Addr().String() + "/ws"
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hs.Close()
		srv.Close()
		return nil, nil, fmt.Errorf("bench: soak: %w", err)
	}
	cs := &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go cs.Serve(cl)
	s.control = "http://" + cl.Addr().String()
	cfg.Logger.Info("soak: server up", "url", s.url, "control", s.control)
	return s, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
		cs.Close()
		srv.Close()
	}, nil
}

// controlHandler is the API the client process asks:
//
//	POST /watch?id=S          start collecting session S's input lateness
//	POST /finish?id=S         stop, and return the lateness's Dist
//	GET  /end?id=S&wait=D     how S ended (serverEnd), waiting up to D for
//	                          it to be logged; take=1 forgets it afterwards
func (s *soakServer) controlHandler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /watch", func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		if id == "" {
			http.Error(w, "no id", http.StatusBadRequest)
			return
		}
		s.late.Store(id, &sessionLate{})
	})
	mux.HandleFunc("POST /finish", func(w http.ResponseWriter, r *http.Request) {
		v, ok := s.late.LoadAndDelete(r.FormValue("id"))
		if !ok {
			http.Error(w, "session not watched", http.StatusNotFound)
			return
		}
		l := v.(*sessionLate)
		l.mu.Lock() // an observation may still be under way
		d := Summarize(l.v)
		l.mu.Unlock()
		reply(w, d)
	})
	mux.HandleFunc("GET /end", func(w http.ResponseWriter, r *http.Request) {
		wait, err := time.ParseDuration(r.FormValue("wait"))
		if err != nil || wait < 0 || wait > time.Minute {
			http.Error(w, "bad wait", http.StatusBadRequest)
			return
		}
		var e serverEnd
		end, logged := s.ends.wait(r.FormValue("id"), wait, r.FormValue("take") == "1")
		e.Logged = logged
		if end != nil {
			e.Failed, e.Code, e.Text, e.Expected = true, transport.ErrorCode(end), end.Error(), transport.Expected(end)
		}
		reply(w, e)
	})
	return mux
}

// clients runs the client process with cfg and returns what it tallied
// and the CPU time it used. Stopping ctx stops it.
func (s *soakServer) clients(ctx context.Context, cc soakClientConfig) (soakTally, time.Duration, error) {
	var t soakTally
	exe, err := os.Executable()
	if err != nil {
		return t, 0, fmt.Errorf("bench: soak: the client process: %w", err)
	}
	cc.URL, cc.Control, cc.Limit, cc.Turns, cc.TurnTimeout = s.url, s.control, s.cfg.Limit, s.cfg.Turns, s.cfg.TurnTimeout
	cc.Speech = speechBytes(s.cfg.Speech)
	in, err := json.Marshal(cc)
	if err != nil {
		return t, 0, err
	}
	cmd := exec.Command(exe, "bench", "soak-clients")
	if s.cfg.ClientNice != 0 {
		// Through nice(1): a nice value set after the start would miss
		// the threads the Go runtime has already made.
		nice, err := exec.LookPath("nice")
		if err != nil {
			return t, 0, fmt.Errorf("bench: soak: the client process's nice value: %w", err)
		}
		cmd = exec.Command(nice, "-n", strconv.Itoa(s.cfg.ClientNice), exe, "bench", "soak-clients")
	}
	// A test binary is not voiced: its TestMain runs Command with these.
	cmd.Env = append(os.Environ(), "VOICED_BENCH_ARGS=soak-clients")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, s.cfg.ClientLog
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return t, 0, err
	}
	if err := cmd.Start(); err != nil {
		return t, 0, fmt.Errorf("bench: soak: start the client process: %w", err)
	}
	// stdin stays open while the clients run: closing it stops them.
	if _, err := stdin.Write(append(in, '\n')); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return t, 0, fmt.Errorf("bench: soak: the client process: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { stdin.Close() })
	defer stop()
	err = cmd.Wait()
	stdin.Close()
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err != nil {
		if ctx.Err() != nil {
			return t, cpu, ctx.Err()
		}
		return t, cpu, fmt.Errorf("bench: soak: the client process: %w", err)
	}
	if err := json.Unmarshal(out.Bytes(), &t); err != nil {
		return t, cpu, fmt.Errorf("bench: soak: the client process's tally: %w", err)
	}
	return t, cpu, nil
}

// RunSoak runs the soak and returns its measurements; Criteria judges
// them. ctx cancels it.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	s, stop, err := startSoak(cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	cfg, log := s.cfg, s.cfg.Logger
	res := &SoakResult{Sessions: cfg.Sessions, Duration: cfg.Duration, Turns: cfg.Turns,
		Speech: time.Duration(len(cfg.Speech)) * time.Second / 16000, Limit: cfg.Limit, Tolerance: cfg.Tolerance,
		StartTimeout: cfg.StartTimeout, InputIdleTimeout: cfg.InputIdleTimeout, InputMaxAhead: cfg.InputMaxAhead}
	var m Results
	m.machine()
	res.Date, res.Commit, res.CPU, res.Cores, res.GoVersion, res.LoadBefore = m.Date, m.Commit, m.CPU, m.Cores, m.GoVersion, m.LoadBefore

	// Warm-up: a few sessions, one turn each, so that pools and lazily
	// made state exist before the baseline; they are not counted.
	warm, _, err := s.clients(ctx, soakClientConfig{Warm: true, Sessions: min(cfg.Sessions, 5)})
	if err != nil {
		return nil, err
	}
	if warm.TurnsAnswered == 0 {
		return nil, fmt.Errorf("bench: soak: the warm-up sessions were not answered (%s)", warm.FirstFailure)
	}
	log.Info("soak: warmed up", "sessions", warm.GoodSessions, "answered", warm.TurnsAnswered)
	res.Baseline = settle(s.srv, 3*time.Second, nil)
	log.Info("soak: baseline", "goroutines", res.Baseline.Goroutines, "rss_mb", res.Baseline.RSS>>20)

	// The load.
	begin := time.Now()
	s.lateMu.Lock()
	s.lateFrom = begin
	s.lateMu.Unlock()
	traced := func() []string { return nil }
	if cfg.TraceDir != "" {
		if traced, err = s.record(ctx, begin); err != nil {
			return nil, err
		}
	}
	cpu0, wait0, sched0, gc0 := cpuTime(), schedWait(), goSched(), gcCPU()
	trims0, trimTime0, _ := cmem.Trims()
	var peak atomic.Pointer[Snapshot]
	peak.Store(&Snapshot{})
	steal0 := stealTime()
	stealBy := map[int]time.Duration{} // by second of the load, as sampled
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		prev := steal0
		for sampling.Err() == nil {
			if st := stealTime(); st > prev {
				stealBy[max(int(time.Since(begin)/time.Second)-1, 0)] += st - prev
				prev = st
			}
			sn := snapshot(s.srv)
			if p := peak.Load(); sn.RSS > p.RSS || sn.Goroutines > p.Goroutines || sn.Sessions > p.Sessions {
				peak.Store(&Snapshot{RSS: max(sn.RSS, p.RSS), Goroutines: max(sn.Goroutines, p.Goroutines), Sessions: max(sn.Sessions, p.Sessions)})
			}
			select {
			case <-time.After(time.Second):
			case <-sampling.Done():
			}
		}
	}()
	t, clientCPU, err := s.clients(ctx, soakClientConfig{Sessions: cfg.Sessions, Duration: cfg.Duration})
	stopSampling()
	<-sampled
	res.Traces = traced() // before the after-measurement: the recorder holds memory
	res.Wall = time.Since(begin)
	res.CPU1 = float64(cpuTime()-cpu0) / float64(res.Wall)
	res.Waiting = float64(schedWait()-wait0) / float64(res.Wall)
	res.GoSched, res.GCPause = goSched().since(sched0)
	res.GCCPU = float64(gcCPU()-gc0) / float64(res.Wall)
	res.Steal = float64(stealTime()-steal0) / float64(res.Wall)
	res.LateSeconds = s.lateSeconds()
	for i, l := range res.LateSeconds {
		// The sampler's seconds are not the lateness's: take the most
		// around it.
		res.LateSeconds[i].Steal = max(stealBy[l.At-1], stealBy[l.At], stealBy[l.At+1])
	}
	trims, trimTime, trimWorst := cmem.Trims()
	res.Trims, res.TrimTime, res.TrimWorst = trims-trims0, trimTime-trimTime0, trimWorst
	res.ClientCPU = float64(clientCPU) / float64(res.Wall)
	res.ClientNice = cfg.ClientNice
	res.Peak = *peak.Load()
	res.LoadAfter = loadLine()
	if err != nil {
		return res, err
	}
	res.GoodSessions, res.GoodFailed, res.FirstFailure = t.GoodSessions, t.GoodFailed, t.FirstFailure
	res.TurnsAsked, res.TurnsAnswered = t.TurnsAsked, t.TurnsAnswered
	res.Lateness, res.LateFrames, res.LateSessions = Summarize(t.P99s), t.LateFrames, t.LateSessions
	for _, k := range misbehaviors {
		if r := t.Misbehaving[k.name]; r != nil {
			res.Misbehaving = append(res.Misbehaving, *r)
		}
	}

	// After: every client gone; the server settles.
	res.After = settle(s.srv, 30*time.Second, &res.Baseline)
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

// wait returns session id's end, waiting up to d (which may be 0) for it
// to be logged; take forgets it.
func (h *endLog) wait(id string, d time.Duration, take bool) (error, bool) {
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
			if take {
				delete(h.errs, id)
			}
			return err, true
		}
		if !time.Now().Before(end) {
			return nil, false
		}
		h.cond.Wait()
	}
}

// schedHists are the Go runtime's histograms of how long goroutines
// waited to run and how long the world stopped for the collector.
type schedHists struct{ latency, gc *metrics.Float64Histogram }

func goSched() schedHists {
	ms := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(ms)
	var h schedHists
	if ms[0].Value.Kind() == metrics.KindFloat64Histogram {
		h.latency = ms[0].Value.Float64Histogram()
	}
	if ms[1].Value.Kind() == metrics.KindFloat64Histogram {
		h.gc = ms[1].Value.Float64Histogram()
	}
	return h
}

// since returns the goroutine scheduling latency and the GC pauses
// between h0 and h, each as a Dist of bucket upper bounds.
func (h schedHists) since(h0 schedHists) (latency, gc Dist) {
	return histSince(h.latency, h0.latency), histSince(h.gc, h0.gc)
}

// histSince summarizes the counts h added since h0 (same buckets), each
// observation taken at its bucket's upper bound.
func histSince(h, h0 *metrics.Float64Histogram) Dist {
	if h == nil || h0 == nil || len(h.Counts) != len(h0.Counts) {
		return Dist{}
	}
	var n uint64
	for i := range h.Counts {
		n += h.Counts[i] - h0.Counts[i]
	}
	if n == 0 {
		return Dist{}
	}
	at := func(q float64) time.Duration {
		want := uint64(math.Ceil(q * float64(n)))
		var c uint64
		for i := range h.Counts {
			c += h.Counts[i] - h0.Counts[i]
			if c >= want && c > 0 {
				up := h.Buckets[i+1]
				if math.IsInf(up, 1) {
					up = h.Buckets[i]
				}
				return time.Duration(up * float64(time.Second))
			}
		}
		return 0
	}
	return Dist{N: int(n), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: at(1)}
}

// stealTime is the time the hypervisor ran something else while this
// machine's CPUs wanted to run (the steal column of /proc/stat's cpu line,
// summed over the CPUs; 0 where unknown).
func stealTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	n, _ := strconv.ParseInt(f[8], 10, 64)
	return time.Duration(n) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// record starts the flight recorder and the goroutine that writes its
// window to cfg.TraceDir when frames run late. done stops both and returns
// the files written.
func (s *soakServer) record(ctx context.Context, begin time.Time) (done func() []string, err error) {
	if err := os.MkdirAll(s.cfg.TraceDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: soak: trace dir: %w", err)
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: 5 * time.Second, MaxBytes: 64 << 20})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("bench: soak: flight recorder: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	var files []string
	written := make(chan struct{})
	go func() {
		defer close(written)
		for len(files) < 3 {
			select {
			case <-s.lateSignal:
			case <-rctx.Done():
				return
			}
			at := int(time.Since(begin) / time.Second)
			select { // the episode's tail too
			case <-time.After(2 * time.Second):
			case <-rctx.Done():
			}
			name := filepath.Join(s.cfg.TraceDir, fmt.Sprintf("soak-late-%ds.trace", at))
			f, err := os.Create(name)
			if err != nil {
				s.cfg.Logger.Warn("soak: trace", "err", err)
				return
			}
			_, err = fr.WriteTo(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				s.cfg.Logger.Warn("soak: trace", "err", err)
				return
			}
			s.cfg.Logger.Info("soak: frames late; trace written", "file", name)
			files = append(files, name)
			select { // one per episode
			case <-time.After(30 * time.Second):
			case <-rctx.Done():
				return
			}
			select { // a signal from the episode just written is stale
			case <-s.lateSignal:
			default:
			}
		}
	}()
	return func() []string {
		stop()
		<-written
		fr.Stop()
		return files
	}, nil
}

// gcCPU is the CPU time the Go collector has spent in this process (an
// estimate of the runtime's: runtime/metrics).
func gcCPU() time.Duration {
	ms := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(ms)
	if ms[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(ms[0].Value.Float64() * float64(time.Second))
}
