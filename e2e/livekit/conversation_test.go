package livekit

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/transport"
	lk "github.com/voiced-dev/voiced/transport/livekit"
)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

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

// record appends the measured voice-to-voice latencies to the JSON file
// VOICED_LIVEKIT_RESULTS names, for bench/results/livekit.md.
func record(t *testing.T, v2v []float64) {
	path := os.Getenv("VOICED_LIVEKIT_RESULTS")
	if path == "" {
		return
	}
	var all struct {
		VoiceToVoiceMs []float64 `json:"voice_to_voice_ms"`
	}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &all)
	}
	all.VoiceToVoiceMs = append(all.VoiceToVoiceMs, v2v...)
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Error(err)
	}
}

// agentToken is the token of voiced joining room directly (no worker).
func agentToken(t *testing.T, room string) string {
	t.Helper()
	tok, err := lk.NewToken(lk.TokenConfig{APIKey: apiKey, APISecret: apiSecret, Room: room, Identity: "voiced", AsAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLiveKitConversation: voiced joins a room as the agent; a participant
// speaks several turns into it and gets spoken answers and events back as
// data messages. It measures voice-to-voice latency at the participant the
// same way as the WebSocket end-to-end test: from the last audible frame
// sent to the first audible frame received. Wrong tokens and unknown rooms
// are refused meanwhile without disturbing the conversation.
func TestLiveKitConversation(t *testing.T) {
	srv := startLiveKit(t)
	b := builder(t)
	srv.createRoom(t, "talk", "")

	// The conversation counts against the server's one session limit and
	// is labelled with its transport.
	adm := transport.NewAdmission(0)
	var kind atomic.Value
	agent := lk.NewAgent(lk.Config{Logger: testLogger(), Admission: adm}, func(ctx context.Context, s *transport.Session) error {
		kind.Store(s.Kind)
		return b.Run(ctx, s)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	joined := make(chan error, 1)
	go func() { joined <- agent.Join(ctx, srv.URL, agentToken(t, "talk")) }()

	u := joinUser(t, srv.URL, "talk", "alice")
	u.publish()
	if !u.silenceUntil(15*time.Second, func() bool { _, ok := u.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event from the agent")
	}
	if k, _ := kind.Load().(string); k != "livekit" {
		t.Errorf("session kind %q, want livekit", k)
	}
	if n := adm.Sessions(); n != 1 {
		t.Errorf("%d sessions admitted, want 1", n)
	}

	// Refused joins get clear errors and leave the conversation alone.
	t.Run("errors", func(t *testing.T) {
		a := lk.NewAgent(lk.Config{JoinTimeout: 10 * time.Second}, b.Run)
		bad, _ := lk.NewToken(lk.TokenConfig{APIKey: apiKey, APISecret: "not-the-secret", Room: "talk", Identity: "intruder", AsAgent: true})
		err := a.Join(context.Background(), srv.URL, bad)
		if !errors.Is(err, lk.ErrUnauthorized) {
			t.Errorf("wrong token: got %v, want ErrUnauthorized", err)
		}
		t.Logf("wrong token: %v", err)
		err = a.Join(context.Background(), srv.URL, agentToken(t, "no-such-room"))
		if !errors.Is(err, lk.ErrUnknownRoom) {
			t.Errorf("unknown room: got %v, want ErrUnknownRoom", err)
		}
		t.Logf("unknown room: %v", err)
		w, err := lk.NewWorker(lk.WorkerConfig{URL: srv.URL, APIKey: apiKey, APISecret: "not-the-secret"}, b.Run)
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer wcancel()
		if err := w.Run(wctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("worker with a wrong secret: Run returned %v", err)
		}
	})

	turns := []string{"hello there", "what is your name", "what can you do"}
	var v2v []float64
	for i, said := range turns {
		u.silence(400 * time.Millisecond)
		since := time.Now()
		_, stopped := u.stream(speech(t, said))
		if !u.silenceUntil(20*time.Second, func() bool { return u.count("bot_stopped_speaking", since) > 0 }) {
			evs, _ := u.snapshot()
			t.Fatalf("turn %d (%q): the bot did not finish answering; events: %v", i, said, types(evs))
		}
		final, ok := u.finalTranscript(since)
		if !ok {
			t.Fatalf("turn %d: no final transcript event", i)
		}
		if overlap(said, final.Text) == 0 {
			t.Errorf("turn %d: said %q, recognized %q: no word in common", i, said, final.Text)
		}
		for _, typ := range []string{"user_started_speaking", "user_stopped_speaking", "bot_text", "bot_started_speaking", "metrics"} {
			if u.count(typ, since) == 0 {
				t.Errorf("turn %d: no %s event", i, typ)
			}
		}
		heard, peak, ok := u.firstAudible(since)
		if !ok {
			t.Fatalf("turn %d: no audible reply audio (peak %d)", i, peak)
		}
		d := heard.Sub(stopped)
		v2v = append(v2v, ms(d))
		m, _ := u.first("metrics", since)
		t.Logf("turn %d: said %q, heard %q, reply peak %.1f dBFS, voice-to-voice %v at the participant (server: %.0f ms, stt final %.0f ms)",
			i, said, final.Text, dbfs(peak), d.Round(time.Millisecond), m.VoiceToVoice, m.STTFinal)
	}
	t.Logf("voice-to-voice over LiveKit: median %.0f ms over %d turns: %v", median(v2v), len(v2v), v2v)
	record(t, v2v)

	// Typed text is answered too.
	since := time.Now()
	u.sendJSON(map[string]string{"type": "text", "text": "hello"})
	if !u.silenceUntil(15*time.Second, func() bool { return u.count("bot_text", since) > 0 }) {
		t.Error("no answer to typed text")
	}

	// "end" ends the conversation, and the agent leaves the room.
	u.sendJSON(map[string]string{"type": "end"})
	select {
	case err := <-joined:
		if err != nil {
			t.Errorf("Join: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not leave after end")
	}
}

func dbfs(peak int) float64 {
	if peak <= 0 {
		return -120
	}
	return 20 * math.Log10(float64(peak)/32768)
}

func types(evs []Event) []string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Type)
	}
	return s
}
