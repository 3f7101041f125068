package webrtc_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// result is written to VOICED_E2E_RESULTS (JSON), if set, for bench/.
type result struct {
	VoiceToVoiceMs        []float64 `json:"voice_to_voice_ms"`
	ServerVoiceToVoiceMs  []float64 `json:"server_voice_to_voice_ms"`
	BargeInMs             []float64 `json:"barge_in_ms"`
	AudioAfterInterruptMs []float64 `json:"audio_after_interrupt_ms"`
	// TestE2EWebRTCBargeIn: from the user's first word to the silence
	// the peer hears, for words that interrupt, and for noises and
	// backchannels that only pause; and from the end of such a noise to
	// the answer heard again.
	BargeInSilenceMs []float64 `json:"barge_in_silence_ms,omitempty"`
	PauseSilenceMs   []float64 `json:"pause_silence_ms,omitempty"`
	ResumeAfterMs    []float64 `json:"resume_after_ms,omitempty"`
}

// startVoiced runs the real server (Silero VAD, pocketsphinx, flite, the
// scripted model) with the built-in configuration on loopback (so it keeps
// ICE on lo) and returns the offer URL.
func startVoiced(t *testing.T) string {
	return testenv.Start(t, config.Default(), nil).URL + "/webrtc/offer"
}

// speech synthesizes text with flite at 16 kHz.
func speech(t *testing.T, text string) []int16 { return testenv.Speech(t, text) }

func writeResult(t *testing.T, r result) {
	path := os.Getenv("VOICED_E2E_RESULTS")
	if path == "" {
		return
	}
	var all result
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &all)
	}
	all.VoiceToVoiceMs = append(all.VoiceToVoiceMs, r.VoiceToVoiceMs...)
	all.ServerVoiceToVoiceMs = append(all.ServerVoiceToVoiceMs, r.ServerVoiceToVoiceMs...)
	all.BargeInMs = append(all.BargeInMs, r.BargeInMs...)
	all.AudioAfterInterruptMs = append(all.AudioAfterInterruptMs, r.AudioAfterInterruptMs...)
	all.BargeInSilenceMs = append(all.BargeInSilenceMs, r.BargeInSilenceMs...)
	all.PauseSilenceMs = append(all.PauseSilenceMs, r.PauseSilenceMs...)
	all.ResumeAfterMs = append(all.ResumeAfterMs, r.ResumeAfterMs...)
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Error(err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func overlap(said, heard string) int {
	words := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '\'') })
	}
	n := 0
	h := words(heard)
	for _, w := range words(said) {
		if slices.Contains(h, w) {
			n++
		}
	}
	return n
}

// TestE2EWebRTC speaks turns of flite speech as Opus over WebRTC to the real
// pipeline, checks each is recognized and answered out loud, measures
// voice-to-voice at the client (last voiced packet sent → first audible
// reply packet received), then barges in on a long answer.
func TestE2EWebRTC(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	url := startVoiced(t)
	c := dial(t, url)
	if !c.silenceUntil(10*time.Second, func() bool { return c.count("ready", time.Time{}) > 0 }) {
		t.Fatal("no ready event")
	}
	var res result
	for i, said := range []string{"hello there", "what is your name", "what can you do"} {
		c.silence(400 * time.Millisecond)
		since := time.Now()
		_, stopped := c.stream(speech(t, said))
		if !c.silenceUntil(15*time.Second, func() bool { return c.count("bot_stopped_speaking", since) > 0 }) {
			evs, _ := c.snapshot()
			t.Fatalf("turn %d (%q): no answer; events: %s", i, said, types(evs))
		}
		final, ok := c.first("transcript", since)
		for ok && !final.Final {
			final, ok = c.first("transcript", final.At.Add(time.Nanosecond))
		}
		if !ok {
			t.Fatalf("turn %d: no final transcript", i)
		}
		if overlap(said, final.Text) == 0 {
			t.Errorf("turn %d: said %q, recognized %q: no word in common", i, said, final.Text)
		}
		heard, ok := c.firstAudible(since)
		if !ok {
			t.Fatalf("turn %d: no audible reply audio", i)
		}
		v2v := heard.Sub(stopped)
		res.VoiceToVoiceMs = append(res.VoiceToVoiceMs, ms(v2v))
		m, _ := c.first("metrics", since)
		res.ServerVoiceToVoiceMs = append(res.ServerVoiceToVoiceMs, m.VoiceToVoice)
		t.Logf("turn %d: said %q, heard %q, voice-to-voice %v at the client (server: %.0f ms)",
			i, said, final.Text, v2v.Round(time.Millisecond), m.VoiceToVoice)
	}
	t.Logf("voice-to-voice median %.0f ms over %d turns: %v", median(res.VoiceToVoiceMs), len(res.VoiceToVoiceMs), res.VoiceToVoiceMs)

	interruption := speech(t, "wait, stop please")
	for round := range 2 {
		since := time.Now()
		c.send(map[string]string{"type": "text", "text": "tell me a story"})
		if !c.silenceUntil(10*time.Second, func() bool { return c.count("bot_started_speaking", since) > 0 }) {
			t.Fatalf("round %d: the story did not start", round)
		}
		c.silence(1500 * time.Millisecond)
		barge, _ := c.stream(interruption)
		if !c.silenceUntil(5*time.Second, func() bool { return c.count("interrupted", barge) > 0 }) {
			evs, _ := c.snapshot()
			t.Fatalf("round %d: no interrupted event; events %s", round, types(evs))
		}
		intr, _ := c.first("interrupted", barge)
		c.silenceUntil(15*time.Second, func() bool { return c.count("bot_stopped_speaking", intr.At.Add(time.Millisecond)) > 0 })
		end := time.Now()
		if next, ok := c.first("bot_started_speaking", intr.At); ok {
			end = next.At
		}
		afterMs := float64(c.audioBetween(intr.At, end)) / 48
		if afterMs > 300 {
			t.Errorf("round %d: %.0f ms of the old answer's audio arrived after `interrupted`", round, afterMs)
		}
		res.BargeInMs = append(res.BargeInMs, ms(intr.At.Sub(barge)))
		res.AudioAfterInterruptMs = append(res.AudioAfterInterruptMs, afterMs)
		t.Logf("round %d: interrupted %v after the user started speaking; %.0f ms of old audio after it",
			round, intr.At.Sub(barge).Round(time.Millisecond), afterMs)
		c.silence(500 * time.Millisecond)
	}
	writeResult(t, res)
}
