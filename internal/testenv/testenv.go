// Package testenv helps end-to-end tests run a real voiced server: it checks
// that the VAD model is installed (skipping the test, or failing it when
// VOICED_REQUIRE_MODELS=1) and starts internal/server on loopback.
package testenv

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	"github.com/voiced-dev/voiced/processors/vad/silero"
)

// RequireModels skips t when the Silero model is not in the cache, or fails
// it when VOICED_REQUIRE_MODELS=1 (as `make test` sets).
func RequireModels(t testing.TB) {
	t.Helper()
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
}

// Logger logs to stderr under -v and discards otherwise.
func Logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// Server is a loaded voiced server on loopback.
type Server struct {
	*server.Server
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
}

// WebSocket returns the URL of the WebSocket endpoint.
func (s *Server) WebSocket() string { return "ws" + s.URL[len("http"):] + "/ws" }

// Start loads voiced with cfg (and extra tools agents may name), with
// load-aware admission off and no shutdown grace, serves it
// on loopback, and stops it when t ends. edit, if set, adjusts the server
// after Load (its session builder, say) before it serves.
func Start(t testing.TB, cfg config.Config, edit func(*server.Server), tools ...agents.Tool) *Server {
	t.Helper()
	RequireModels(t)
	cfg.Server.Addr = "127.0.0.1:0"
	// The tests' clients share the process and a busy machine: load-aware
	// admission would refuse their sessions at random. Sessions still open
	// when a test ends are closed at once.
	cfg.Server.MaxCPUUtilization, cfg.Server.MaxInputLateness = 1, time.Hour
	cfg.Server.ShutdownGrace = time.Millisecond
	s := server.New(cfg, Logger())
	for _, tool := range tools {
		s.AddTool(tool)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(s)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
		s.Close()
	})
	return &Server{Server: s, URL: ts.URL}
}

// Speech synthesizes text with flite's slt voice: 16 kHz mono PCM.
func Speech(t testing.TB, text string) []int16 {
	t.Helper()
	return SpeechVoice(t, "slt", text)
}

// SpeechVoice synthesizes text with the named flite voice ("slt", "awb",
// "kal", ...): 16 kHz mono PCM. A voice other than the bot's is a user the
// server cannot mistake for its own echo.
func SpeechVoice(t testing.TB, voice, text string) []int16 {
	t.Helper()
	syn, err := flite.New(flite.Config{Voice: voice})
	if err != nil {
		t.Fatal(err)
	}
	if syn.Format() != frame.Mono16k {
		t.Fatalf("flite format %+v", syn.Format())
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

// Cough is a burst of Gaussian noise d long at about -12 dBFS, 16 kHz mono,
// the same every time: a noise over the bot that is not speech (Silero
// VAD does not take it for speech: see VoicedCough).
func Cough(d time.Duration) []int16 {
	r := rand.New(rand.NewPCG(1, 2))
	pcm := make([]int16, int(d.Seconds()*16000))
	for i := range pcm {
		pcm[i] = int16(r.NormFloat64() * 8000)
	}
	return pcm
}

// VoicedCough is a cough with a voice in it: 500 ms of noise excited by
// 150 Hz glottal pulses through a 400 Hz resonance (a throat), with a 10 ms
// attack and a 300 ms decay, 16 kHz mono, the same every time. Silero VAD
// scores most of it around its 0.5 threshold (0.4–0.8, after an Opus round
// trip too, depending on where its chunks fall and on the model's state),
// so the detector usually, not always, takes it for the start of speech.
// Heard, it is shorter than the turn-taking stage's MinDuration as that
// stage counts it (not within its echo tail of the pause): a noise that
// pauses the bot but must not interrupt it.
func VoicedCough() []int16 {
	const (
		rate  = 16000
		f0    = 150.0 // glottal pulses, Hz
		fr    = 400.0 // resonance, Hz
		width = 0.97  // pole radius
	)
	r := rand.New(rand.NewPCG(1, 2))
	pcm := make([]int16, rate*500/1000)
	c1, c2 := 2*width*math.Cos(2*math.Pi*fr/rate), -width*width
	var y1, y2 float64
	for i := range pcm {
		t := float64(i) / rate
		x := r.NormFloat64()
		if math.Mod(t*f0, 1) < 0.1 {
			x += 6
		}
		y := x + c1*y1 + c2*y2
		y2, y1 = y1, y
		env := min(1, t/0.01) * math.Exp(-t/0.3)
		pcm[i] = int16(max(-32000, min(32000, 800*env*y)))
	}
	return pcm
}
