package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsTheDemo(t *testing.T) {
	c := Default()
	if c.Server.Addr != ":8080" || c.STT.Provider != "sphinx" || c.TTS.Voice != "slt" || c.LLM.Provider != "scripted" {
		t.Fatalf("default = %+v", c)
	}
	if time.Duration(c.VAD.StopDuration) != 500*time.Millisecond {
		t.Fatalf("vad.stop_duration = %v", time.Duration(c.VAD.StopDuration))
	}
	if len(c.LLM.Scripted.Rules) < 3 {
		t.Fatalf("default has %d scripted rules", len(c.LLM.Scripted.Rules))
	}
}

func TestLoadOverridesDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.toml")
	os.WriteFile(path, []byte(`
[server]
addr = "127.0.0.1:9000"
[vad]
stop_duration = "300ms"
[[llm.scripted.rules]]
match = "ping"
reply = "pong"
`), 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != "127.0.0.1:9000" || time.Duration(c.VAD.StopDuration) != 300*time.Millisecond {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.TTS.Voice != "slt" || time.Duration(c.VAD.StartDuration) != 200*time.Millisecond {
		t.Fatalf("defaults lost: %+v", c)
	}
	if len(c.LLM.Scripted.Rules) != 1 || c.LLM.Scripted.Rules[0].Reply != "pong" {
		t.Fatalf("rules = %+v, want the file's one rule", c.LLM.Scripted.Rules)
	}
}

func TestStrictErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown key", "[server]\naddr = \":1\"\nport = 3\n", "port"},
		{"unknown table", "[vadd]\nconfidence = 0.5\n", "vadd"},
		{"bad duration", "[vad]\nstop_duration = \"soon\"\n", "line 2"},
		{"wrong type", "[server]\nmax_sessions = \"many\"\n", "line 2"},
		{"bad provider", "[tts]\nprovider = \"polly\"\n", "tts.provider"},
		{"bad confidence", "[vad]\nconfidence = 2.0\n", "vad.confidence"},
		{"syntax", "[server\n", "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}
