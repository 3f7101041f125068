package openai

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/pipelinetest"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
	"github.com/voiced-dev/voiced/processors/stt"
)

const transcriptionsPath = "/v1/audio/transcriptions"

// speech16k is the fake's speech at 16 kHz: a real utterance to upload.
func speech16k(t testing.TB) []int16 {
	r, err := audio.NewResampler(openaitest.SpeechRate, 16000)
	if err != nil {
		t.Fatal(err)
	}
	return r.Flush(r.Process(nil, openaitest.Speech()))
}

func newRec(t *testing.T, srv *openaitest.Server, cfg Config) *Recognizer {
	t.Helper()
	t.Setenv("VOICED_TEST_STT_KEY", "sk-stt")
	cfg.BaseURL = srv.URL
	cfg.APIKeyEnv = "VOICED_TEST_STT_KEY"
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// utter sends pcm in 20 ms pieces, finishes and returns the results.
func utter(t *testing.T, r *Recognizer, pcm []int16) (stt.Result, error) {
	t.Helper()
	ctx := context.Background()
	s, err := r.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for c := range slices.Chunk(pcm, 320) {
		if err := s.Send(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := s.Recv(ctx)
	if err != nil {
		return res, err
	}
	if _, eof := s.Recv(ctx); eof != io.EOF {
		t.Fatalf("after the final: %v, want io.EOF", eof)
	}
	return res, nil
}

func TestTranscribeUploadsTheUtterance(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{Key: "sk-stt", STTModel: "whisper-large-v3", Language: "en", Transcript: "hello this is a test"})
	r := newRec(t, srv, Config{Model: "whisper-large-v3", Language: "en"})
	if r.Format() != frame.Mono16k {
		t.Fatalf("format %+v", r.Format())
	}
	pcm := speech16k(t)
	res, err := utter(t, r, pcm)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "hello this is a test" || !res.Final || res.Spotted != nil {
		t.Fatalf("result %+v", res)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Format != "json" || !slices.Equal(reqs[0].Audio, pcm) {
		t.Fatalf("%d requests; audio sent %d samples, received %d", len(reqs), len(pcm), len(reqs[0].Audio))
	}
}

func TestShortUtteranceNeedsNoRequest(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{})
	r := newRec(t, srv, Config{})
	res, err := utter(t, r, make([]int16, 800)) // 50 ms
	if err != nil || !reflect.DeepEqual(res, stt.Result{Final: true}) {
		t.Fatalf("%+v %v", res, err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestTranscribeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     openaitest.Fault
		status    int
		retryable bool
		want      string
	}{
		{"rate limited", openaitest.Fault{Status: 429}, 429, true, ""},
		{"server error", openaitest.Fault{Status: 500}, 500, true, ""},
		{"unauthorized", openaitest.Fault{Status: 401}, 401, false, ""},
		{"slow", openaitest.Fault{FirstByte: 5 * time.Second}, 0, true, "timeout"},
		{"malformed", openaitest.Fault{Malformed: true}, 0, true, ""},
		{"dropped", openaitest.Fault{DropAfter: 5}, 0, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.New(t, openaitest.Config{})
			srv.Push(transcriptionsPath, tc.fault)
			var st provider.Stats
			r := newRec(t, srv, Config{Timeout: time.Second, Observer: &st})
			_, err := utter(t, r, speech16k(t))
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if pe.Provider != "openai" || pe.Op != "transcribe" || pe.Status != tc.status || pe.Retryable != tc.retryable {
				t.Fatalf("%+v", pe)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q lacks %q", err, tc.want)
			}
			if res, err := utter(t, r, speech16k(t)); err != nil || res.Text == "" {
				t.Fatalf("after the fault: %+v %v", res, err)
			}
			if got := st.Get(provider.CallInfo{Provider: "openai", Op: "transcribe", Model: "whisper-1"}); got.Calls != 2 || got.Errors != 1 {
				t.Fatalf("observed %+v", got)
			}
		})
	}
}

func TestCloseAbandonsTheUpload(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{})
	srv.Push(transcriptionsPath, openaitest.Fault{FirstByte: 10 * time.Second})
	r := newRec(t, srv, Config{})
	ctx := context.Background()
	s, _ := r.Open(ctx)
	s.Send(ctx, speech16k(t))
	s.Finish(ctx)
	got := make(chan error, 1)
	go func() { _, err := s.Recv(ctx); got <- err }()
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-got; err == nil {
		t.Fatal("Recv after Close gave a result")
	}
	if err := s.Send(ctx, []int16{1}); !errors.Is(err, stt.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWakesAnUnfinishedStream(t *testing.T) {
	r := &Recognizer{cfg: Config{SampleRate: 16000, MaxUtterance: time.Minute}}
	s, _ := r.Open(context.Background())
	got := make(chan error, 1)
	go func() { _, err := s.Recv(context.Background()); got <- err }()
	s.Close()
	if err := <-got; !errors.Is(err, stt.ErrClosed) {
		t.Fatalf("%v", err)
	}
}

func TestSendRefusesAudioPastMaxUtterance(t *testing.T) {
	r := &Recognizer{cfg: Config{SampleRate: 16000, MaxUtterance: time.Second}}
	s, _ := r.Open(context.Background())
	defer s.Close()
	if err := s.Send(context.Background(), make([]int16, 16000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), make([]int16, 1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("%v", err)
	}
}

// The stt stage drives the final-only recognizer: one final transcript per
// utterance, after UserStoppedSpeaking, and none before.
func TestProcessorWithFinalOnlyRecognizer(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{Transcript: "book a table for two"})
	r := newRec(t, srv, Config{})
	var out pipelinetest.Recorder
	p := pipeline.New(pipeline.Options{Sink: out.Sink}, stt.NewProcessor(r, stt.ProcessorConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	push := func(f frame.Frame) {
		if err := p.Push(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	pcm := speech16k(t)
	push(&frame.InputAudio{Format: frame.Mono16k, Samples: make([]int16, 3200)}) // pre-roll
	push(&frame.UserStartedSpeaking{})
	for c := range slices.Chunk(pcm, 320) {
		push(&frame.InputAudio{Format: frame.Mono16k, Samples: c})
	}
	push(&frame.UserStoppedSpeaking{At: time.Now()})
	push(&frame.End{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ts := pipelinetest.Find[*frame.Transcript](&out)
	if len(ts) != 1 || !ts[0].Final || ts[0].Text != "book a table for two" {
		t.Fatalf("transcripts %+v", ts)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || len(reqs[0].Audio) != 3200+len(pcm) {
		t.Fatalf("uploaded %d samples, want the pre-roll and the utterance (%d)", len(reqs[0].Audio), 3200+len(pcm))
	}
}

func TestConfigValidation(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	err := Config{}.Validate()
	if !errors.Is(err, provider.ErrMissingKey) || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	if err := (Config{BaseURL: "http://127.0.0.1:8000/v1"}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{BaseURL: "http://x/v1", SampleRate: 7}, {BaseURL: "x"}, {BaseURL: "http://x/v1", Timeout: -1}} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestServerDelayIsTheTranscriptLatency(t *testing.T) {
	srv := openaitest.Start(openaitest.Config{TranscribeDelay: 300 * time.Millisecond}, func(err error) { t.Error(err) })
	defer srv.Close()
	r := newRec(t, srv, Config{})
	start := time.Now()
	if _, err := utter(t, r, speech16k(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("transcript after %v, want the server's 300 ms", d)
	}
}
