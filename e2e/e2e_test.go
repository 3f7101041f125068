// Package e2e holds end-to-end tests: a real voiced server (Silero VAD,
// pocketsphinx, flite, the scripted model) on loopback, and a WebSocket
// client that talks to it like a microphone with speech synthesized by flite
// at test time.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// startServer runs voiced with the built-in configuration on loopback and
// returns its WebSocket URL.
func startServer(t *testing.T) string {
	return testenv.Start(t, config.Default(), nil).WebSocket()
}

// speech synthesizes text with flite at 16 kHz.
func speech(t *testing.T, text string) []int16 { return testenv.Speech(t, text) }

// result is what the tests measure, written for bench/ when
// VOICED_E2E_RESULTS names a file.
type result struct {
	VoiceToVoiceMs []float64 `json:"voice_to_voice_ms"`
	BargeInMs      []float64 `json:"barge_in_ms"`
	// BargeInSilenceMs is from the server's `interrupted` event to the last
	// bot audio message of the interrupted answer.
	AudioAfterInterruptMs []float64 `json:"audio_after_interrupt_ms"`
}

func record(t *testing.T, r result) {
	path := os.Getenv("VOICED_E2E_RESULTS")
	if path == "" {
		return
	}
	var all result
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &all)
	}
	all.VoiceToVoiceMs = append(all.VoiceToVoiceMs, r.VoiceToVoiceMs...)
	all.BargeInMs = append(all.BargeInMs, r.BargeInMs...)
	all.AudioAfterInterruptMs = append(all.AudioAfterInterruptMs, r.AudioAfterInterruptMs...)
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

// words returns the lower-case words of s.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '\'')
	})
}

func overlap(said, heard string) int {
	n := 0
	h := words(heard)
	for _, w := range words(said) {
		if slices.Contains(h, w) {
			n++
		}
	}
	return n
}

// TestE2EConversation speaks several turns and checks each is heard and
// answered out loud; it measures voice-to-voice latency at the client.
func TestE2EConversation(t *testing.T) {
	url := startServer(t)
	c := dial(t, url, 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	turns := []string{"hello there", "what is your name", "what can you do"}
	var res result
	for i, said := range turns {
		c.silence(400 * time.Millisecond)
		since := time.Now()
		stopped := c.stream(speech(t, said))
		ok := c.silenceUntil(15*time.Second, func() bool {
			return c.count("bot_stopped_speaking", since) > 0
		})
		if !ok {
			evs, _ := c.snapshot()
			t.Fatalf("turn %d (%q): the bot did not finish answering; events: %v", i, said, types(evs))
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
		for _, typ := range []string{"user_started_speaking", "user_stopped_speaking", "bot_text", "bot_started_speaking", "metrics"} {
			if c.count(typ, since) == 0 {
				t.Errorf("turn %d: no %s event", i, typ)
			}
		}
		heard, ok := c.firstAudible(since)
		if !ok {
			t.Fatalf("turn %d: no audible reply audio", i)
		}
		v2v := heard.Sub(stopped)
		res.VoiceToVoiceMs = append(res.VoiceToVoiceMs, ms(v2v))
		m, _ := c.first("metrics", since)
		t.Logf("turn %d: said %q, heard %q, voice-to-voice %v at the client (server: %.0f ms, stt final %.0f ms)",
			i, said, final.Text, v2v.Round(time.Millisecond), m.VoiceToVoce, m.STTFinal)
	}
	// Clean end: the server closes with 1000.
	c.sendJSON(map[string]string{"type": "end"})
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not close after end")
	}
	if c.closeCode != 1000 {
		t.Errorf("close code %d, want 1000", c.closeCode)
	}
	t.Logf("voice-to-voice median %.0f ms over %d turns: %v", median(res.VoiceToVoiceMs), len(res.VoiceToVoiceMs), res.VoiceToVoiceMs)
	// The 800 ms budget is checked by `make bench` (bench/results), not
	// here: a timed assertion would flake on a busy machine.
	record(t, res)
}

// TestE2EBargeIn asks for a long answer, speaks over it, and checks the
// server interrupts: `interrupted` arrives, and the old answer's audio stops.
func TestE2EBargeIn(t *testing.T) {
	url := startServer(t)
	c := dial(t, url, 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	var res result
	interruption := speech(t, "wait, stop please")
	for round := range 2 {
		since := time.Now()
		c.sendJSON(map[string]string{"type": "text", "text": "tell me a story"})
		if !c.silenceUntil(5*time.Second, func() bool { return c.count("bot_started_speaking", since) > 0 }) {
			t.Fatalf("round %d: the story did not start", round)
		}
		c.silence(1500 * time.Millisecond) // let it talk
		barge, _ := c.streamVoice(interruption)
		if !c.silenceUntil(5*time.Second, func() bool { return c.count("interrupted", barge) > 0 }) {
			evs, _ := c.snapshot()
			t.Fatalf("round %d: no interrupted event; events %v", round, types(evs))
		}
		intr, _ := c.first("interrupted", barge)
		stop, _ := c.first("bot_stopped_speaking", barge)
		if stop.Type == "" {
			t.Fatalf("round %d: no bot_stopped_speaking after the interruption", round)
		}
		// Wait for the answer to the interruption, then look at the gap.
		c.silenceUntil(15*time.Second, func() bool { return c.count("bot_stopped_speaking", intr.At.Add(time.Millisecond)) > 0 })
		next, ok := c.first("bot_started_speaking", intr.At)
		end := time.Now()
		if ok {
			end = next.At
		}
		// Audio of the interrupted answer after `interrupted`: at most what
		// was already on the wire (the server's 100 ms lead plus a chunk).
		after := c.audioBetween(intr.At, end)
		afterMs := 1000 * float64(after) / float64(c.rate)
		if afterMs > 150 {
			t.Errorf("round %d: %.0f ms of the old answer's audio arrived after `interrupted`", round, afterMs)
		}
		lat := intr.At.Sub(barge)
		if testing.Verbose() {
			evs, _ := c.snapshot()
			for _, e := range evs {
				if e.At.After(barge.Add(-2 * time.Second)) {
					t.Logf("  %+6dms %s %q turn=%d", e.At.Sub(barge).Milliseconds(), e.Type, e.Text, e.Turn)
				}
			}
		}
		res.BargeInMs = append(res.BargeInMs, ms(lat))
		res.AudioAfterInterruptMs = append(res.AudioAfterInterruptMs, afterMs)
		t.Logf("round %d: interrupted %v after the user started speaking; %.0f ms of old audio after it", round, lat.Round(time.Millisecond), afterMs)
		c.silence(500 * time.Millisecond)
	}
	record(t, res)
}

func types(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Type)
	}
	return fmt.Sprint(s)
}
