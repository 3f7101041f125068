package deepgram

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/stt/deepgram/deepgramtest"
)

func newRec(t *testing.T, srv *deepgramtest.Server, cfg Config) *Recognizer {
	t.Helper()
	t.Setenv("VOICED_TEST_DG_KEY", "dg-test")
	cfg.BaseURL = srv.URL
	cfg.APIKeyEnv = "VOICED_TEST_DG_KEY"
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// utter streams ms of audio in 20 ms frames, finishes, and collects the
// results until the stream ends.
func utter(t *testing.T, r *Recognizer, ms int) ([]stt.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	type out struct {
		rs  []stt.Result
		err error
	}
	got := make(chan out, 1)
	go func() {
		var rs []stt.Result
		for {
			res, err := s.Recv(ctx)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				got <- out{rs, err}
				return
			}
			rs = append(rs, res)
		}
	}()
	for i := range ms / 20 {
		pcm := slices.Repeat([]int16{int16(i)}, 320)
		if err := s.Send(ctx, pcm); err != nil {
			s.Close()
			o := <-got
			return o.rs, err
		}
	}
	if err := s.Finish(ctx); err != nil {
		s.Close()
		o := <-got
		return o.rs, err
	}
	o := <-got
	return o.rs, o.err
}

func TestRecognizeStreamsInterimAndFinalResults(t *testing.T) {
	srv := deepgramtest.New(t, deepgramtest.Config{Key: "dg-test", Model: "nova-2", Language: "fr", Transcript: "bonjour je voudrais réserver une table pour deux"})
	r := newRec(t, srv, Config{Model: "nova-2", Language: "fr", SmartFormat: true, Warm: -1})
	rs, err := utter(t, r, 1000) // 1 s: 6 of the 8 words
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, res := range rs {
		texts = append(texts, res.Text)
	}
	want := []string{
		"bonjour", "bonjour je", "bonjour je voudrais",
		"bonjour je voudrais réserver", // is_final segment
		"bonjour je voudrais réserver une", "bonjour je voudrais réserver une table",
		"bonjour je voudrais réserver une table pour deux", // from_finalize
	}
	if !slices.Equal(texts, want) {
		t.Fatalf("results\n%q\nwant\n%q", texts, want)
	}
	for i, res := range rs {
		if res.Final != (i == len(rs)-1) {
			t.Fatalf("result %d final=%v", i, res.Final)
		}
	}
	c := srv.Conns()
	if len(c) != 1 || c[0].Samples != 16000 || c[0].Finalizes != 1 || c[0].Query["smart_format"] != "true" || c[0].Query["vad_events"] != "true" {
		t.Fatalf("server saw %+v", c)
	}
	waitFor(t, func() bool { return srv.Conns()[0].CloseStream })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
	}
}

func TestWarmConnectionIsKeptAlive(t *testing.T) {
	srv := deepgramtest.New(t, deepgramtest.Config{})
	r := newRec(t, srv, Config{KeepAlive: 20 * time.Millisecond})
	if _, err := utter(t, r, 400); err != nil {
		t.Fatal(err)
	}
	// The next connection was dialed ahead and is kept alive.
	waitFor(t, func() bool { c := srv.Conns(); return len(c) == 2 && c[1].KeepAlives >= 2 })
	rs, err := utter(t, r, 400)
	if err != nil || !rs[len(rs)-1].Final {
		t.Fatalf("%+v %v", rs, err)
	}
	c := srv.Conns()
	if c[1].Samples != 6400 || c[1].Finalizes != 1 {
		t.Fatalf("the second utterance did not use the warm connection: %+v", c)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecognizeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     deepgramtest.Fault
		status    int
		retryable bool
		want      string
	}{
		{"rate limited", deepgramtest.Fault{Status: 429}, 429, true, ""},
		{"unauthorized", deepgramtest.Fault{Status: 401}, 401, false, ""},
		{"dropped", deepgramtest.Fault{DropAfter: 4800}, 0, true, ""}, // on Send or Recv
		{"malformed", deepgramtest.Fault{Malformed: true}, 0, true, "protocol error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := deepgramtest.New(t, deepgramtest.Config{})
			srv.Push(tc.fault)
			var st provider.Stats
			r := newRec(t, srv, Config{Warm: -1, Observer: &st})
			_, err := utter(t, r, 1000)
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if pe.Provider != "deepgram" || pe.Status != tc.status || pe.Retryable != tc.retryable || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: %+v", err, pe)
			}
			if rs, err := utter(t, r, 400); err != nil || !rs[len(rs)-1].Final {
				t.Fatalf("after the fault: %+v %v", rs, err)
			}
			if got := st.Get(provider.CallInfo{Provider: "deepgram", Op: "recognize", Model: "nova-3"}); got.Calls != 2 || got.Errors != 1 {
				t.Fatalf("observed %+v", got)
			}
		})
	}
}

func TestCloseBeforeTheFinal(t *testing.T) {
	srv := deepgramtest.New(t, deepgramtest.Config{})
	srv.Push(deepgramtest.Fault{Mute: true})
	r := newRec(t, srv, Config{Warm: -1})
	ctx := context.Background()
	s, err := r.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(ctx, make([]int16, 3200))
	s.Finish(ctx)
	got := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Recv(ctx); err != nil {
				got <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	if err := <-got; !errors.Is(err, stt.ErrClosed) {
		t.Fatalf("%v", err)
	}
	if err := s.Send(ctx, []int16{1}); !errors.Is(err, stt.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Setenv("DEEPGRAM_API_KEY", "")
	err := Config{}.Validate()
	if !errors.Is(err, provider.ErrMissingKey) || !strings.Contains(err.Error(), "DEEPGRAM_API_KEY") {
		t.Fatalf("%v", err)
	}
	t.Setenv("DEEPGRAM_API_KEY", "k")
	for _, c := range []Config{
		{BaseURL: "https://api.deepgram.com/v1/listen"},
		{SampleRate: 7},
		{UtteranceEnd: 500 * time.Millisecond},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzMessage(f *testing.F) {
	f.Add([]byte(`{"type":"Results","is_final":true,"channel":{"alternatives":[{"transcript":"hi"}]}}`))
	f.Add([]byte(`{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &stream{wake: make(chan struct{})}
		var m message
		if json.Unmarshal(b, &m) == nil {
			s.handle(m)
		}
	})
}
