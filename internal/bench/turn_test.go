package bench

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunTurnsExact runs the turn harness on the fake clock, where the
// pipeline's own work takes no time: the measured overhead must come out as
// exactly what the stages add on purpose, and the segments must add up.
func TestRunTurnsExact(t *testing.T) {
	cases := []struct {
		prof     Profile
		overhead time.Duration
	}{
		{Instant(3), 0},
		// On the fake clock the pipeline adds nothing to the providers'
		// latencies (the TTS stage sends a sentence's first chunk as soon
		// as it is whole).
		{Cloud("cloud", 200*time.Millisecond, 2), 0},
	}
	for _, c := range cases {
		t.Run(c.prof.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				run, err := RunTurns(context.Background(), c.prof, nil)
				if err != nil {
					t.Fatal(err)
				}
				if run.Missed != 0 || run.Errors != 0 || len(run.Turns) != c.prof.Turns {
					t.Fatalf("missed %d, errors %d, turns %d", run.Missed, run.Errors, len(run.Turns))
				}
				stop := c.prof.StopDuration
				if stop == 0 {
					stop = 500 * time.Millisecond
				}
				for i, tr := range run.Turns {
					sum := tr.Endpointing + tr.STT + tr.LLM + tr.TTS + tr.Transport
					if sum != tr.VoiceToVoice {
						t.Errorf("turn %d: segments add to %v, voice-to-voice %v", i, sum, tr.VoiceToVoice)
					}
					if tr.EndpointAudio < stop || tr.EndpointAudio > stop+64*time.Millisecond {
						t.Errorf("turn %d: endpointing audio %v for a %v stop", i, tr.EndpointAudio, stop)
					}
					if tr.Overhead != c.overhead {
						t.Errorf("turn %d: overhead %v, want %v (%+v)", i, tr.Overhead, c.overhead, tr)
					}
					if tr.STT != c.prof.STTFinal {
						t.Errorf("turn %d: STT %v, want %v", i, tr.STT, c.prof.STTFinal)
					}
				}
			})
		})
	}
}

// TestRunTurnsProtocol runs the cloud profile over the OpenAI audio
// protocol against the local fakes, in real time: every turn is answered
// through the real providers, which wait for the fakes' delays. What the
// protocol adds is measured by `make bench`, not bounded here: a timed
// assertion would flake on a busy machine.
func TestRunTurnsProtocol(t *testing.T) {
	prof := CloudProtocol("cloud-protocol", 3)
	run, err := RunTurns(context.Background(), prof, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Missed != 0 || run.Errors != 0 || len(run.Turns) != prof.Turns {
		t.Fatalf("missed %d, errors %d, turns %d", run.Missed, run.Errors, len(run.Turns))
	}
	for i, tr := range run.Turns {
		if tr.STT < prof.STTFinal || tr.TTS < prof.TTSFirst {
			t.Errorf("turn %d: STT %v, TTS %v: shorter than the fakes' delays", i, tr.STT, tr.TTS)
		}
		t.Logf("turn %d: voice-to-voice %v, overhead %v (STT %v, TTS %v)", i, tr.VoiceToVoice, tr.Overhead, tr.STT, tr.TTS)
	}
}
