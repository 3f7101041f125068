package elevenlabs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs/elevenlabstest"
)

func newSynth(t *testing.T, srv *elevenlabstest.Server, cfg Config) *Synthesizer {
	t.Helper()
	t.Setenv("VOICED_TEST_XI_KEY", "xi-test")
	cfg.BaseURL = srv.URL
	cfg.APIKeyEnv = "VOICED_TEST_XI_KEY"
	if cfg.Voice == "" {
		cfg.Voice = "voice-rachel"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSynthesizeWithAlignment(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{Key: "xi-test", Model: "eleven_turbo_v2_5", Voices: []string{"voice-rachel", "voice-adam"}})
	s := newSynth(t, srv, Config{Model: "eleven_turbo_v2_5", SampleRate: 16000, Warm: new(bool)})
	var pcm []int16
	var chars strings.Builder
	err := s.SynthesizeAligned(context.Background(), "Your table is booked.", "voice-adam", func(p []int16, a *Alignment) error {
		pcm = append(pcm, p...)
		if a == nil {
			t.Fatal("chunk without alignment")
		}
		lastStart := -1 // each chunk's times start from the chunk's start
		for i, c := range a.Chars {
			chars.WriteString(c)
			if a.StartMs[i] < lastStart {
				t.Fatalf("alignment goes back in time: %v", a.StartMs)
			}
			lastStart = a.StartMs[i]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chars.String() != "Your table is booked." {
		t.Fatalf("aligned characters %q", chars.String())
	}
	if secs := float64(len(pcm)) / 16000; secs < 3.2 || secs > 3.4 {
		t.Fatalf("%.2f s of audio", secs)
	}
	if db := audio.DBFS(pcm); db < -40 {
		t.Fatalf("%.1f dBFS", db)
	}
	said := srv.Said()
	if len(said) != 1 || said[0].Voice != "voice-adam" || said[0].Format != "pcm_16000" || said[0].Text != "Your table is booked." {
		t.Fatalf("%+v", said)
	}
}

// TestSynthesizeWords: the chunks' alignment, each from its own chunk's
// start, becomes word timings from the sentence's start, each word once,
// ending where its last character ends.
func TestSynthesizeWords(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{})
	s := newSynth(t, srv, Config{SampleRate: 22050, Warm: new(bool)})
	var got []frame.Word
	var samples int
	err := s.SynthesizeWords(context.Background(), "Your table for four is booked at eight tonight.", "", func(p []int16) error {
		samples += len(p)
		return nil
	}, func(ws []frame.Word) { got = append(got, ws...) })
	if err != nil {
		t.Fatal(err)
	}
	said := srv.Said()
	if len(said) != 1 || said[0].Chunks < 3 {
		t.Fatalf("said %+v: want one sentence of several chunks", said)
	}
	// The words the server aligned, from its record in the sentence's time.
	var want []frame.Word
	a := said[0]
	var cur frame.Word
	for i, c := range a.Chars {
		if c == " " {
			want, cur = append(want, cur), frame.Word{}
			continue
		}
		if cur.Text == "" {
			cur.Start = time.Duration(a.StartMs[i]) * time.Millisecond
		}
		cur.Text += c
		cur.End = time.Duration(a.StartMs[i]+a.DurMs[i]) * time.Millisecond
	}
	want = append(want, cur)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("words\n%v, want\n%v", got, want)
	}
	if d := (frame.Format{SampleRate: 22050, Channels: 1}).Duration(samples); got[len(got)-1].End > d || got[len(got)-1].End < d*9/10 {
		t.Fatalf("the last word ends at %v of %v of audio", got[len(got)-1].End, d)
	}
}

func TestWarmConnectionForTheDefaultVoice(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{})
	s := newSynth(t, srv, Config{})
	for _, text := range []string{"One.", "Two.", "Three."} {
		if err := s.Synthesize(context.Background(), text, "", func([]int16) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Each sentence after the first used the connection opened during the
	// one before; one more waits for the next.
	deadline := time.Now().Add(5 * time.Second)
	for srv.Conns() != 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Conns(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSynthesizeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     elevenlabstest.Fault
		status    int
		retryable bool
		audio     bool
		want      string
	}{
		{"rate limited", elevenlabstest.Fault{Status: 429}, 429, true, false, ""},
		{"unauthorized", elevenlabstest.Fault{Status: 401}, 401, false, false, ""},
		{"dropped", elevenlabstest.Fault{DropAfter: 3}, 0, true, true, "connection lost"},
		{"malformed", elevenlabstest.Fault{Malformed: true}, 0, true, false, "protocol error"},
		{"slow first byte", elevenlabstest.Fault{FirstByte: 3 * time.Second}, 0, true, false, "first-byte timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := elevenlabstest.New(t, elevenlabstest.Config{})
			srv.Push(tc.fault)
			s := newSynth(t, srv, Config{Warm: new(bool), FirstByteTimeout: time.Second})
			n := 0
			err := s.Synthesize(context.Background(), "Hello.", "", func(p []int16) error { n += len(p); return nil })
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Provider != "elevenlabs" || pe.Status != tc.status || pe.Retryable != tc.retryable || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v (%+v)", err, pe)
			}
			if (n > 0) != tc.audio {
				t.Fatalf("%d samples before the failure", n)
			}
			if err := s.Synthesize(context.Background(), "Again.", "", func([]int16) error { return nil }); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

func TestSynthesizeStopsOnCancel(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{ChunkEvery: 20 * time.Millisecond})
	s := newSynth(t, srv, Config{Warm: new(bool)})
	cause := errors.New("barge-in")
	ctx, cancel := context.WithCancelCause(context.Background())
	err := s.Synthesize(ctx, "Hello.", "", func([]int16) error { cancel(cause); return nil })
	if err != cause {
		t.Fatalf("%v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Setenv("ELEVENLABS_API_KEY", "")
	err := Config{Voice: "v"}.Validate()
	if !errors.Is(err, provider.ErrMissingKey) || !strings.Contains(err.Error(), "ELEVENLABS_API_KEY") {
		t.Fatalf("%v", err)
	}
	t.Setenv("ELEVENLABS_API_KEY", "k")
	for _, c := range []Config{{}, {Voice: "v", SampleRate: 8000}, {Voice: "v", BaseURL: "https://x"}, {Voice: "v", Speed: 2}} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"audio":"AAABAAIA","isFinal":null,"alignment":{"chars":["H","i"],"charStartTimesMs":[0,50],"charDurationsMs":[50,50]}}`))
	f.Add([]byte(`{"isFinal":true}`))
	f.Add([]byte(`{"error":"quota_exceeded","message":"no credits"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, al, _, err := decode(b, nil)
		if err != nil {
			return
		}
		if al != nil && (len(al.StartMs) != len(al.Chars) || len(al.DurMs) != len(al.Chars)) {
			t.Fatalf("inconsistent alignment accepted: %+v", al)
		}
		_ = pcm
	})
}

// TestWordBuilder: a word split across chunks is reported once its last
// character comes, without waiting for the space that follows it in the
// next chunk; each chunk's times are moved by its offset.
func TestWordBuilder(t *testing.T) {
	b := wordBuilder{want: strings.Fields("Hi there, you")}
	ms := time.Millisecond
	var got []string
	add := func(chars string, at time.Duration) {
		a := &Alignment{}
		for i, c := range strings.Split(chars, "") {
			a.Chars = append(a.Chars, c)
			a.StartMs = append(a.StartMs, 10*i)
			a.DurMs = append(a.DurMs, 10)
		}
		for _, w := range b.add(a, at) {
			got = append(got, fmt.Sprintf("%s %v-%v", w.Text, w.Start, w.End))
		}
	}
	add("Hi th", 0)     // "Hi" ends at 20 ms
	add("ere,", 100*ms) // "there," completes: reported now
	add(" yo", 200*ms)  // "yo" is not yet a word
	add("u", 300*ms)    // "you" completes
	if b.flush() != nil {
		t.Error("flush after the last word reported one")
	}
	want := []string{"Hi 0s-20ms", "there, 30ms-140ms", "you 210ms-310ms"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("words %q, want %q", got, want)
	}
}
