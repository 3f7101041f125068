package assembly

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs/elevenlabstest"
)

// failover = [...] in [stt] and [tts] is the resilience table's list: the
// chain is checked (names, each provider's key variable), and both at
// once are refused.
func TestDirectFailoverList(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("CARTESIA_API_KEY", "")
	cfg, err := config.Parse([]byte(`
[stt]
provider = "sphinx"
failover = ["openai", "whisper"]
[tts]
provider = "flite"
failover = ["cartesia"]
[tts.cartesia]
voice = "c-voice"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.TTS.Backups(); !slices.Equal(got, []string{"cartesia"}) {
		t.Fatalf("tts backups %q", got)
	}
	err = Check(cfg)
	for _, want := range []string{`stt.failover[1] "whisper"`, "stt.openai:", "OPENAI_API_KEY", "tts.cartesia:", "CARTESIA_API_KEY"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v\nwant it to mention %s", err, want)
		}
	}
	_, err = config.Parse([]byte(`
[tts]
failover = ["flite"]
[tts.resilience]
failover = ["openai"]
`))
	if err == nil || !strings.Contains(err.Error(), "tts.failover and tts.resilience.failover are both set") {
		t.Fatalf("both lists: %v", err)
	}
}

// Agents' voices are checked per provider: flite's names wherever flite
// speaks, providers outside the chain, agents that share a voice on the
// primary but not on a backup.
func TestCheckAgentVoices(t *testing.T) {
	t.Setenv("ELEVENLABS_API_KEY", "k")
	cfg, err := config.Parse([]byte(`
[tts]
provider = "elevenlabs"
failover = ["flite"]
[tts.elevenlabs]
voice = "el-default"
[tts.flite]
voice = "bogus"
[[agents]]
name = "a"
voice = "el-a"
voices = { flite = "awb", cartesia = "x" }
[[agents]]
name = "b"
voice = "el-a"
voices = { flite = "rms" }
[[agents]]
name = "c"
voices = { flite = "nobody" }
`))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(cfg)
	for _, want := range []string{
		`tts.flite.voice: flite: unknown voice: "bogus"`,
		`agents[2].voices.flite: flite: unknown voice: "nobody"`,
		`agents[0].voices: "cartesia" is not tts.provider or one of its failover (elevenlabs, flite)`,
		`agents[1].voices.flite: agents "a" and "b" speak "el-a" on elevenlabs but differ on flite`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v\nwant it to mention %s", err, want)
		}
	}
}

// TestBackupSpeaksTheAgentsVoice: when ElevenLabs fails, the OpenAI-
// compatible backup speaks each agent's voice for it (as the agent's
// ElevenLabs voice is handed to the synthesizer), or its own table's voice
// for an agent without one; never an ElevenLabs voice ID.
func TestBackupSpeaksTheAgentsVoice(t *testing.T) {
	el := elevenlabstest.New(t, elevenlabstest.Config{})
	oa := openaitest.New(t, openaitest.Config{Key: "oa", Voices: []string{"nova", "alloy"}})
	t.Setenv("VOICED_TEST_XI", "k")
	t.Setenv("VOICED_TEST_OA", "oa")
	cfg, err := config.Parse([]byte(`
[tts]
provider = "elevenlabs"
failover = ["openai"]
[tts.elevenlabs]
base_url = "` + el.URL + `"
api_key_env = "VOICED_TEST_XI"
voice = "el-default"
warm = false
[tts.openai]
base_url = "` + oa.URL + `"
api_key_env = "VOICED_TEST_OA"
voice = "alloy"
format = "pcm"
[[agents]]
name = "sales"
voice = "el-sales"
voices = { openai = "nova" }
[[agents]]
name = "support"
voice = "el-support"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err != nil {
		t.Fatal(err)
	}
	a := &Assembly{}
	defer a.Close()
	syn, err := synthesizer(a, cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, voice := range []string{"el-sales", "el-support", ""} {
		el.Push(elevenlabstest.Fault{Status: 503})
		if err := syn.Synthesize(context.Background(), "Hello there.", voice, func([]int16) error { return nil }); err != nil {
			t.Fatalf("voice %q: %v", voice, err)
		}
	}
	var got []string
	for _, r := range oa.Requests() {
		got = append(got, r.Voice)
	}
	if want := []string{"nova", "alloy", "alloy"}; !slices.Equal(got, want) {
		t.Fatalf("the backup spoke voices %q, want %q", got, want)
	}
	if said := el.Said(); len(said) != 0 {
		t.Fatalf("ElevenLabs spoke %+v through its failure", said)
	}
}
