package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/server"
)

// SIPConfig sets up `voiced bench sip`: the real server on loopback (real
// Silero VAD, the soak's fast fakes) answering SIP, measured two ways:
// voice-to-voice at the caller, one call at a time, next to the same turns
// over the WebSocket; then levels of concurrent sipp calls.
type SIPConfig struct {
	// Levels are the concurrent call counts, run in turn (default 25, 50,
	// 100, 150). At each, sipp places Rounds×N calls, at most N at once.
	Levels []int
	// Rounds is how many calls each of a level's N slots places (default
	// 2: the first round ramps up, the second holds N while calls end and
	// are replaced).
	Rounds int
	// Rate is sipp's call rate in calls a second (default 20).
	Rate int
	// Turns is how many times each sipp call speaks (default 2); Answer
	// the silence after each utterance, while the bot answers (default
	// 3.5 s: the fakes' answer is about 1.8 s).
	Turns  int
	Answer time.Duration
	// V2V is how many voice-to-voice turns are measured over SIP and over
	// the WebSocket each (default 10), one call at a time.
	V2V int
	// Speech is the caller's utterance (16 kHz mono).
	Speech []int16
	// Sipp is the sipp binary (default: sipp on PATH).
	Sipp string
	// Dir holds the scenario, the capture and sipp's files (default: a
	// temporary directory, removed after).
	Dir string
	// CPUProfile, if set, is a file for a CPU profile (runtime/pprof) of
	// the levels.
	CPUProfile string
	// Limit is the per-call input lateness p99 aimed at (default 20 ms).
	Limit        time.Duration
	Logger       *slog.Logger
	ServerLogger *slog.Logger
}

// SIPResult is what `voiced bench sip` measured.
type SIPResult struct {
	Date        time.Time `json:"date"`
	Commit      string    `json:"commit"`
	CPU         string    `json:"cpu"`
	Cores       int       `json:"cores"`
	GoVersion   string    `json:"go_version"`
	SippVersion string    `json:"sipp_version"`
	LoadBefore  string    `json:"load_before"`
	LoadAfter   string    `json:"load_after"`
	// Nice is the process's nice value (the shared box runs benchmarks at
	// 19, under everything else).
	Nice        int             `json:"nice"`
	Speech      time.Duration   `json:"speech"`
	Limit       time.Duration   `json:"limit"`
	Turns       int             `json:"turns_per_call"`
	Answer      time.Duration   `json:"answer_silence"`
	Rate        int             `json:"rate"`
	Rounds      int             `json:"rounds"`
	SIPV2V      []time.Duration `json:"sip_voice_to_voice"`
	WSV2V       []time.Duration `json:"ws_voice_to_voice"`
	V2VFailures []string        `json:"v2v_failures,omitempty"`
	V2VEarly    int             `json:"v2v_early"` // audible reply packets while the caller spoke
	InviteOK1   []time.Duration `json:"invite_ok_single"`
	Levels      []SIPLevel      `json:"levels"`
}

// SIPLevel is one level of concurrent sipp calls.
type SIPLevel struct {
	Calls   int `json:"calls"`   // at most at once (sipp -l)
	Offered int `json:"offered"` // placed in all (sipp -m)
	// Peak is the most sessions the server had at once; Held the median
	// of the once-a-second counts while sipp ran.
	Peak int `json:"peak"`
	Held int `json:"held"`
	// Successful and Failed are sipp's counts.
	Successful int `json:"successful"`
	Failed     int `json:"failed"`
	// TurnsAnswered counts the server's turn reports (one per answer).
	TurnsAnswered int `json:"turns_answered"`
	// Lateness summarizes the per-call input lateness p99s; Late counts
	// calls over the limit; Frames the samples.
	Lateness Dist `json:"lateness_p99s"`
	Late     int  `json:"late"`
	Frames   int  `json:"frames"`
	// Baseline is the server's RSS settled before the level, RSS its peak
	// during it; PerCall = (RSS − Baseline) / Peak.
	Baseline int64 `json:"baseline_rss"`
	RSS      int64 `json:"rss"`
	PerCall  int64 `json:"rss_per_call"`
	Heap     int64 `json:"peak_heap"`
	// CPU is the server's CPU time over the level's wall time (cores),
	// SippCPU sipp's.
	CPU     float64 `json:"cpu"`
	SippCPU float64 `json:"sipp_cpu"`
	// Waiting is the time the server's threads spent runnable but waiting
	// for a CPU, over the level's wall time: the machine's share in the
	// lateness (0 where /proc has no schedstat).
	Waiting float64 `json:"waiting"`
	// InviteOK is sipp's INVITE → 200 OK (rtd, whole milliseconds).
	InviteOK Dist          `json:"invite_ok"`
	Wall     time.Duration `json:"wall"`
	Load     string        `json:"load_after"`
	Note     string        `json:"note,omitempty"`
}

// sipLate collects every session's input lateness and answers for the
// level under way.
type sipLate struct {
	mu      sync.Mutex
	v       map[string][]time.Duration
	answers int
}

func (l *sipLate) observe(id string, d time.Duration) {
	l.mu.Lock()
	l.v[id] = append(l.v[id], d)
	l.mu.Unlock()
}

func (l *sipLate) answered(string, frame.TurnMetrics) {
	l.mu.Lock()
	l.answers++
	l.mu.Unlock()
}

// take returns what was collected since the last take and starts afresh.
func (l *sipLate) take() (map[string][]time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, n := l.v, l.answers
	l.v, l.answers = map[string][]time.Duration{}, 0
	return v, n
}

// RunSIP runs the SIP benchmark. ctx cancels it.
func RunSIP(ctx context.Context, cfg SIPConfig) (*SIPResult, error) {
	if len(cfg.Levels) == 0 {
		cfg.Levels = []int{25, 50, 100, 150}
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	if cfg.Turns <= 0 {
		cfg.Turns = 2
	}
	if cfg.Answer <= 0 {
		cfg.Answer = 3500 * time.Millisecond
	}
	if cfg.V2V <= 0 {
		cfg.V2V = 10
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sipp == "" {
		p, err := exec.LookPath("sipp")
		if err != nil {
			return nil, fmt.Errorf("bench: sip: sipp not installed (Debian package sip-tester): %w", err)
		}
		cfg.Sipp = p
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "voiced-bench-sip-")
		if err != nil {
			return nil, fmt.Errorf("bench: sip: %w", err)
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	log := cfg.Logger
	maxCalls := 0
	for _, n := range cfg.Levels {
		maxCalls = max(maxCalls, n)
	}
	// The soak's server: its admission limits off, its fakes in the
	// builder; the builder's lateness and turn hooks are replaced before
	// ListenSIP copies it, so that SIP calls report theirs.
	soak, stop, err := startSoak(SoakConfig{Sessions: maxCalls + 10, Speech: cfg.Speech,
		StartTimeout: 30 * time.Second, InputIdleTimeout: 60 * time.Second, Logger: log, ServerLogger: cfg.ServerLogger})
	if err != nil {
		return nil, err
	}
	defer stop()
	srv := soak.srv
	late := &sipLate{v: map[string][]time.Duration{}}
	b := srv.Builder()
	b.OnInputLateness, b.OnMetrics = late.observe, late.answered
	sipAddr, err := listenSIP(ctx, srv)
	if err != nil {
		return nil, err
	}
	res := &SIPResult{Speech: time.Duration(len(cfg.Speech)) * time.Second / 16000, Limit: cfg.Limit,
		Turns: cfg.Turns, Answer: cfg.Answer, Rate: cfg.Rate, Rounds: cfg.Rounds}
	var m Results
	m.machine()
	res.Date, res.Commit, res.CPU, res.Cores, res.GoVersion, res.LoadBefore = m.Date, m.Commit, m.CPU, m.Cores, m.GoVersion, m.LoadBefore
	// getpriority(2) returns 20 − nice.
	if p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0); err == nil {
		res.Nice = 20 - p
	}
	// sipp -v exits non-zero after printing its version.
	out, _ := exec.Command(cfg.Sipp, "-v").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "SIPp v") {
			res.SippVersion = strings.TrimSuffix(l, ".")
		}
	}
	log.Info("bench sip: server up", "sip", sipAddr, "ws", soak.url)

	// Voice-to-voice at the caller, SIP and WebSocket turns interleaved so
	// that both see the same machine.
	rs, err := audio.NewResampler(16000, 8000)
	if err != nil {
		return nil, fmt.Errorf("bench: sip: %w", err)
	}
	speech8k := rs.Process(nil, cfg.Speech)
	for i := range cfg.V2V {
		c, took, err := callSIP(ctx, sipAddr, "demo")
		if err == nil {
			res.InviteOK1 = append(res.InviteOK1, took)
			var d time.Duration
			var early int
			d, early, err = c.turn(ctx, append(make([]int16, 4000), speech8k...), 10*time.Second)
			res.V2VEarly += early
			if err == nil {
				res.SIPV2V = append(res.SIPV2V, d)
			}
			if herr := c.hangUp("demo"); err == nil {
				err = herr
			}
		}
		if err != nil {
			res.V2VFailures = append(res.V2VFailures, fmt.Sprintf("SIP turn %d: %v", i+1, err))
		}
		d, early, err := wsTurn(ctx, soak.url, cfg.Speech, 10*time.Second)
		res.V2VEarly += early
		if err != nil {
			res.V2VFailures = append(res.V2VFailures, fmt.Sprintf("WebSocket turn %d: %v", i+1, err))
		} else {
			res.WSV2V = append(res.WSV2V, d)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Info("bench sip: voice-to-voice", "turn", i+1, "sip", last(res.SIPV2V), "ws", last(res.WSV2V))
	}
	if len(res.SIPV2V) == 0 {
		return nil, fmt.Errorf("bench: sip: no SIP turn was answered (%v)", res.V2VFailures)
	}

	// Concurrent calls from sipp.
	capture, playMs, err := writeLoadCapture(cfg.Dir, speech8k, cfg.Turns, cfg.Answer)
	if err != nil {
		return nil, err
	}
	scenario := filepath.Join(cfg.Dir, "uac_bench.xml")
	if err := os.WriteFile(scenario, fmt.Appendf(nil, SippCallerScenario, capture, playMs+200), 0o644); err != nil {
		return nil, fmt.Errorf("bench: sip: %w", err)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("bench: sip: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("bench: sip: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for _, n := range cfg.Levels {
		lv, err := runSIPLevel(ctx, cfg, srv, late, scenario, sipAddr, n, time.Duration(playMs)*time.Millisecond)
		if err != nil {
			return res, err
		}
		log.Info("bench sip: level", "calls", n, "peak", lv.Peak, "failed", lv.Failed, "lateness_p99_median", lv.Lateness.P50,
			"lateness_p99_worst", lv.Lateness.Max, "rss_per_call_kib", lv.PerCall>>10, "cpu", lv.CPU, "sipp_cpu", lv.SippCPU)
		res.Levels = append(res.Levels, lv)
	}
	res.LoadAfter = loadLine()
	return res, nil
}

func last(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

// listenSIP starts the server's SIP listener on a free loopback port.
func listenSIP(ctx context.Context, srv *server.Server) (netip.AddrPort, error) {
	var err error
	for range 5 {
		var c *net.UDPConn
		if c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			break
		}
		addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.Close()
		if err = srv.ListenSIP(ctx, addr.String(), nil); err == nil {
			return addr, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("bench: sip: listen: %w", err)
}

// writeLoadCapture writes the sipp callers' audio: half a second of
// silence, then turns times the speech followed by answer of silence, as
// PCMU RTP; it returns the file and its length in milliseconds.
func writeLoadCapture(dir string, speech8k []int16, turns int, answer time.Duration) (string, int, error) {
	pcm := make([]int16, 4000)
	for range turns {
		pcm = append(pcm, speech8k...)
		pcm = append(pcm, make([]int16, int(answer.Seconds()*8000))...)
	}
	path := filepath.Join(dir, "caller.pcap")
	if err := os.WriteFile(path, PCMUCapture(audio.EncodeULaw(nil, pcm)), 0o644); err != nil {
		return "", 0, fmt.Errorf("bench: sip: %w", err)
	}
	return path, len(pcm) / 8, nil
}

// runSIPLevel runs sipp for one level: Rounds×n calls, at most n at once.
func runSIPLevel(ctx context.Context, cfg SIPConfig, srv *server.Server, late *sipLate, scenario string,
	sipAddr netip.AddrPort, n int, call time.Duration) (SIPLevel, error) {
	lv := SIPLevel{Calls: n, Offered: cfg.Rounds * n}
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("level-%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return lv, fmt.Errorf("bench: sip: %w", err)
	}
	base := settle(srv, 20*time.Second, nil)
	lv.Baseline = base.RSS
	late.take()
	// Long enough for the ramp, the rounds of calls and slack.
	budget := time.Duration(lv.Offered/cfg.Rate)*time.Second + time.Duration(cfg.Rounds)*call + 60*time.Second
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	sippPort, err := freeUDPPort()
	if err != nil {
		return lv, err
	}
	mediaPort, err := freeUDPPort()
	if err != nil {
		return lv, err
	}
	cmd := exec.CommandContext(sctx, cfg.Sipp, "-sf", scenario, "-s", "demo",
		"-l", strconv.Itoa(n), "-r", strconv.Itoa(cfg.Rate), "-m", strconv.Itoa(lv.Offered),
		"-i", "127.0.0.1", "-p", strconv.Itoa(sippPort), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mediaPort),
		"-t", "u1", "-nostdin", "-timeout", strconv.Itoa(int(budget.Seconds()))+"s", "-timeout_error",
		"-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", "stat.csv", "-fd", "1",
		"-trace_err", "-error_file", "err.log", sipAddr.String())
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	begin := time.Now()
	cpu0, wait0 := cpuTime(), schedWait()
	if err := cmd.Start(); err != nil {
		return lv, fmt.Errorf("bench: sip: sipp: %w", err)
	}
	var counts []int
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var werr error
sample:
	for {
		select {
		case werr = <-waited:
			break sample
		case <-tick.C:
			sn := snapshot(srv)
			lv.Peak = max(lv.Peak, sn.Sessions)
			lv.RSS = max(lv.RSS, sn.RSS)
			lv.Heap = max(lv.Heap, sn.Heap)
			if sn.Sessions > 0 {
				counts = append(counts, sn.Sessions)
			}
		}
	}
	lv.Wall = time.Since(begin)
	lv.CPU = float64(cpuTime()-cpu0) / float64(lv.Wall)
	lv.Waiting = float64(schedWait()-wait0) / float64(lv.Wall)
	if ps := cmd.ProcessState; ps != nil {
		lv.SippCPU = float64(ps.UserTime()+ps.SystemTime()) / float64(lv.Wall)
	}
	lv.Load = loadLine()
	if ctx.Err() != nil {
		return lv, ctx.Err()
	}
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return lv, fmt.Errorf("bench: sip: sipp: %w", werr)
		}
		// sipp exits 1 when a call failed: counted below.
		lv.Note = fmt.Sprintf("sipp: %v", werr)
	}
	if len(counts) > 0 {
		slices.Sort(counts)
		lv.Held = counts[len(counts)/2]
	}
	if lv.Peak > 0 {
		lv.PerCall = (lv.RSS - lv.Baseline) / int64(lv.Peak)
	}
	stat, err := os.ReadFile(filepath.Join(dir, "stat.csv"))
	if err != nil {
		return lv, fmt.Errorf("bench: sip: sipp wrote no statistics (%v):\n%s", err, tail(out.String(), 2000))
	}
	if lv.Successful, lv.Failed, err = parseSippStat(string(stat)); err != nil {
		return lv, err
	}
	rtts, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	var rtd []time.Duration
	for _, p := range rtts {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		v, err := parseSippRTT(f)
		f.Close()
		if err != nil {
			return lv, err
		}
		rtd = append(rtd, v...)
	}
	lv.InviteOK = Summarize(rtd)
	// Sessions end a moment after their BYE: wait for them before taking
	// the level's samples.
	for end := time.Now().Add(10 * time.Second); srv.Admission().Sessions() > 0 && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	v, answers := late.take()
	lv.TurnsAnswered = answers
	var p99s []time.Duration
	for _, s := range v {
		d := Summarize(s)
		p99s = append(p99s, d.P99)
		lv.Frames += d.N
		if d.P99 > cfg.Limit {
			lv.Late++
		}
	}
	lv.Lateness = Summarize(p99s)
	return lv, nil
}

// schedWait is the time the process's threads have spent runnable, waiting
// for a CPU: the second field of /proc/self/task/*/schedstat, summed over
// the threads alive now (the Go runtime keeps its threads).
func schedWait() time.Duration {
	paths, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var sum time.Duration
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += time.Duration(n)
		}
	}
	return sum
}

func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("bench: sip: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// parseSippStat returns the successful and failed call counts from the
// last line of sipp's -trace_stat file (semicolon-separated, a header line
// naming the columns).
func parseSippStat(s string) (ok, failed int, err error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return 0, 0, errors.New("bench: sip: sipp statistics: no data line")
	}
	head := strings.Split(strings.TrimSpace(lines[0]), ";")
	row := strings.Split(strings.TrimSpace(lines[len(lines)-1]), ";")
	col := func(name string) (int, error) {
		for i, h := range head {
			if h == name && i < len(row) {
				return strconv.Atoi(strings.TrimSpace(row[i]))
			}
		}
		return 0, fmt.Errorf("bench: sip: sipp statistics: no column %s", name)
	}
	if ok, err = col("SuccessfulCall(C)"); err != nil {
		return 0, 0, err
	}
	if failed, err = col("FailedCall(C)"); err != nil {
		return 0, 0, err
	}
	return ok, failed, nil
}

// parseSippRTT reads sipp's -trace_rtt file: a header line, then one line
// per timed response, "date_ms;response_time_ms;rtd_no".
func parseSippRTT(r io.Reader) ([]time.Duration, error) {
	var v []time.Duration
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Split(strings.TrimSpace(sc.Text()), ";")
		if first || len(f) < 2 || f[0] == "" {
			continue
		}
		ms, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("bench: sip: sipp rtt line %q: %w", sc.Text(), err)
		}
		v = append(v, time.Duration(ms*float64(time.Millisecond)))
	}
	return v, sc.Err()
}

// SippCallerScenario is a sipp caller offering PCMU alone (it fails the
// call unless the answer is PCMU/8000) that plays the capture (%[1]s: the
// caller's turns and the silences while the bot answers), waits for it to
// end (%[2]d ms) and hangs up. INVITE → 200 OK is timed (rtd). The bench's
// load and the e2e sipp test both call with it.
const SippCallerScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="voiced PCMU caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port];transport=[transport]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true">
    <action><ereg regexp="PCMU/8000" search_in="body" check_it="true" assign_to="codec"/></action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port];transport=[transport]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="codec"/>
  <nop><action><exec play_pcap_audio="%[1]s"/></action></nop>
  <pause milliseconds="%[2]d"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port];transport=[transport]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`
