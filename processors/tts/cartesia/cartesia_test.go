package cartesia

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/tts/cartesia/cartesiatest"
)

func newSynth(t *testing.T, srv *cartesiatest.Server, cfg Config) *Synthesizer {
	t.Helper()
	t.Setenv("VOICED_TEST_CARTESIA_KEY", "ca-test")
	cfg.BaseURL = srv.URL
	cfg.APIKeyEnv = "VOICED_TEST_CARTESIA_KEY"
	if cfg.Voice == "" {
		cfg.Voice = "voice-1"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSynthesizeWithWordTimestamps(t *testing.T) {
	srv := cartesiatest.New(t, cartesiatest.Config{Key: "ca-test", Model: "sonic-turbo", Voices: []string{"voice-1", "voice-2"}})
	s := newSynth(t, srv, Config{Model: "sonic-turbo", SampleRate: 16000})
	var pcm []int16
	var words []string
	err := s.SynthesizeTimed(context.Background(), "Your table is booked for eight.", "voice-2",
		func(p []int16) error { pcm = append(pcm, p...); return nil },
		func(w Words) {
			if len(w.Start) != len(w.Words) || len(w.End) != len(w.Words) {
				t.Errorf("timestamps %+v", w)
			}
			words = append(words, w.Words...)
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(words, " "); got != "Your table is booked for eight." {
		t.Fatalf("timed words %q", got)
	}
	if secs := float64(len(pcm)) / 16000; secs < 3.2 || secs > 3.4 {
		t.Fatalf("%.2f s", secs)
	}
	if db := audio.DBFS(pcm); db < -40 {
		t.Fatalf("%.1f dBFS", db)
	}
	r := srv.Requests()
	if len(r) != 1 || r[0].Voice != "voice-2" || r[0].SampleRate != 16000 || r[0].Language != "en" {
		t.Fatalf("%+v", r)
	}
}

// TestSynthesizeWords: Cartesia's word timestamps, in seconds from the
// context's start, are the sentence's word timings.
func TestSynthesizeWords(t *testing.T) {
	srv := cartesiatest.New(t, cartesiatest.Config{})
	s := newSynth(t, srv, Config{})
	var got []frame.Word
	err := s.SynthesizeWords(context.Background(), "Your table for four is booked at eight tonight.", "",
		func([]int16) error { return nil }, func(ws []frame.Word) { got = append(got, ws...) })
	if err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()
	if len(r) != 1 || len(r[0].Timestamps.Words) != 9 {
		t.Fatalf("requests %+v", r)
	}
	var want []frame.Word
	ts := r[0].Timestamps
	for i, w := range ts.Words {
		want = append(want, frame.Word{Text: w, Start: time.Duration(ts.Start[i] * float64(time.Second)), End: time.Duration(ts.End[i] * float64(time.Second))})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("words\n%v, want\n%v", got, want)
	}
}

// Sentences of many sessions share one connection as separate contexts.
func TestConcurrentSentencesShareOneConnection(t *testing.T) {
	srv := cartesiatest.New(t, cartesiatest.Config{ChunkEvery: 5 * time.Millisecond})
	s := newSynth(t, srv, Config{})
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	lens := make([]int, 4)
	for i := range lens {
		wg.Go(func() {
			err := s.Synthesize(context.Background(), "Sentence number "+string(rune('A'+i))+".", "", func(p []int16) error {
				lens[i] += len(p)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, n := range lens {
		if n < 24000*3 {
			t.Errorf("sentence %d: %d samples", i, n)
		}
	}
	if n := srv.Conns(); n != 1 {
		t.Fatalf("%d connections", n)
	}
}

func TestCancelCancelsTheContext(t *testing.T) {
	srv := cartesiatest.New(t, cartesiatest.Config{ChunkEvery: 20 * time.Millisecond})
	s := newSynth(t, srv, Config{})
	cause := errors.New("barge-in")
	ctx, cancel := context.WithCancelCause(context.Background())
	err := s.Synthesize(ctx, "Hello there.", "", func([]int16) error { cancel(cause); return nil })
	if err != cause {
		t.Fatalf("%v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !srv.Requests()[0].Cancelled {
		if time.Now().After(deadline) {
			t.Fatal("the server was not told to cancel")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The connection carries on.
	if err := s.Synthesize(context.Background(), "Again.", "", func([]int16) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestSynthesizeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     cartesiatest.Fault
		status    int
		retryable bool
		want      string
	}{
		{"refused", cartesiatest.Fault{Status: 429}, 429, true, ""},
		{"unauthorized", cartesiatest.Fault{Status: 401}, 401, false, ""},
		{"context error 500", cartesiatest.Fault{Error: 500}, 500, true, ""},
		{"context error 400", cartesiatest.Fault{Error: 400}, 400, false, ""},
		{"dropped", cartesiatest.Fault{DropAfter: 3}, 0, true, "connection lost"},
		{"malformed", cartesiatest.Fault{Malformed: true}, 0, true, "protocol error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := cartesiatest.New(t, cartesiatest.Config{})
			srv.Push(tc.fault)
			s := newSynth(t, srv, Config{})
			err := s.Synthesize(context.Background(), "Hello.", "", func([]int16) error { return nil })
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Provider != "cartesia" || pe.Status != tc.status || pe.Retryable != tc.retryable || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v (%+v)", err, pe)
			}
			// The next sentence works (on a new connection when it broke).
			if err := s.Synthesize(context.Background(), "Again.", "", func([]int16) error { return nil }); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	t.Setenv("CARTESIA_API_KEY", "")
	err := Config{Voice: "v"}.Validate()
	if !errors.Is(err, provider.ErrMissingKey) || !strings.Contains(err.Error(), "CARTESIA_API_KEY") {
		t.Fatalf("%v", err)
	}
	t.Setenv("CARTESIA_API_KEY", "k")
	for _, c := range []Config{{}, {Voice: "v", SampleRate: 7}, {Voice: "v", BaseURL: "http://x"}} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"type":"chunk","context_id":"voiced-1","data":"AAABAA==","done":false,"status_code":206}`))
	f.Add([]byte(`{"type":"timestamps","context_id":"voiced-1","word_timestamps":{"words":["Hi"],"start":[0],"end":[0.2]}}`))
	f.Add([]byte(`{"type":"error","context_id":"voiced-1","status_code":429,"error":"slow down"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parse(b)
		if err != nil {
			return
		}
		if m.ContextID == "" {
			t.Fatal("message without a context accepted")
		}
		if pcm, err := chunk(m, nil); err == nil && len(m.Data) == 0 && len(pcm) != 0 {
			t.Fatal("audio from nothing")
		}
	})
}
