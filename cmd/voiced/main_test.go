package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/auth"
)

// check-config accepts every example and the built-in file, and names an
// unknown provider with the known ones, without loading any model.
func TestCheckConfig(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "CARTESIA_API_KEY", "GROQ_API_KEY", "VOICED_AUDIT_TOKEN"} {
		t.Setenv(k, "test-key") // the speech examples name their keys
	}
	t.Setenv("VOICED_AUDIT_URL", "https://audit.example/voiced") // examples/audit-hooks.toml
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

// check-config refuses what serve would refuse when it builds the
// providers: both run assembly.Check.
func TestCheckConfigRunsServesChecks(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"[[llm.scripted.rules]]\nmatch = \"(unclosed\"\nreply = \"x\"\n", "llm.scripted.rules"},
		{"[tts]\nvoice = \"nobody\"\n", `tts.voice: flite: unknown voice: "nobody"`},
		{"[telemetry]\ntraces = \"zipkin\"\n", "telemetry"},
		{"[telemetry]\nsample_ratio = 1.5\n", "sample_ratio"},
		{"[turn]\ninterruption = \"sometimes\"\n", "turn:"},
		{"[server]\nread_timeout = \"-1s\"\n", "server.read_timeout"},
		{"[[agents]]\nname = \"a\"\nvoice = \"nobody\"\n", "agents[0].voice"},
		// What the orchestration features name is checked, with lines.
		{"[[agents]]\nname = \"a\"\n[[agents]]\nname = \"b\"\n[orchestration]\nmode = \"graph\"\n[[orchestration.graph.edges]]\nfrom = \"a\"\nto = \"b\"\n[[orchestration.graph.edges]]\nfrom = \"b\"\nto = \"a\"\n", "orchestration.graph.edges (line 7): cycle a -> b -> a"},
		{"[[agents]]\nname = \"a\"\nhandoffs = [\"b\"]\n  [agents.handoff.b]\n  after_tools = [\"verify\"]\n[[agents]]\nname = \"b\"\n", `agents[0] (a).handoff.b.after_tools: "verify"`},
		{"[[agents]]\nname = \"a\"\n  [[agents.subscribe]]\n  topic = \"x\"\n  action = \"later\"\n", "agents[0].subscribe[0].action (line 5)"},
		{"[[hooks]]\nurl = \"http://127.0.0.1:9/\"\nevents = [\"after_all\"]\n", "hooks[0] (line 1)"},
	} {
		f := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(f, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := run([]string{"check-config", f}, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check-config of %q = %v, want an error naming %q", tc.file, err, tc.want)
		}
	}
}

func TestExposed(t *testing.T) {
	for _, tc := range []struct {
		addr           string
		auth, insecure bool
		refused        bool
	}{
		{"127.0.0.1:8080", false, false, false},
		{"[::1]:8080", false, false, false},
		{"localhost:8080", false, false, false},
		{":8080", false, false, true},
		{"0.0.0.0:8080", false, false, true},
		{"10.0.0.5:8080", false, false, true},
		{"voice.example:443", false, false, true},
		{":8080", true, false, false},
		{":8080", false, true, false},
	} {
		err := exposed(tc.addr, tc.auth, tc.insecure)
		if (err != nil) != tc.refused || (err != nil && (!errors.Is(err, errExposed) || !strings.Contains(err.Error(), "VOICED_API_KEY"))) {
			t.Errorf("exposed(%q, auth %v, insecure %v) = %v, want refused %v", tc.addr, tc.auth, tc.insecure, err, tc.refused)
		}
	}
}

// serve refuses to start on every interface without authentication, and
// says why, before it loads anything.
func TestServeRefusesExposure(t *testing.T) {
	t.Setenv("VOICED_API_KEY", "")
	t.Setenv("VOICED_TOKEN_SECRET", "")
	var out bytes.Buffer
	err := run([]string{"serve", "--addr", ":0"}, &out, &out)
	if !errors.Is(err, errExposed) {
		t.Fatalf("serve --addr :0 = %v, want errExposed", err)
	}
}

func TestAccessToken(t *testing.T) {
	secret := strings.Repeat("z", 32)
	t.Setenv("VOICED_TOKEN_SECRET", secret)
	var out bytes.Buffer
	if err := run([]string{"token", "access", "--identity", "alice", "--agent", "support", "--ttl", "5m"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	g, err := auth.New(auth.Config{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Verify(strings.TrimSpace(out.String()))
	if err != nil || p.Identity != "alice" || p.Agent != "support" {
		t.Fatalf("minted token verifies as %+v, %v", p, err)
	}
	t.Setenv("VOICED_TOKEN_SECRET", "")
	if err := run([]string{"token", "access", "--identity", "alice"}, &out, &out); err == nil || !strings.Contains(err.Error(), "VOICED_TOKEN_SECRET") {
		t.Fatalf("without a secret: %v", err)
	}
}

// check-config runs serve's [webrtc] checks: a TURN server's credentials
// must be in the variables the file names.
func TestCheckConfigWebRTC(t *testing.T) {
	f := filepath.Join(t.TempDir(), "turn.toml")
	os.WriteFile(f, []byte("[[webrtc.ice_servers]]\nurls = [\"turn:turn.example:3478\"]\nusername_env = \"VOICED_TEST_TURN_USER\"\ncredential_env = \"VOICED_TEST_TURN_CRED\"\n"), 0o644)
	t.Setenv("VOICED_TEST_TURN_USER", "")
	t.Setenv("VOICED_TEST_TURN_CRED", "")
	var out bytes.Buffer
	err := run([]string{"check-config", f}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "$VOICED_TEST_TURN_USER and $VOICED_TEST_TURN_CRED") {
		t.Fatalf("check-config without TURN credentials = %v, %q", err, out.String())
	}
	t.Setenv("VOICED_TEST_TURN_USER", "u")
	t.Setenv("VOICED_TEST_TURN_CRED", "c")
	out.Reset()
	if err := run([]string{"check-config", f}, &out, &out); err != nil || out.String() != f+": ok\n" {
		t.Fatalf("check-config with TURN credentials = %v, %q", err, out.String())
	}
}
