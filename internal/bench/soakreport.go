package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SoakResult is what a soak run measured.
type SoakResult struct {
	// The machine, as in Results.
	Date                   time.Time
	Commit, CPU, GoVersion string
	Cores                  int
	LoadBefore, LoadAfter  string

	// Parameters.
	Sessions                       int
	Duration, Wall                 time.Duration
	Turns                          int
	Speech                         time.Duration // the utterance
	Limit                          time.Duration
	Tolerance                      float64
	StartTimeout, InputIdleTimeout time.Duration
	InputMaxAhead                  time.Duration
	CPU1                           float64 // the server process's CPU time per wall second over the load (1 = one core)
	ClientCPU                      float64 // the client process's, likewise
	ClientNice                     int     // the client process's nice value
	// Waiting is how long the server's threads waited for a CPU per wall
	// second (schedstat); GoSched how long its goroutines waited to run
	// and GCPause its stop-the-world pauses (the Go runtime's histograms,
	// at bucket bounds), over the load.
	Waiting          float64
	GCCPU            float64 // the Go collector's CPU time per wall second
	GoSched, GCPause Dist
	// Trims counts the C allocator's trims over the load (cmem), TrimTime
	// their total, TrimWorst the longest in the process.
	// Steal is the CPU time the hypervisor took from the machine per
	// wall second over the load (/proc/stat).
	Steal               float64
	Trims               int
	TrimTime, TrimWorst time.Duration
	// Traces are the execution traces the flight recorder wrote
	// (SoakConfig.TraceDir).
	Traces []string
	// LateSeconds are the seconds of the load in which well-behaved
	// sessions had frames over Limit, the most first.
	LateSeconds []LateSecond

	// Baseline is after the warm-up, before the load; After once every
	// client is gone and the server has settled; Peak the highest seen
	// during the load (sampled once a second).
	Baseline, After, Peak Snapshot

	// Well-behaved sessions.
	GoodSessions, GoodFailed  int
	FirstFailure              string
	TurnsAsked, TurnsAnswered int
	// Lateness is the distribution of the sessions' input lateness p99s;
	// LateSessions how many were over Limit; LateFrames the frames
	// measured.
	Lateness     Dist
	LateSessions int
	LateFrames   int

	Misbehaving []MisbehaviorResult
}

// LateSecond counts the frames over the limit in one second of the load.
type LateSecond struct {
	At     int // seconds from the start of the load
	Frames int
	// Steal is the most CPU time the hypervisor took from this machine
	// in that second or one beside it.
	Steal time.Duration
}

// MisbehaviorResult is what happened to the misbehaving clients of one
// kind.
type MisbehaviorResult struct {
	Kind, Does, Want    string
	Clients, AsExpected int
	// Outcomes counts each outcome seen ("error too_fast, close 1008;
	// server: too_fast").
	Outcomes        map[string]int
	FirstUnexpected string
	MaxTook         time.Duration // the longest a client lasted
}

// Criterion is one pass/fail test of a soak.
type Criterion struct {
	Name, Want, Got string
	Pass            bool
}

// Criteria judges r by issue 13's soak: goroutines and RSS back within
// Tolerance of the baseline, no well-behaved session's input lateness p99
// over Limit, every turn answered (and every well-behaved session ended
// cleanly), and every misbehaving client cut off as documented.
func (r *SoakResult) Criteria() []Criterion {
	within := func(after, base float64) bool { return base > 0 && after <= base*(1+r.Tolerance) }
	pct := func(after, base float64) string {
		if base == 0 {
			return "no baseline"
		}
		return fmt.Sprintf("%+.1f%%", 100*(after-base)/base)
	}
	tol := fmt.Sprintf("≤ baseline + %.0f%%", 100*r.Tolerance)
	cs := []Criterion{
		{Name: "goroutines back to baseline", Want: tol,
			Got:  fmt.Sprintf("%d → %d (%s)", r.Baseline.Goroutines, r.After.Goroutines, pct(float64(r.After.Goroutines), float64(r.Baseline.Goroutines))),
			Pass: within(float64(r.After.Goroutines), float64(r.Baseline.Goroutines))},
		{Name: "RSS back to baseline", Want: tol,
			Got:  fmt.Sprintf("%s → %s (%s)", mib(r.Baseline.RSS), mib(r.After.RSS), pct(float64(r.After.RSS), float64(r.Baseline.RSS))),
			Pass: within(float64(r.After.RSS), float64(r.Baseline.RSS))},
		{Name: "input lateness p99 of every well-behaved session", Want: "≤ " + r.Limit.String(),
			Got:  fmt.Sprintf("worst %v, %d of %d sessions over", r.Lateness.Max.Round(10*time.Microsecond), r.LateSessions, r.Lateness.N),
			Pass: r.Lateness.N > 0 && r.LateSessions == 0 && r.Lateness.Max <= r.Limit},
		{Name: "every turn answered", Want: "answered = asked, every session ended with 1000 end",
			Got:  fmt.Sprintf("%d of %d turns; %d of %d sessions failed", r.TurnsAnswered, r.TurnsAsked, r.GoodFailed, r.GoodSessions),
			Pass: r.TurnsAsked > 0 && r.TurnsAnswered == r.TurnsAsked && r.GoodFailed == 0},
	}
	for _, m := range r.Misbehaving {
		cs = append(cs, Criterion{Name: "misbehaving client cut off: " + m.Kind, Want: m.Want,
			Got:  fmt.Sprintf("%d of %d as documented", m.AsExpected, m.Clients),
			Pass: m.Clients > 0 && m.AsExpected == m.Clients})
	}
	return cs
}

// Pass reports whether every criterion passed.
func (r *SoakResult) Pass() bool {
	for _, c := range r.Criteria() {
		if !c.Pass {
			return false
		}
	}
	return true
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteSoakReport writes dir/soak.md (and dir/soak.json); note, if set,
// is said at the top (a short validation run, say).
func WriteSoakReport(dir string, r *SoakResult, note string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "soak.md"), SoakMarkdown(r, note), 0o644)
}

// SoakMarkdown renders r.
func SoakMarkdown(r *SoakResult, note string) []byte {
	var w bytes.Buffer
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&w, "# Soak: %s\n\n", verdict)
	if note != "" {
		fmt.Fprintf(&w, "> %s\n\n", note)
	}
	fmt.Fprintf(&w, "Written by `voiced bench soak --sessions %d --duration %v` (`make soak` runs it with SOAK_SESSIONS and SOAK_DURATION) on %s, commit %s.\n\n",
		r.Sessions, r.Duration, r.Date.UTC().Format("2006-01-02 15:04 UTC"), r.Commit)
	fmt.Fprintf(&w, "The real server (internal/server, default configuration) serves on 127.0.0.1; its clients run in a process of their own "+
		"(`voiced bench soak-clients`, on the same cores) and speak docs/protocol.md over real WebSocket connections. The real Silero VAD hears every session; speech recognition, "+
		"the model and speech synthesis are fast fakes (final transcript after %v, first token after %v then %.0f tokens/s, first audio after %v at RTF %.1f).\n\n",
		soakProfile.STTFinal, soakProfile.LLMFirst, soakProfile.TokensPerSecond, soakProfile.TTSFirst, soakProfile.TTSRTF)
	fmt.Fprintf(&w, "## Machine\n\n")
	fmt.Fprintf(&w, "- %s, %d cores, %s\n", r.CPU, r.Cores, r.GoVersion)
	fmt.Fprintf(&w, "- load average (1, 5, 15 min) at start: %s; at end: %s\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&w, "- CPU during the load: server process %.2f cores, client process %.2f cores (at nice %d)\n\n", r.CPU1, r.ClientCPU, r.ClientNice)

	fmt.Fprintf(&w, "## Parameters\n\n")
	fmt.Fprintf(&w, "- %d well-behaved sessions at all times for %v (ran %v): each waits for `ready`, speaks a %.1f s utterance in real time "+
		"(20 ms messages), streams silence until the answer has played to its end (`bot_stopped_speaking`), 1 to %d turns, "+
		"then sends `end`, expects close 1000 `end`, and is replaced at once\n",
		r.Sessions, r.Duration, r.Wall.Round(time.Second), r.Speech.Seconds(), r.Turns)
	fmt.Fprintf(&w, "- one misbehaving client of each kind below at any time, replaced 0.5 s after it is cut off\n")
	fmt.Fprintf(&w, "- server limits changed from the defaults: `max_sessions` %d, `max_sessions_per_addr` and `sessions_per_addr_rate` off (every client is 127.0.0.1), "+
		"load-aware admission off (lateness is measured here instead), `start_timeout` %v, `input_idle_timeout` %v (so that the clients that never speak are cut several times); "+
		"`input_max_ahead` is the default %v\n", r.Sessions+100, r.StartTimeout, r.InputIdleTimeout, r.InputMaxAhead)
	fmt.Fprintf(&w, "- input lateness is the server's own measurement, the one load-aware admission uses: how long each input frame waited at the turn detector "+
		"(session.Builder's lateness observer, reported per session through Builder.OnInputLateness)\n")
	fmt.Fprintf(&w, "- baseline: after 5 warm-up sessions, before the load; after: every client gone, no live session, then a full GC with the heap returned "+
		"(debug.FreeOSMemory) and glibc trimmed (cmem.TrimNow), re-measured once a second for up to 30 s while above the tolerance\n\n")

	fmt.Fprintf(&w, "## Criteria\n\n| criterion | want | got | |\n|---|---|---|---|\n")
	for _, c := range r.Criteria() {
		v := "**FAIL**"
		if c.Pass {
			v = "pass"
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s |\n", c.Name, c.Want, c.Got, v)
	}

	fmt.Fprintf(&w, "\n## Numbers\n\n| | baseline | peak (load) | after |\n|---|---|---|---|\n")
	fmt.Fprintf(&w, "| goroutines | %d | %d | %d |\n", r.Baseline.Goroutines, r.Peak.Goroutines, r.After.Goroutines)
	fmt.Fprintf(&w, "| RSS | %s | %s | %s |\n", mib(r.Baseline.RSS), mib(r.Peak.RSS), mib(r.After.RSS))
	fmt.Fprintf(&w, "| Go heap | %s | | %s |\n", mib(r.Baseline.Heap), mib(r.After.Heap))
	fmt.Fprintf(&w, "| live sessions | %d | %d | %d |\n\n", r.Baseline.Sessions, r.Peak.Sessions, r.After.Sessions)
	fmt.Fprintf(&w, "- well-behaved sessions: %d (%d failed); turns asked %d, answered %d\n", r.GoodSessions, r.GoodFailed, r.TurnsAsked, r.TurnsAnswered)
	if r.FirstFailure != "" {
		fmt.Fprintf(&w, "- first failure: %s\n", r.FirstFailure)
	}
	d := r.Lateness
	fmt.Fprintf(&w, "- input lateness p99 per session, over %d sessions (%d frames): median %v, p90 %v, worst %v; %d over %v\n",
		d.N, r.LateFrames, d.P50.Round(10*time.Microsecond), d.P90.Round(10*time.Microsecond), d.Max.Round(10*time.Microsecond), r.LateSessions, r.Limit)
	var lateFrames int
	for _, l := range r.LateSeconds {
		lateFrames += l.Frames
	}
	fmt.Fprintf(&w, "- frames over %v: %d, in %d of the load's seconds", r.Limit, lateFrames, len(r.LateSeconds))
	for i, l := range r.LateSeconds[:min(len(r.LateSeconds), 8)] {
		sep := ", "
		if i == 0 {
			sep = "; the most: "
		}
		fmt.Fprintf(&w, "%s%d at %d s", sep, l.Frames, l.At)
		if l.Steal > 0 {
			fmt.Fprintf(&w, " (steal %v)", l.Steal)
		}
	}
	if len(r.Traces) > 0 {
		fmt.Fprintf(&w, "\n- execution traces of the server process around late frames (flight recorder on: its cost is in these numbers): %s", strings.Join(r.Traces, ", "))
	}
	fmt.Fprintf(&w, "\n- the hypervisor took %.3f s of CPU per second from the machine over the load (steal, /proc/stat)", r.Steal)
	fmt.Fprintf(&w, "\n- the server process over the load: its threads waited for a CPU %.2f s per second; goroutines waited to run p99 %v, worst %v; "+
		"the Go collector used %.2f cores and stopped the world %d times, worst %v (runtime/metrics buckets); glibc trimmed %d times, %v in all, worst %v\n\n",
		r.Waiting, r.GoSched.P99, r.GoSched.Max, r.GCCPU, r.GCPause.N, r.GCPause.Max, r.Trims, r.TrimTime.Round(time.Millisecond), r.TrimWorst.Round(10*time.Microsecond))

	fmt.Fprintf(&w, "## Misbehaving clients\n\n| kind | does | documented | clients | as documented | longest | outcomes |\n|---|---|---|---|---|---|---|\n")
	for _, m := range r.Misbehaving {
		keys := make([]string, 0, len(m.Outcomes))
		for k := range m.Outcomes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var outs string
		for i, k := range keys {
			if i > 0 {
				outs += "<br>"
			}
			outs += fmt.Sprintf("%d× %s", m.Outcomes[k], k)
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %d | %d | %v | %s |\n", m.Kind, m.Does, m.Want, m.Clients, m.AsExpected, m.MaxTook.Round(100*time.Millisecond), outs)
	}
	return w.Bytes()
}
