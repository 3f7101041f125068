package openai

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
)

const speechPath = "/v1/audio/speech"

func newSynth(t *testing.T, srv *openaitest.Server, cfg Config) *Synthesizer {
	t.Helper()
	t.Setenv("VOICED_TEST_TTS_KEY", "sk-test")
	cfg.BaseURL = srv.URL
	cfg.APIKeyEnv = "VOICED_TEST_TTS_KEY"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func collect(ctx context.Context, s *Synthesizer, text, voice string) ([]int16, error) {
	var pcm []int16
	err := s.Synthesize(ctx, text, voice, func(p []int16) error {
		pcm = append(pcm, p...)
		return nil
	})
	return pcm, err
}

func TestSynthesizeEachFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		rate   int
	}{
		{"mp3", 24000}, {"wav", 24000}, {"pcm", 24000},
		{"mp3", 16000}, {"wav", 48000},
	} {
		t.Run(tc.format+"/"+string(rune('0'+tc.rate/8000)), func(t *testing.T) {
			srv := openaitest.New(t, openaitest.Config{Key: "sk-test", TTSModel: "gpt-4o-mini-tts", Voices: []string{"nova", "onyx"}})
			s := newSynth(t, srv, Config{Model: "gpt-4o-mini-tts", Voice: "nova", Format: tc.format, SampleRate: tc.rate})
			if f := s.Format(); f.SampleRate != tc.rate || f.Channels != 1 {
				t.Fatalf("format %+v", f)
			}
			pcm, err := collect(context.Background(), s, "Hello there.", "onyx")
			if err != nil {
				t.Fatal(err)
			}
			secs := float64(len(pcm)) / float64(tc.rate)
			if secs < 3.25 || secs > 3.5 {
				t.Errorf("%.3f s of audio, want the 3.29 s served", secs)
			}
			if db := audio.DBFS(pcm); db < -40 || db > -3 {
				t.Errorf("level %.1f dBFS", db)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Voice != "onyx" || reqs[0].Format != tc.format || reqs[0].Input != "Hello there." {
				t.Fatalf("requests %+v", reqs)
			}
		})
	}
}

func TestSynthesizeDefaultVoice(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{Voices: []string{"alloy"}})
	s := newSynth(t, srv, Config{Format: "pcm"})
	if _, err := collect(context.Background(), s, "Hi.", ""); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests(); r[0].Voice != "alloy" || r[0].Model != "tts-1" {
		t.Fatalf("%+v", r[0])
	}
}

func TestSynthesizeStreamsMP3BeforeTheBodyEnds(t *testing.T) {
	// 13440 bytes in 1 KiB chunks every 100 ms: the body takes 1.3 s.
	srv := openaitest.New(t, openaitest.Config{Chunk: 1024, ChunkEvery: 100 * time.Millisecond})
	s := newSynth(t, srv, Config{Format: "mp3"})
	start := time.Now()
	var first time.Duration
	err := s.Synthesize(context.Background(), "Hello.", "", func(p []int16) error {
		if first == 0 {
			first = time.Since(start)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	if total < 1200*time.Millisecond {
		t.Fatalf("body took %v, the pacing did not happen", total)
	}
	if first > total/2 {
		t.Fatalf("first audio after %v of %v: not streamed", first, total)
	}
}

func TestSynthesizeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		format    string
		fault     openaitest.Fault
		status    int
		retryable bool
		audio     bool // some audio before the failure
		want      string
	}{
		{"rate limited", "mp3", openaitest.Fault{Status: 429}, 429, true, false, ""},
		{"server error", "pcm", openaitest.Fault{Status: 503}, 503, true, false, ""},
		{"unauthorized", "mp3", openaitest.Fault{Status: 401}, 401, false, false, ""},
		{"slow first byte", "mp3", openaitest.Fault{FirstByte: 5 * time.Second}, 0, true, false, "first-byte timeout"},
		{"dropped mp3", "mp3", openaitest.Fault{DropAfter: 6000}, 0, true, true, ""},
		{"dropped pcm", "pcm", openaitest.Fault{DropAfter: 40001}, 0, true, true, ""},
		{"dropped wav", "wav", openaitest.Fault{DropAfter: 30000}, 0, true, true, ""},
		{"malformed mp3", "mp3", openaitest.Fault{Malformed: true}, 0, true, false, "malformed"},
		{"malformed wav", "wav", openaitest.Fault{Malformed: true}, 0, true, false, "not a WAV"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.New(t, openaitest.Config{})
			srv.Push(speechPath, tc.fault)
			s := newSynth(t, srv, Config{Format: tc.format, FirstByteTimeout: time.Second})
			pcm, err := collect(context.Background(), s, "Hello.", "")
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want *provider.Error", err, err)
			}
			if pe.Provider != "openai" || pe.Op != "synthesize" || pe.Status != tc.status || pe.Retryable != tc.retryable {
				t.Fatalf("%+v", pe)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q in it", err, tc.want)
			}
			if (len(pcm) > 0) != tc.audio {
				t.Errorf("%d samples before the failure", len(pcm))
			}
			// The next call works: the fault was for one request.
			if _, err := collect(context.Background(), s, "Again.", ""); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

func TestSynthesizeStopsOnCancel(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{Chunk: 1024, ChunkEvery: 50 * time.Millisecond})
	s := newSynth(t, srv, Config{Format: "mp3"})
	cause := errors.New("barge-in")
	ctx, cancel := context.WithCancelCause(context.Background())
	n := 0
	err := s.Synthesize(ctx, "Hello.", "", func(p []int16) error {
		if n++; n == 2 {
			cancel(cause)
		}
		return nil
	})
	if err != cause {
		t.Fatalf("error %v, want the cancellation cause", err)
	}
	if provider.IsRetryable(err) {
		t.Fatal("a cancelled call is retryable")
	}
}

func TestSynthesizeReturnsEmitsError(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{})
	s := newSynth(t, srv, Config{Format: "pcm"})
	stop := errors.New("full")
	if err := s.Synthesize(context.Background(), "Hello.", "", func([]int16) error { return stop }); err != stop {
		t.Fatalf("%v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	err := Config{}.Validate()
	if !errors.Is(err, provider.ErrMissingKey) || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	if err := (Config{BaseURL: "http://127.0.0.1:8880/v1"}).Validate(); err != nil {
		t.Fatalf("keyless self-hosted server: %v", err)
	}
	for _, c := range []Config{
		{BaseURL: "http://x/v1", Format: "ogg"},
		{BaseURL: "http://x/v1", SampleRate: 12345},
		{BaseURL: "http://x/v1", Speed: 9},
		{BaseURL: "ftp://x"},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestObserverSeesEveryCall(t *testing.T) {
	srv := openaitest.New(t, openaitest.Config{})
	srv.Push(speechPath, openaitest.Fault{Status: 500})
	var st provider.Stats
	s := newSynth(t, srv, Config{Format: "pcm", Observer: &st})
	collect(context.Background(), s, "One.", "")
	collect(context.Background(), s, "Two.", "")
	got := st.Get(provider.CallInfo{Provider: "openai", Op: "synthesize", Model: "tts-1"})
	if got.Calls != 2 || got.Errors != 1 || got.Retryable != 1 || got.FirstResult <= 0 {
		t.Fatalf("%+v", got)
	}
}

func FuzzReadWAVHeader(f *testing.F) {
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\xc0\x5d\x00\x00\x80\xbb\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff\x01\x02"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVELIST\x04\x00\x00\x00abcd"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &reader{body: strings.NewReader(string(b)), format: "wav"}
		buf := make([]int16, 64)
		for range 1000 {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	})
}
