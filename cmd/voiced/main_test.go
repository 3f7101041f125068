package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check-config accepts every example and the built-in file, and names an
// unknown provider with the known ones, without loading any model.
func TestCheckConfig(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "CARTESIA_API_KEY", "GROQ_API_KEY"} {
		t.Setenv(k, "test-key") // the speech examples name their keys
	}
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	files = append(files, "../../internal/config/default.toml")
	for _, f := range files {
		var out bytes.Buffer
		if err := run([]string{"check-config", f}, &out, &out); err != nil || out.String() != f+": ok\n" {
			t.Errorf("check-config %s = %v, %q", f, err, out.String())
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[tts]\nprovider = \"polly\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run([]string{"check-config", bad}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `tts.provider "polly" (known: cartesia, elevenlabs, flite, openai)`) || out.Len() != 0 {
		t.Fatalf("check-config of an unknown provider = %v, %q", err, out.String())
	}
}

// check-config names the variable that should hold a provider's key.
func TestCheckConfigNamesTheMissingKey(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	var out bytes.Buffer
	err := run([]string{"check-config", "../../examples/openai.toml"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "stt.openai") || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("check-config without the key = %v, %q", err, out.String())
	}
}

// check-config names a tool no agent can have, and a declared tool's
// problems with their line.
func TestCheckConfigTools(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "tools.toml")
	os.WriteFile(bad, []byte(`
[[tools]]
name = "ok_tool"
url = "https://example.com/{id}"
parameters = '{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}'

[[agents]]
name = "a"
tools = ["ok_tool", "typo_tool", "get_time"]
`), 0o644)
	var out bytes.Buffer
	err := run([]string{"check-config", bad}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `agents[0] (a).tools: "typo_tool"`) || strings.Contains(err.Error(), "ok_tool") {
		t.Fatalf("check-config = %v", err)
	}
	os.WriteFile(bad, []byte("\n[[tools]]\nname = \"t\"\nurl = \"https://example.com/?key=${VOICED_SURELY_UNSET}\"\n"), 0o644)
	err = run([]string{"check-config", bad}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "tools[0] (line 2)") || !strings.Contains(err.Error(), "VOICED_SURELY_UNSET") {
		t.Fatalf("check-config = %v", err)
	}
}

func TestBenchRefusesArguments(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"bench", "extra"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `unexpected arguments ["extra"]`) {
		t.Fatalf("bench extra = %v", err)
	}
}
