package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
)

// script is one scripted answer of a fake synthesizer.
type script struct {
	chunks int           // chunks of audio before the end
	err    error         // returned after the chunks
	hang   bool          // block until ctx is done instead
	delay  time.Duration // before the first chunk
}

// fakeSyn emits chunks of its own marker value, as scripted per call (the
// last script repeats), and records what it was asked.
type fakeSyn struct {
	name   string
	rate   int
	mark   int16
	chunk  int
	script []script

	mu    sync.Mutex
	calls []string // "text|voice"
}

func (f *fakeSyn) Format() frame.Format { return frame.Format{SampleRate: f.rate, Channels: 1} }

func (f *fakeSyn) Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, text+"|"+voice)
	f.mu.Unlock()
	sc := f.script[min(n, len(f.script)-1)]
	if sc.delay > 0 {
		select {
		case <-time.After(sc.delay):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	for range sc.chunks {
		pcm := slices.Repeat([]int16{f.mark}, f.chunk)
		if err := emit(pcm); err != nil {
			return err
		}
	}
	if sc.hang {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	return sc.err
}

func (f *fakeSyn) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

var (
	errDropped = &provider.Error{Provider: "a", Op: "synthesize", Retryable: true, Err: errors.New("connection reset")}
	errBadKey  = &provider.Error{Provider: "a", Op: "synthesize", Status: 401, Err: errors.New("bad key")}
)

func speak(t *testing.T, s *Synthesizer, text string) ([]int16, error) {
	t.Helper()
	var out []int16
	err := s.Synthesize(context.Background(), text, "nova", func(p []int16) error {
		out = append(out, p...)
		return nil
	})
	return out, err
}

// runs describes out as marker×count runs: "1×480 2×960".
func runs(pcm []int16) string {
	var parts []string
	for i := 0; i < len(pcm); {
		j := i
		for j < len(pcm) && pcm[j] == pcm[i] {
			j++
		}
		parts = append(parts, fmt.Sprintf("%d×%d", pcm[i], j-i))
		i = j
	}
	return strings.Join(parts, " ")
}

func TestFailoverFromTheSentenceThatFailed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first script
		want  string
	}{
		{"before any audio", script{err: errDropped}, "2×1440"},
		{"mid-sentence", script{chunks: 2, err: errDropped}, "1×960 2×1440"},
		{"not retryable", script{err: errBadKey}, "2×1440"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &fakeSyn{name: "a", rate: 24000, mark: 1, chunk: 480, script: []script{tc.first, {chunks: 3}}}
			b := &fakeSyn{name: "b", rate: 24000, mark: 2, chunk: 480, script: []script{{chunks: 3}}}
			var logs bytes.Buffer
			s, err := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b, Voices: map[string]string{"nova": "b-nova"}})
			if err != nil {
				t.Fatal(err)
			}
			out, err := speak(t, s, "Your table is booked.")
			if err != nil {
				t.Fatal(err)
			}
			if got := runs(out); got != tc.want {
				t.Fatalf("audio %s, want %s", got, tc.want)
			}
			if got := b.Calls(); !slices.Equal(got, []string{"Your table is booked.|b-nova"}) {
				t.Fatalf("b was asked %q", got)
			}
			if !strings.Contains(logs.String(), "failing over") || !strings.Contains(logs.String(), "from=a to=b") {
				t.Errorf("log %q", logs.String())
			}
			// The next sentence goes to a again (no breaker).
			if out, _ := speak(t, s, "See you."); runs(out) != "1×1440" {
				t.Fatalf("next sentence %s", runs(out))
			}
		})
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeSyn{name: "a", rate: 16000, mark: 1, chunk: 320, script: []script{{err: errDropped}, {err: errDropped}, {chunks: 1}}}
		b := &fakeSyn{name: "b", rate: 16000, mark: 2, chunk: 320, script: []script{{chunks: 1}}}
		s, _ := New(Config{Retries: 2, Backoff: 100 * time.Millisecond}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
		start := time.Now()
		out, err := speak(t, s, "Hi.")
		if err != nil || runs(out) != "1×320" {
			t.Fatalf("%s %v", runs(out), err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Fatalf("waited %v, want 100ms + 200ms", d)
		}
		if len(b.Calls()) != 0 {
			t.Fatal("b asked although a's retry succeeded")
		}
		// A non-retryable failure is not retried.
		a.script = []script{{err: errBadKey}}
		a.calls = nil
		out, err = speak(t, s, "Hi.")
		if err != nil || runs(out) != "2×320" || len(a.Calls()) != 1 {
			t.Fatalf("%s %v, a called %d times", runs(out), err, len(a.Calls()))
		}
	})
}

func TestTimeoutMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeSyn{name: "a", rate: 16000, mark: 1, chunk: 320, script: []script{{chunks: 1, hang: true}}}
		b := &fakeSyn{name: "b", rate: 16000, mark: 2, chunk: 320, script: []script{{chunks: 1}}}
		s, _ := New(Config{Timeout: 2 * time.Second}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
		start := time.Now()
		out, err := speak(t, s, "Hi.")
		if err != nil || runs(out) != "1×320 2×320" {
			t.Fatalf("%s %v", runs(out), err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

func TestBreakerSkipsAFailingSynthesizer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeSyn{name: "a", rate: 16000, mark: 1, chunk: 320, script: []script{{err: errDropped}, {err: errDropped}, {chunks: 1}}}
		b := &fakeSyn{name: "b", rate: 16000, mark: 2, chunk: 320, script: []script{{chunks: 1}}}
		s, _ := New(Config{BreakerFailures: 2, BreakerCooldown: 10 * time.Second}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
		for range 4 {
			if out, err := speak(t, s, "Hi."); err != nil || runs(out) != "2×320" {
				t.Fatalf("%s %v", runs(out), err)
			}
		}
		if n := len(a.Calls()); n != 2 {
			t.Fatalf("a called %d times, want 2 (then its circuit is open)", n)
		}
		time.Sleep(10 * time.Second)
		if out, err := speak(t, s, "Hi."); err != nil || runs(out) != "1×320" {
			t.Fatalf("probe: %s %v", runs(out), err)
		}
	})
}

func TestCallerEndsTheSentence(t *testing.T) {
	a := &fakeSyn{name: "a", rate: 16000, mark: 1, chunk: 320, script: []script{{chunks: 3}}}
	b := &fakeSyn{name: "b", rate: 16000, mark: 2, chunk: 320, script: []script{{chunks: 3}}}
	s, _ := New(Config{}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
	full := errors.New("playout closed")
	if err := s.Synthesize(context.Background(), "Hi.", "", func([]int16) error { return full }); err != full {
		t.Fatalf("%v", err)
	}
	cause := errors.New("barge-in")
	ctx, cancel := context.WithCancelCause(context.Background())
	a.script = []script{{chunks: 1, hang: true}}
	err := s.Synthesize(ctx, "Hi.", "", func([]int16) error { cancel(cause); return nil })
	if err != cause {
		t.Fatalf("%v", err)
	}
	if len(b.Calls()) != 0 {
		t.Fatal("failed over on the caller's error")
	}
}

func TestAllFailed(t *testing.T) {
	a := &fakeSyn{name: "a", rate: 16000, mark: 1, chunk: 320, script: []script{{err: errDropped}}}
	b := &fakeSyn{name: "b", rate: 16000, mark: 2, chunk: 320, script: []script{{err: errBadKey}}}
	s, _ := New(Config{}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
	_, err := speak(t, s, "Hi.")
	if !errors.Is(err, ErrAllFailed) || !errors.Is(err, errDropped) || !errors.Is(err, errBadKey) {
		t.Fatalf("%v", err)
	}
}

func TestMembersAtOtherRatesAreResampled(t *testing.T) {
	a := &fakeSyn{name: "a", rate: 24000, mark: 1, chunk: 480, script: []script{{err: errDropped}}}
	b := &fakeSyn{name: "b", rate: 8000, mark: 2000, chunk: 160, script: []script{{chunks: 50}}} // 1 s
	s, err := New(Config{}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
	if err != nil {
		t.Fatal(err)
	}
	if s.Format().SampleRate != 24000 {
		t.Fatalf("%+v", s.Format())
	}
	out, err := speak(t, s, "Hi.")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 23900 || len(out) > 24600 {
		t.Fatalf("%d samples, want 1 s at 24 kHz", len(out))
	}
	if _, err := New(Config{}, Member{Name: "a", Synthesizer: a}, Member{Name: "odd", Synthesizer: &fakeSyn{rate: 12345}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("unconvertible rate: %v", err)
	}
	if _, err := New(Config{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no members: %v", err)
	}
}

type closingSyn struct {
	*fakeSyn
	closed int
}

func (c *closingSyn) Close() error { c.closed++; return nil }

func TestCloseClosesTheMembers(t *testing.T) {
	a := &closingSyn{fakeSyn: &fakeSyn{rate: 16000}}
	b := &fakeSyn{rate: 16000}
	s, _ := New(Config{}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
	if err := s.Close(); err != nil || a.closed != 1 {
		t.Fatalf("%v, closed %d", err, a.closed)
	}
}

// timedSyn is fakeSyn that reports one word per chunk, each lasting its
// chunk, from the start of its own audio.
type timedSyn struct{ fakeSyn }

func (f *timedSyn) SynthesizeWords(ctx context.Context, text, voice string, emit func([]int16) error, words func([]frame.Word)) error {
	per := f.Format().Duration(f.chunk)
	i := 0
	return f.Synthesize(ctx, text, voice, func(pcm []int16) error {
		words([]frame.Word{{Text: fmt.Sprint("w", i), Start: time.Duration(i) * per, End: time.Duration(i+1) * per}})
		i++
		return emit(pcm)
	})
}

// TestWordsAfterFailover: the words of a member that took over part-way
// through a sentence are moved past the audio the failed one emitted, and
// those the failed one reported are not reported again; a member without
// timings reports none.
func TestWordsAfterFailover(t *testing.T) {
	a := &timedSyn{fakeSyn{name: "a", rate: 16000, mark: 1, chunk: 1600, script: []script{{chunks: 3, err: errDropped}}}}
	b := &timedSyn{fakeSyn{name: "b", rate: 8000, mark: 2, chunk: 400, script: []script{{chunks: 5}}}}
	s, err := New(Config{}, Member{Name: "a", Synthesizer: a}, Member{Name: "b", Synthesizer: b})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.SynthesizeWords(context.Background(), "Hi.", "", func([]int16) error { return nil }, func(ws []frame.Word) {
		for _, w := range ws {
			got = append(got, fmt.Sprintf("%s %v-%v", w.Text, w.Start, w.End))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// a: three 100 ms chunks, then b's 50 ms chunks after its 300 ms,
	// from its fourth word.
	want := []string{"w0 0s-100ms", "w1 100ms-200ms", "w2 200ms-300ms", "w3 450ms-500ms", "w4 500ms-550ms"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("words %q, want %q", got, want)
	}

	plain := &fakeSyn{name: "c", rate: 16000, mark: 3, chunk: 160, script: []script{{chunks: 1}}}
	s, _ = New(Config{}, Member{Name: "c", Synthesizer: plain})
	err = s.SynthesizeWords(context.Background(), "Hi.", "", func([]int16) error { return nil }, func(ws []frame.Word) {
		t.Errorf("words %v from a synthesizer without timings", ws)
	})
	if err != nil {
		t.Fatal(err)
	}
}
