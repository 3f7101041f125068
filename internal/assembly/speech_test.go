package assembly

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/processors/provider"
)

// The speech examples pass check-config once their keys are set, and say
// which variable is missing when one is not.
func TestCheckSpeechExamples(t *testing.T) {
	keys := []string{"OPENAI_API_KEY", "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "CARTESIA_API_KEY", "GROQ_API_KEY"}
	for _, k := range keys {
		t.Setenv(k, "test-key")
	}
	for _, name := range []string{"openai.toml", "self-hosted.toml", "deepgram-elevenlabs.toml"} {
		cfg, err := config.Load(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Setenv("ELEVENLABS_API_KEY", "")
	cfg, err := config.Load(filepath.Join("..", "..", "examples", "deepgram-elevenlabs.toml"))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(cfg)
	if !errors.Is(err, provider.ErrMissingKey) || !strings.Contains(err.Error(), "tts.elevenlabs") || !strings.Contains(err.Error(), "ELEVENLABS_API_KEY") {
		t.Fatalf("Check = %v, want the missing ELEVENLABS_API_KEY", err)
	}
}

func TestCheckSpeechFailover(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[stt]
provider = "openai"
[stt.openai]
base_url = "http://127.0.0.1:8000/v1"
[stt.resilience]
failover = ["whisper", "sphinx"]
[tts]
provider = "openai"
[tts.openai]
base_url = "http://127.0.0.1:8880/v1"
format = "ogg"
[tts.resilience]
failover = ["flite"]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(cfg)
	for _, want := range []string{`stt.resilience.failover[0] "whisper"`, `tts.openai: tts/openai: bad config: format "ogg"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v\nwant it to mention %s", err, want)
		}
	}
	// Keys in a provider table that does not exist are refused by the file.
	if _, err := config.Parse([]byte("[tts.openai]\nvoise = \"nova\"\n")); err == nil {
		t.Error("unknown key accepted")
	}
}
