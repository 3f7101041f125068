package transport

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/tts"
	"github.com/voiced-dev/voiced/processors/tts/cartesia"
	"github.com/voiced-dev/voiced/processors/tts/cartesia/cartesiatest"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs/elevenlabstest"
)

func TestTimedWords(t *testing.T) {
	ms := time.Millisecond
	words := []frame.Word{{Text: "Your", End: 200 * ms}, {Text: "table,", Start: 250 * ms, End: 600 * ms}, {Text: "sir", Start: 600 * ms, End: 900 * ms}}
	for _, tc := range []struct {
		text   string
		played time.Duration
		want   string
	}{
		{"Your table, sir.", 0, ""},
		{"Your table, sir.", 199 * ms, ""},
		{"Your table, sir.", 200 * ms, "Your"},
		{"Your table, sir.", 899 * ms, "Your table,"},
		{"Your table, sir.", 900 * ms, "Your table, sir."}, // as the text spells it
		{"Your table sir", time.Hour, "Your table sir"},
		{"Votre table, monsieur.", time.Hour, "Your table, sir"}, // not its words: the synthesizer's
	} {
		if got := TimedWords(tc.text, words, tc.played); got != tc.want {
			t.Errorf("TimedWords(%q, %v) = %q, want %q", tc.text, tc.played, got, tc.want)
		}
	}
}

// synthesized runs text through a tts.Processor driving syn and returns
// the frames of the answer (TTSText, OutputAudio) at 16 kHz.
func synthesized(t *testing.T, syn tts.Synthesizer, text string) []frame.Frame {
	t.Helper()
	cfg := tts.ProcessorConfig{Output: frame.Mono16k}
	if r := syn.Format().SampleRate; r != 16000 {
		rs, err := audio.NewResampler(r, 16000)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Resampler = rs
	}
	proc, err := tts.NewProcessor(syn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []frame.Frame
	p := pipeline.New(pipeline.Options{Sink: func(f frame.Frame) {
		switch f.(type) {
		case *frame.TTSText, *frame.OutputAudio:
			mu.Lock()
			out = append(out, f)
			mu.Unlock()
		}
	}}, proc)
	ctx := context.Background()
	for _, f := range []frame.Frame{&frame.LLMResponseStart{}, &frame.LLMText{Text: text}, &frame.LLMResponseEnd{}, &frame.End{}} {
		if err := p.Push(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return out
}

// heardAt plays frames from time 0 and interrupts at cut; it returns what
// the BotSpoke frames sent upstream said.
func heardAt(t *testing.T, frames []frame.Frame, cut time.Duration) string {
	var heard []string
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		for _, f := range frames {
			switch f := f.(type) {
			case *frame.TTSText:
				c := *f
				c.Turn = 1
				h.p.Process(context.Background(), &c, h.tape)
			case *frame.OutputAudio:
				c := *f
				c.Turn = 1
				h.p.Process(context.Background(), &c, h.tape)
			}
		}
		time.Sleep(cut)
		h.rt.Interrupt("barge-in")
		h.p.Process(context.Background(), &frame.Interruption{Meta: frame.Meta{Turn: 2}}, h.tape)
		synctest.Wait()
		h.stop()
		for _, x := range h.tape.all() {
			if s, ok := x.f.(*frame.BotSpoke); ok {
				heard = append(heard, s.Text)
			}
		}
	})
	return strings.Join(heard, " ")
}

// checkHeard cuts the answer off just before and at the end of each word
// the server timed (ends, in the sentence's time): what is reported heard
// is exactly the words whose audio was played to their end.
func checkHeard(t *testing.T, frames []frame.Frame, text string, ends []time.Duration) {
	t.Helper()
	timed := 0
	for _, f := range frames {
		if a, ok := f.(*frame.OutputAudio); ok {
			timed += len(a.Words)
		}
	}
	ws := strings.Fields(text)
	if timed != len(ws) || len(ends) != len(ws) {
		t.Fatalf("%d words timed on the audio frames, %d by the server, want %d", timed, len(ends), len(ws))
	}
	sample := time.Second / 16000
	for i, end := range ends {
		end = ceilTo(end, sample) // the playout counts whole samples
		for _, cut := range []time.Duration{end - time.Millisecond, end} {
			want := strings.Join(ws[:i], " ")
			if cut == end {
				want = strings.Join(ws[:i+1], " ")
			}
			if got := heardAt(t, frames, cut); got != want {
				t.Errorf("cut at %v: heard %q, want %q", cut, got, want)
			}
		}
	}
}

const timedText = "Your table for four is booked at eight tonight."

// TestPlayoutHeardElevenLabs: ElevenLabs' character alignment, as its
// (fake) server sends it, carried through the synthesis stage (resampled
// from 22.05 kHz), tells the playout exactly which words were played.
func TestPlayoutHeardElevenLabs(t *testing.T) {
	srv := elevenlabstest.New(t, elevenlabstest.Config{})
	t.Setenv("VOICED_TEST_XI_KEY", "k")
	syn, err := elevenlabs.New(elevenlabs.Config{BaseURL: srv.URL, APIKeyEnv: "VOICED_TEST_XI_KEY", Voice: "v", SampleRate: 22050})
	if err != nil {
		t.Fatal(err)
	}
	defer syn.Close()
	frames := synthesized(t, syn, timedText)
	said := srv.Said()
	if len(said) != 1 {
		t.Fatalf("said %+v", said)
	}
	var ends []time.Duration
	a := said[0]
	for i, c := range a.Chars {
		if i+1 == len(a.Chars) || a.Chars[i+1] == " " {
			if c != " " {
				ends = append(ends, time.Duration(a.StartMs[i]+a.DurMs[i])*time.Millisecond)
			}
		}
	}
	checkHeard(t, frames, timedText, ends)
}

// TestPlayoutHeardCartesia: the same with Cartesia's word timestamps.
func TestPlayoutHeardCartesia(t *testing.T) {
	srv := cartesiatest.New(t, cartesiatest.Config{})
	t.Setenv("VOICED_TEST_CARTESIA_KEY", "k")
	syn, err := cartesia.New(cartesia.Config{BaseURL: srv.URL, APIKeyEnv: "VOICED_TEST_CARTESIA_KEY", Voice: "v", SampleRate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	defer syn.Close()
	frames := synthesized(t, syn, timedText)
	r := srv.Requests()
	if len(r) != 1 {
		t.Fatalf("requests %+v", r)
	}
	var ends []time.Duration
	for _, e := range r[0].Timestamps.End {
		ends = append(ends, time.Duration(e*float64(time.Second)))
	}
	checkHeard(t, frames, timedText, ends)
}
