package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/testenv"
)

// TestMain lets a test run the soak's client process: with
// VOICED_BENCH_ARGS set, the test binary is `voiced bench` with those
// arguments.
func TestMain(m *testing.M) {
	if args := os.Getenv("VOICED_BENCH_ARGS"); args != "" {
		if err := Command(strings.Fields(args), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "voiced bench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSoakClients runs each of the soak's clients once against the real
// server (real Silero VAD, the soak's fakes), asking the server's side
// through the control API as the client process does: a well-behaved
// session is answered and ends cleanly with its lateness measured, and
// every misbehaving client is cut off as documented.
func TestSoakClients(t *testing.T) {
	testenv.RequireModels(t)
	speech := testenv.Speech(t, "Hello, what is the weather like today in Paris?")
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, stop, err := startSoak(SoakConfig{Sessions: 1, Speech: speech, StartTimeout: time.Second, InputIdleTimeout: 2 * time.Second, InputMaxAhead: 2 * time.Second,
		Logger: log, ServerLogger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s, err := newSoakClients(soakClientConfig{URL: srv.url, Control: srv.control, Sessions: 1, Turns: 2,
		TurnTimeout: 20 * time.Second, Limit: 20 * time.Millisecond, Speech: speechBytes(speech)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.good(ctx, 2, time.Time{})
	}()
	t.Run("misbehaving", func(t *testing.T) {
		for _, k := range misbehaviors {
			t.Run(k.name, func(t *testing.T) {
				t.Parallel()
				n := 1
				if k.name == "malformed" {
					n = len(malformed)
				}
				for i := range n {
					s.misbehave(ctx, k, i)
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				r := s.t.Misbehaving[k.name]
				if r == nil || r.Clients != n || r.AsExpected != n {
					t.Errorf("%s: %+v, want %d clients cut off as documented (%s)", k.name, r, n, k.want)
				}
			})
		}
	})
	t.Run("good", func(t *testing.T) {
		<-done
		r := s.tally()
		if r.GoodSessions != 1 || r.GoodFailed != 0 || r.TurnsAsked != 2 || r.TurnsAnswered != 2 {
			t.Errorf("well-behaved session: %d sessions, %d failed (%s), %d of %d turns answered, want 1, 0, 2 of 2",
				r.GoodSessions, r.GoodFailed, r.FirstFailure, r.TurnsAnswered, r.TurnsAsked)
		}
		if len(r.P99s) != 1 || r.LateFrames < 100 {
			t.Errorf("lateness: %d sessions, %d frames measured; want 1 session, one sample per 20 ms", len(r.P99s), r.LateFrames)
		}
	})
	n := 0
	srv.late.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d sessions' lateness still collected after their clients ended", n)
	}
	// The control API refuses what it cannot answer.
	if _, err := s.ctl.finish("no-such-session"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("finish of an unwatched session: %v, want 404", err)
	}
	if e := s.ctl.end("no-such-session", 0, false); e.Logged || e.Text != "" {
		t.Errorf("end of an unknown session: %+v, want not logged", e)
	}
}

// TestRunSoak runs a short soak end to end, its clients in their own
// process (this test binary, through TestMain): the tally crosses back,
// the client process's CPU is measured, and every turn is answered.
func TestRunSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 s soak")
	}
	testenv.RequireModels(t)
	speech := testenv.Speech(t, "Hello, what is the weather like today in Paris?")
	var clientLog bytes.Buffer
	// Every frame is "late" to a 1 ns limit: the flight recorder writes.
	traces := t.TempDir()
	r, err := RunSoak(context.Background(), SoakConfig{Sessions: 2, Duration: 6 * time.Second, Turns: 1, Speech: speech,
		StartTimeout: time.Second, InputIdleTimeout: 2 * time.Second, ClientLog: &clientLog, Limit: time.Nanosecond, TraceDir: traces})
	if err != nil {
		t.Fatalf("%v\nclient process: %s", err, clientLog.String())
	}
	if r.GoodSessions < 2 || r.GoodFailed != 0 || r.TurnsAsked < 2 || r.TurnsAnswered != r.TurnsAsked {
		t.Errorf("%d sessions, %d failed (%s), %d of %d turns answered; want ≥ 2 sessions, every turn answered",
			r.GoodSessions, r.GoodFailed, r.FirstFailure, r.TurnsAnswered, r.TurnsAsked)
	}
	if r.Lateness.N != r.GoodSessions || r.LateFrames < 100*r.GoodSessions {
		t.Errorf("lateness of %d sessions, %d frames; want every session's, one sample per 20 ms", r.Lateness.N, r.LateFrames)
	}
	if r.ClientCPU <= 0 || r.CPU1 <= 0 {
		t.Errorf("CPU: server %.3f, clients %.3f cores; want both measured", r.CPU1, r.ClientCPU)
	}
	kinds := map[string]bool{}
	for _, m := range r.Misbehaving {
		kinds[m.Kind] = m.Clients > 0
	}
	for _, k := range []string{"fast", "mute", "malformed"} { // the ones cut within 6 s
		if !kinds[k] {
			t.Errorf("no %s client ran: %+v", k, r.Misbehaving)
		}
	}
	if r.LateSessions != r.GoodSessions || len(r.LateSeconds) == 0 {
		t.Errorf("to a 1 ns limit %d of %d sessions were late, in %d seconds; want all, in some", r.LateSessions, r.GoodSessions, len(r.LateSeconds))
	}
	if len(r.Traces) == 0 {
		t.Error("no execution trace written")
	}
	for _, f := range r.Traces {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 || filepath.Dir(f) != traces {
			t.Errorf("trace %s: %v", f, err)
		}
	}
	if r.Baseline.RSS == 0 || r.After.RSS == 0 {
		t.Errorf("RSS not measured: baseline %d, after %d", r.Baseline.RSS, r.After.RSS)
	}
}

// TestSoakCriteria judges made-up results: each criterion fails on its
// own, at its bound.
func TestSoakCriteria(t *testing.T) {
	good := func() *SoakResult {
		return &SoakResult{Sessions: 200, Duration: 10 * time.Minute, Limit: 20 * time.Millisecond, Tolerance: 0.05,
			Baseline: Snapshot{Goroutines: 100, RSS: 200 << 20}, After: Snapshot{Goroutines: 105, RSS: 210 << 20},
			GoodSessions: 4000, TurnsAsked: 8000, TurnsAnswered: 8000,
			Lateness: Dist{N: 4000, P50: time.Millisecond, Max: 20 * time.Millisecond},
			Misbehaving: []MisbehaviorResult{{Kind: "fast", Want: "too_fast", Clients: 40, AsExpected: 40,
				Outcomes: map[string]int{"error too_fast, close 1008; server: too_fast": 40}}}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(r *SoakResult)
		fails string // the criterion that fails ("": none)
	}{
		{name: "at every bound", edit: func(*SoakResult) {}},
		{name: "goroutines", edit: func(r *SoakResult) { r.After.Goroutines = 106 }, fails: "goroutines back to baseline"},
		{name: "rss", edit: func(r *SoakResult) { r.After.RSS = 210<<20 + 1 }, fails: "RSS back to baseline"},
		{name: "no baseline", edit: func(r *SoakResult) { r.Baseline.RSS = 0 }, fails: "RSS back to baseline"},
		{name: "late session", edit: func(r *SoakResult) { r.LateSessions, r.Lateness.Max = 1, 21*time.Millisecond },
			fails: "input lateness p99 of every well-behaved session"},
		{name: "nothing measured", edit: func(r *SoakResult) { r.Lateness = Dist{} }, fails: "input lateness p99 of every well-behaved session"},
		{name: "lost turn", edit: func(r *SoakResult) { r.TurnsAnswered-- }, fails: "every turn answered"},
		{name: "failed session", edit: func(r *SoakResult) { r.GoodFailed = 1 }, fails: "every turn answered"},
		{name: "no turns", edit: func(r *SoakResult) { r.TurnsAsked, r.TurnsAnswered = 0, 0 }, fails: "every turn answered"},
		{name: "bad client not cut", edit: func(r *SoakResult) { r.Misbehaving[0].AsExpected-- }, fails: "misbehaving client cut off: fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(r)
			var failed []string
			for _, c := range r.Criteria() {
				if !c.Pass {
					failed = append(failed, c.Name)
				}
			}
			want := []string(nil)
			if tc.fails != "" {
				want = []string{tc.fails}
			}
			if !slices.Equal(failed, want) {
				t.Errorf("failed %q, want %q", failed, want)
			}
			if r.Pass() != (tc.fails == "") {
				t.Errorf("Pass() = %v", r.Pass())
			}
			md := string(SoakMarkdown(r, "a validation run"))
			head := "# Soak: PASS"
			if tc.fails != "" {
				head = "# Soak: FAIL"
			}
			if !strings.HasPrefix(md, head+"\n") || !strings.Contains(md, "> a validation run") {
				t.Errorf("report begins %q, want %q and the note", md[:min(len(md), 60)], head)
			}
			if tc.fails != "" && !strings.Contains(md, "| "+tc.fails+" |") {
				t.Errorf("report has no row for %q", tc.fails)
			}
		})
	}
}

// TestWriteSoakReport writes soak.md and soak.json, which reads back.
func TestWriteSoakReport(t *testing.T) {
	dir := t.TempDir()
	r := &SoakResult{Sessions: 3, Duration: time.Minute, Limit: 20 * time.Millisecond, Tolerance: 0.05, TurnsAsked: 2, TurnsAnswered: 1}
	if err := WriteSoakReport(dir, r, ""); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "soak.md"))
	if err != nil || !strings.Contains(string(md), "1 of 2 turns") {
		t.Errorf("soak.md: %v\n%s", err, md)
	}
	b, err := os.ReadFile(filepath.Join(dir, "soak.json"))
	var back SoakResult
	if err != nil || json.Unmarshal(b, &back) != nil || back.TurnsAsked != 2 || back.Duration != time.Minute {
		t.Errorf("soak.json: %v\n%s", err, b)
	}
}

// TestHistSince: the counts added between two readings of a runtime
// histogram are summarized at their buckets' upper bounds.
func TestHistSince(t *testing.T) {
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	h0 := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{5, 5, 5, 5}}
	h := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{5 + 90, 5 + 9, 5 + 1, 5 + 2}}
	d := histSince(h, h0)
	if d.N != 102 || d.P50 != time.Millisecond || d.P90 != 10*time.Millisecond || d.P99 != 100*time.Millisecond || d.Max != 100*time.Millisecond {
		t.Errorf("got %+v; want 102 counts, p50 1ms, p90 10ms, p99 and max 100ms (the last bucket is open: its lower bound)", d)
	}
	if d := histSince(h0, h0); d.N != 0 {
		t.Errorf("nothing added: %+v", d)
	}
	if d := histSince(h, nil); d.N != 0 {
		t.Errorf("no first reading: %+v", d)
	}
}
