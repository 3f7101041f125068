package aec

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/processors/vad/silero"
)

const rate = 16000

func synth(t testing.TB, voice, text string) []int16 {
	t.Helper()
	syn, err := flite.New(flite.Config{Voice: voice})
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	if err := syn.Synthesize(context.Background(), text, "", func(c []int16) error {
		pcm = append(pcm, c...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return pcm
}

// collect is an Emitter keeping the audio emitted.
type collect struct {
	mu  sync.Mutex
	pcm []int16
}

func (c *collect) Emit(f frame.Frame) {
	if a, ok := f.(*frame.InputAudio); ok {
		c.mu.Lock()
		c.pcm = append(c.pcm, a.Samples...)
		c.mu.Unlock()
	}
}
func (c *collect) EmitUp(frame.Frame) {}
func (c *collect) Pass(f frame.Frame) { c.Emit(f) }

func power(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return s/float64(len(pcm)) + 1e-9
}

func db(x float64) float64 { return 10 * math.Log10(x) }

// room simulates a client without echo cancellation: what it plays comes
// back into its microphone delay later, scaled by gain, over the user's
// own voice. It runs the echo stage in 20 ms steps of fake time and returns
// the microphone signal, the echo in it, and the stage's output.
func room(t *testing.T, cfg Config, bot, user []int16, userAt int, delay time.Duration, gain float64) (mic, echo, out []int16) {
	ref, err := NewReference(frame.Mono16k, rate, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ref, rate, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var got collect
	const step = 320
	d := frame.Mono16k.Samples(delay)
	n := len(bot) + d + step
	if userAt+len(user) > n {
		n = userAt + len(user)
	}
	n = n / step * step
	mic = make([]int16, n)
	echo = make([]int16, n)
	for i := range mic {
		var e, u float64
		if j := i - d; j >= 0 && j < len(bot) {
			e = gain * float64(bot[j])
		}
		if j := i - userAt; j >= 0 && j < len(user) {
			u = float64(user[j])
		}
		echo[i] = int16(e)
		mic[i] = int16(max(-32768, min(32767, e+u)))
	}
	for i := 0; i < n; i += step {
		// The client plays chunk i now; its microphone has just captured
		// the 20 ms before now.
		if i < len(bot) {
			ref.Played(bot[i:min(i+step, len(bot))], time.Now())
		}
		time.Sleep(20 * time.Millisecond)
		f := &frame.InputAudio{Format: frame.Mono16k, Samples: mic[i : i+step]}
		if err := p.Process(context.Background(), f, &got); err != nil {
			t.Fatal(err)
		}
	}
	return mic, echo, got.pcm
}

// TestEchoReturnLoss measures how much of the bot's echo (80 ms late,
// -6 dB) is left after the stage, once the filter has converged (after the
// first second).
func TestEchoReturnLoss(t *testing.T) {
	bot := synth(t, "slt", "Once upon a time there was a little fox who lived in the forest. Every morning he went down to the river to drink, and one day he met a heron standing in the water.")
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			cfg   Config
			delay time.Duration
			min   float64 // dB
		}{
			{"80ms", Config{Warmup: -1}, 80 * time.Millisecond, 25},
			{"200ms", Config{Warmup: -1}, 200 * time.Millisecond, 25},
			{"no suppressor", Config{Suppress: -1, Warmup: -1}, 80 * time.Millisecond, 10},
		} {
			mic, _, out := room(t, tc.cfg, bot, nil, 0, tc.delay, 0.5)
			if len(out) < len(mic)-rate/100 {
				t.Fatalf("%s: %d samples out of %d", tc.name, len(out), len(mic))
			}
			from, to := 2*rate, len(bot)
			erle := db(power(mic[from:to]) / power(out[from:to]))
			t.Logf("%s: echo %.1f dBFS in, %.1f dBFS out: %.1f dB of echo removed", tc.name,
				db(power(mic[from:to])/32768/32768), db(power(out[from:to])/32768/32768), erle)
			if erle < tc.min {
				t.Errorf("%s: %.1f dB of echo removed, want at least %.0f", tc.name, erle, tc.min)
			}
		}
	})
}

// TestNearEndKept: the user's voice over the echo comes through.
func TestNearEndKept(t *testing.T) {
	bot := synth(t, "slt", "Once upon a time there was a little fox who lived in the forest. Every morning he went down to the river to drink.")
	user := synth(t, "awb", "Wait, stop please, I have a question.")
	synctest.Test(t, func(t *testing.T) {
		at := 2 * rate
		mic, echo, out := room(t, Config{Warmup: -1}, bot, user, at, 80*time.Millisecond, 0.5)
		seg := func(s []int16) []int16 { return s[at : at+len(user)] }
		// The error against the user's voice alone is well under the
		// voice itself: what comes out is mostly the user.
		var errP float64
		o := seg(out)
		for i, u := range user {
			d := float64(o[i]) - float64(u)
			errP += d * d
		}
		errP /= float64(len(user))
		t.Logf("user %.1f dBFS, echo %.1f dBFS; out %.1f dBFS, out − user %.1f dBFS",
			db(power(user)/32768/32768), db(power(seg(echo))/32768/32768), db(power(o)/32768/32768), db(errP/32768/32768))
		if db(power(o)/power(user)) < -10 {
			t.Errorf("the user's voice lost %.1f dB", -db(power(o)/power(user)))
		}
		_ = mic
	})
}

// TestBypass: with nothing played, audio passes untouched (same frame).
func TestBypass(t *testing.T) {
	ref, _ := NewReference(frame.Mono16k, rate, time.Second)
	p, err := New(ref, rate, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var got []frame.Frame
	out := emitFunc(func(f frame.Frame) { got = append(got, f) })
	f := &frame.InputAudio{Format: frame.Mono16k, Samples: []int16{1, 2, 3}}
	p.Process(context.Background(), f, out)
	if len(got) != 1 || got[0] != f {
		t.Fatalf("got %v, want the frame itself", got)
	}
	if p.c != nil {
		t.Error("canceller created with nothing to cancel")
	}
}

type emitFunc func(frame.Frame)

func (e emitFunc) Emit(f frame.Frame)   { e(f) }
func (e emitFunc) EmitUp(f frame.Frame) { e(f) }
func (e emitFunc) Pass(f frame.Frame)   { e(f) }

var _ pipeline.Emitter = emitFunc(nil)

func TestReference(t *testing.T) {
	ref, err := NewReference(frame.Format{SampleRate: 16000, Channels: 1}, rate, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	buf := make([]int16, 4)
	if ref.Read(buf, t0) {
		t.Error("empty reference read as sound")
	}
	ref.Played([]int16{1, 2, 3, 4, 5, 6, 7, 8}, t0) // 0.5 ms
	ms := func(x float64) time.Time { return t0.Add(time.Duration(x * float64(time.Millisecond))) }
	for _, tc := range []struct {
		end  time.Time
		want [4]int16
		ok   bool
	}{
		{ms(0.25), [4]int16{1, 2, 3, 4}, true},
		{ms(0.125), [4]int16{0, 0, 1, 2}, true},
		{ms(0.5), [4]int16{5, 6, 7, 8}, true},
		{ms(0.625), [4]int16{7, 8, 0, 0}, true},
		{ms(1), [4]int16{}, false},
	} {
		ok := ref.Read(buf, tc.end)
		if [4]int16(buf) != tc.want || ok != tc.ok {
			t.Errorf("Read(%v) = %v %v, want %v %v", tc.end.Sub(t0), buf, ok, tc.want, tc.ok)
		}
	}
	// A write far later (past the span) leaves no stale samples.
	ref.Played([]int16{9}, ms(200))
	if ref.Read(buf, ms(200.0625)) && [4]int16(buf) != [4]int16{0, 0, 0, 9} {
		t.Errorf("after a gap: %v", buf)
	}
	if _, err := NewReference(frame.Format{}, rate, time.Second); err == nil {
		t.Error("NewReference accepted a zero format")
	}
}

// residual is the turn detector's guard against what the canceller leaves
// while it converges: while the bot speaks a start needs more confidence.
var residual = vad.Config{BotConfidence: 0.85}

// TestNoSelfInterruption runs the real Silero turn detector (told the bot
// is speaking) on the microphone with and without the stage: the bot's
// echo must start no user turn once cancelled, while the user's voice over
// it still does.
func TestNoSelfInterruption(t *testing.T) {
	m := sileroModel(t)
	bot := synth(t, "slt", "Once upon a time there was a little fox who lived in the forest. Every morning he went down to the river to drink, and one day he met a heron standing in the water.")
	user := synth(t, "awb", "Wait, stop please, I have a question.")
	var mic, echoOnly, out, outUser []int16
	synctest.Test(t, func(t *testing.T) {
		mic, _, out = room(t, Config{}, bot, nil, 0, 80*time.Millisecond, 0.5)
		echoOnly = mic
		_, _, outUser = room(t, Config{}, bot, user, 3*rate, 80*time.Millisecond, 0.5)
	})
	starts := func(pcm []int16) int {
		var n int
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now()
			p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
				if _, ok := f.(*frame.UserStartedSpeaking); ok {
					n++
					t.Logf("user turn started at %v", time.Since(t0).Round(10*time.Millisecond))
				}
			}}, vad.NewDetector(m, rate, residual))
			ctx := context.Background()
			done := make(chan error)
			go func() { done <- p.Run(ctx) }()
			p.Push(ctx, &frame.BotStartedSpeaking{})
			for i := 0; i+320 <= len(pcm); i += 320 {
				p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm[i : i+320]})
				time.Sleep(20 * time.Millisecond)
			}
			p.Push(ctx, &frame.End{})
			<-done
		})
		return n
	}
	raw, clean, withUser := starts(echoOnly), starts(out), starts(outUser)
	t.Logf("user turns started by the echo: %d without the stage, %d with it; with the user speaking over it: %d", raw, clean, withUser)
	if clean != 0 {
		t.Errorf("the cancelled echo started %d user turns", clean)
	}
	if withUser == 0 {
		t.Error("the user's voice over the echo started no turn")
	}
}

func sileroModel(t *testing.T) *silero.Model {
	dir, err := silero.DefaultCacheDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, silero.ModelFile))
	}
	if err != nil {
		if os.Getenv("VOICED_REQUIRE_MODELS") == "1" {
			t.Fatalf("VAD model missing (%v): run `make models`", err)
		}
		t.Skipf("VAD model missing (%v): run `make models`", err)
	}
	m, err := silero.New(silero.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
