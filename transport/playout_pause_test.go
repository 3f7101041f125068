package transport

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/frame"
)

// ramp hands the playout n samples numbered from first (sample i has value
// (first+i) mod 30000), so that the writes can be checked for lost and
// repeated samples.
func (h *harness) ramp(turn uint32, first, n int, spoken string) {
	h.t.Helper()
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16((first + i) % 30000)
	}
	f := &frame.OutputAudio{Meta: frame.Meta{Turn: turn}, Format: h.p.cfg.Format, Samples: pcm, Spoken: spoken}
	if err := h.p.Process(context.Background(), f, h.tape); err != nil {
		h.t.Fatal(err)
	}
	synctest.Wait()
}

func (h *harness) process(f frame.Frame) {
	h.t.Helper()
	if err := h.p.Process(context.Background(), f, h.tape); err != nil {
		h.t.Fatal(err)
	}
	synctest.Wait()
}

// checkRamp fails unless the writes are exactly samples 0..n-1 of a ramp.
func checkRamp(t *testing.T, w []happening, n int) {
	t.Helper()
	i := 0
	for _, wr := range w {
		for _, v := range wr.pcm {
			if want := int16(i % 30000); v != want {
				t.Fatalf("sample %d (written at %v) is %d, want %d: audio lost or repeated", i, wr.at, v, want)
			}
			i++
		}
	}
	if i != n {
		t.Fatalf("wrote %d samples, want %d", i, n)
	}
}

// TestPlayoutPauseResume: a pause stops the writes at once and holds the
// position; audio queued meanwhile is kept; the resume goes on from the
// first sample not sent, so every sample is written once, in order, and
// sentences are reported as played, later by the pause.
func TestPlayoutPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.ramp(1, 0, 3200, "one")          // 0-200 ms of audio
		h.ramp(1, 3200, 4800, "two")       // 200-500 ms
		time.Sleep(305 * time.Millisecond) // between two ticks
		h.process(&frame.PausePlayout{Meta: frame.Meta{Turn: 1}})
		// Synthesis goes on while paused.
		time.Sleep(100 * time.Millisecond)
		h.ramp(1, 8000, 3200, "three")     // 500-700 ms
		time.Sleep(300 * time.Millisecond) // 705 ms
		h.process(&frame.ResumePlayout{Meta: frame.Meta{Turn: 1}, Paused: 400 * time.Millisecond})
		time.Sleep(2 * time.Second)
		h.stop()

		w := h.tape.writes()
		checkRamp(t, w, 11200)
		// The last write before the pause (at 300 ms) took what was sent
		// to 300 ms + Lead; the next is at the resume (705 ms).
		sentAtPause := 0
		for _, wr := range w {
			if wr.at <= 300*time.Millisecond {
				sentAtPause += len(wr.pcm)
				continue
			}
			if wr.at < 705*time.Millisecond {
				t.Errorf("audio written at %v, while paused", wr.at)
			}
		}
		if sentAtPause != 16*400 {
			t.Errorf("%d samples sent by the pause, want %d", sentAtPause, 16*400)
		}
		// The client played 400 ms by 400 ms and was silent until the
		// resume at 705 ms: "two" (to 500 ms of audio) ends at 805 ms,
		// reported at the next tick (810), "three" at 1005 (1010).
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"up *frame.BotSpoke@200 one",
			"pass *frame.PausePlayout@305",
			"pass *frame.ResumePlayout@705",
			"up *frame.BotSpoke@810 two",
			"up *frame.BotSpoke@1010 three",
			"down *frame.BotStoppedSpeaking@1110",
			"up *frame.BotStoppedSpeaking@1110",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames\n%q, want\n%q", got, want)
		}
	})
}

// TestPlayoutPauseInterrupted: an interruption during a pause drops the
// queue; what is reported heard is what was sent before the pause (the
// client played it), not the time spent paused.
func TestPlayoutPauseInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.ramp(1, 0, 16000, "one two three four five six seven eight") // 1 s
		time.Sleep(205 * time.Millisecond)                             // between two ticks
		h.process(&frame.PausePlayout{Meta: frame.Meta{Turn: 1}})
		time.Sleep(time.Second) // long enough to have played it all, had it gone on
		h.rt.Interrupt("barge-in")
		h.process(&frame.Interruption{Meta: frame.Meta{Turn: 2}})
		time.Sleep(time.Second)
		h.ramp(2, 0, 1600, "new") // the next answer is not paused
		time.Sleep(time.Second)
		h.stop()

		var old, neu int
		for _, wr := range h.tape.writes() {
			if wr.at <= 200*time.Millisecond {
				old += len(wr.pcm)
			} else {
				neu += len(wr.pcm)
			}
		}
		if old != 16*300 || neu != 1600 {
			t.Errorf("wrote %d samples before the pause and %d after, want %d and 1600", old, neu, 16*300)
		}
		// 300 ms of 1 s played: 30% of the characters.
		want := []string{
			"down *frame.BotStartedSpeaking@0",
			"up *frame.BotStartedSpeaking@0",
			"pass *frame.PausePlayout@205",
			"down *frame.BotStoppedSpeaking@1205 interrupted",
			"up *frame.BotStoppedSpeaking@1205 interrupted",
			"up *frame.BotSpoke@1205 one two three",
			"pass *frame.Interruption@1205",
			"down *frame.BotStartedSpeaking@2205",
			"up *frame.BotStartedSpeaking@2205",
			"up *frame.BotSpoke@2305 new",
			"down *frame.BotStoppedSpeaking@2405",
			"up *frame.BotStoppedSpeaking@2405",
		}
		if got := h.tape.frames(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("frames\n%q, want\n%q", got, want)
		}
	})
}

// TestPlayoutPauseStale: pause and resume frames of an older turn are
// ignored.
func TestPlayoutPauseStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, PlayoutConfig{Format: frame.Mono16k})
		h.rt.Interrupt("x") // turn 2
		h.process(&frame.PausePlayout{Meta: frame.Meta{Turn: 1}})
		h.ramp(2, 0, 3200, "one")
		time.Sleep(time.Second)
		h.stop()
		checkRamp(t, h.tape.writes(), 3200)
	})
}
