package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/transport/carrier"
)

func TestDefaultIsTheDemo(t *testing.T) {
	c := Default()
	if c.Server.Addr != "127.0.0.1:8080" || c.Server.MaxSessions != 200 || c.STT.Provider != "sphinx" || c.TTS.FliteVoice() != "slt" || c.LLM.Provider != "scripted" {
		t.Fatalf("default = %+v", c)
	}
	if c.VAD.StopDuration != 300*time.Millisecond {
		t.Fatalf("vad.stop_duration = %v", c.VAD.StopDuration)
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
	if c.Server.Addr != "127.0.0.1:9000" || c.VAD.StopDuration != 300*time.Millisecond {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.TTS.FliteVoice() != "slt" || c.VAD.StartDuration != 200*time.Millisecond {
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
		{"unknown key in a processor's section", "[turn]\nmin_words = 2\nmin_duraton = \"1s\"\n", "min_duraton"},
		{"bad duration in a processor's section", "[echo]\ntail = \"long\"\n", "line 2"},
		{"integer duration", "[idle]\ntimeout = 10\n", `"300ms"`},
		{"api key in the file", "[llm.openai]\nmodel = \"m\"\napi_key = \"sk-1\"\n", "api_key_env"},
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

// The processors' own Config types are the sections: every key reaches the
// processor's field, durations written as strings, and keys the file does
// not set keep the defaults.
func TestProcessorSections(t *testing.T) {
	c, err := Parse([]byte(`
[vad]
confidence = 0.6
bot_confidence = 0.9
model = "/m/silero.onnx"
onnxruntime = "/m/libonnxruntime.so"
threads = 2
[stt]
hmm = "/s/hmm"
interim_every = "250ms"
[turn]
min_duration = "300ms"
min_words = 2
backchannels = ["mm"]
hold = "-1s"
[echo]
tail = "200ms"
suppress_db = -30
[idle]
timeout = "7s"
prompt = "Hello?"
[llm.scripted]
token_delay = "20ms"
[llm.openai]
timeout = "3s"
extra_headers = { X-Test = "1" }
[llm.resilience]
backoff = "1s"
[orchestration]
timeout = "9s"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.VAD.Confidence != 0.6 || c.VAD.BotConfidence != 0.9 || c.VAD.StartDuration != 0 || c.VAD.Provider != "silero" {
		t.Errorf("vad = %+v", c.VAD.Config)
	}
	if c.VAD.Silero.ModelPath != "/m/silero.onnx" || c.VAD.Silero.LibraryPath != "/m/libonnxruntime.so" || c.VAD.Silero.Threads != 2 {
		t.Errorf("vad silero = %+v", c.VAD.Silero)
	}
	if c.STT.Sphinx.HMM != "/s/hmm" || c.STT.Sphinx.InterimEvery != 250*time.Millisecond || c.STT.Provider != "sphinx" {
		t.Errorf("stt = %+v", c.STT)
	}
	if c.Turn.MinDuration != 300*time.Millisecond || c.Turn.MinWords != 2 || len(c.Turn.Backchannels) != 1 || c.Turn.Hold != -time.Second {
		t.Errorf("turn = %+v", c.Turn)
	}
	if c.Echo.Tail != 200*time.Millisecond || c.Echo.Suppress != -30 {
		t.Errorf("echo = %+v", c.Echo)
	}
	if c.Idle.Timeout != 7*time.Second || c.Idle.Prompt != "Hello?" {
		t.Errorf("idle = %+v", c.Idle)
	}
	if c.LLM.Scripted.TokenDelay != 20*time.Millisecond || c.LLM.OpenAI.Timeout != 3*time.Second || c.LLM.OpenAI.ExtraHeaders["X-Test"] != "1" {
		t.Errorf("llm = %+v", c.LLM)
	}
	if c.LLM.Resilience.Backoff != time.Second || c.Orchestration.Timeout != 9*time.Second {
		t.Errorf("resilience %+v, orchestration %+v", c.LLM.Resilience, c.Orchestration)
	}
	if c.LLM.Scripted.Fallback != "" || c.TTS.Voice != "" {
		// Parse starts from the zero Config, not the embedded file.
		t.Errorf("Parse kept values it was not given: %+v", c.LLM.Scripted)
	}
}

// Fields the file cannot reach (toml:"-") keep what the program set.
func TestDecodeKeepsUnreachableFields(t *testing.T) {
	c := Default()
	c.Telemetry.MetricsInterval = 3 * time.Second
	if err := decode([]byte("[telemetry]\nmetrics = \"none\"\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Telemetry.Metrics != "none" || c.Telemetry.MetricsInterval != 3*time.Second {
		t.Fatalf("telemetry = %+v", c.Telemetry)
	}
	if _, err := Parse([]byte("[telemetry]\nmetrics_interval = \"1s\"\n")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a toml:\"-\" field was decoded: %v", err)
	}
}

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	// examples/audit-hooks.toml reads its endpoint from the environment.
	t.Setenv("VOICED_AUDIT_URL", "https://audit.example/voiced")
	t.Setenv("VOICED_AUDIT_TOKEN", "test-token")
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// FuzzParse: any input is a Config or an ErrInvalid, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(defaultFile)
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.toml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[turn]\nmin_duration = \"1s\"\n[echo]\ntail = \"x\"\n"))
	f.Add([]byte("[vad]\nstart_duration = 5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Parse(b); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse error %v is not ErrInvalid", err)
		}
	})
}

func TestServerLimits(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string // "" for ok
	}{
		{"[server]\nmax_sessions = 0", "server.max_sessions 0"},
		{"[server]\nmax_sessions = -1", "server.max_sessions -1"},
		{"[server]\nread_timeout = \"-1s\"", "server.read_timeout"},
		{"[server]\ninput_idle_timeout = \"-5s\"", "server.input_idle_timeout"},
		{"[server]\nmax_body_bytes = -1", "server.max_body_bytes"},
		{"[server]\ntls_cert = \"c.pem\"", "set both or neither"},
		{"[server]\nallowed_hosts = [\"http://x.example\"]", "server.allowed_hosts"},
		{"[server.auth]\napi_key = \"secret-in-a-file\"", "api_key"},
		{"[server]\nmax_sessions = 5\nallowed_hosts = [\"voice.example\"]\n[server.auth]\nrequired = true", ""},
	} {
		c, err := Parse([]byte(tc.file))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.file, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.file, err, tc.want)
		}
		_ = c
	}
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxSessions != DefaultMaxSessions || c.Server.ReadTimeout != 30*time.Second || c.Server.InputIdleTimeout != time.Minute || c.Server.Auth.APIKeyEnv != "VOICED_API_KEY" {
		t.Fatalf("defaults: %+v", c.Server)
	}
}

// [carriers] names each carrier's call-control API; unknown keys are
// errors there as everywhere.
func TestCarriersSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.toml")
	os.WriteFile(path, []byte(`
[carriers.twilio]
base_url = "http://127.0.0.1:9999"
secret_env = "MY_TWILIO_TOKEN"
[carriers.vonage]
user_env = "MY_APP"
`), 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if tw := c.Carriers.For("twilio"); tw.BaseURL != "http://127.0.0.1:9999" || tw.SecretEnv != "MY_TWILIO_TOKEN" || tw.UserEnv != "" {
		t.Errorf("twilio %+v", tw)
	}
	if c.Carriers.For("vonage").UserEnv != "MY_APP" || c.Carriers.For("exotel") != (carrier.API{}) {
		t.Errorf("carriers %+v", c.Carriers)
	}
	os.WriteFile(path, []byte("[carriers.twilio]\nbase = \"x\"\n"), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "base") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestRTVISection(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.RTVI; r.OutputSampleRate != 24000 || r.InputSampleRate != 16000 || r.StartTTL != 30*time.Second || r.ICEServers != nil {
		t.Errorf("defaults: %+v", r)
	}
	for _, tc := range []struct{ file, want string }{
		{"[rtvi]\noutput_sample_rate = 48000\nstart_ttl = \"10s\"\nice_servers = [\"stun:stun.example.com:3478\"]", ""},
		{"[rtvi]\noutput_sample_rate = 12345", "rtvi.output_sample_rate 12345"},
		{"[rtvi]\ninput_sample_rate = 1", "rtvi.input_sample_rate 1"},
		{"[rtvi]\nstart_ttl = \"-1s\"", "rtvi.start_ttl"},
		{"[rtvi]\nice_servers = [\"http://x\"]", "rtvi.ice_servers"},
		{"[rtvi]\nmystery = 1", "mystery"},
	} {
		_, err := Parse([]byte(tc.file))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: err = %v, want %q", tc.file, err, tc.want)
		}
	}
}

func TestSIPSections(t *testing.T) {
	c, err := Parse([]byte(`
[sip]
listen = "127.0.0.1:5060"
tls_listen = "127.0.0.1:5061"
tls_cert = "/etc/voiced/sip.pem"
tls_key = "/etc/voiced/sip.key"
[sip.auth]
allow = ["10.0.0.0/8"]
algorithms = ["MD5"]
nonce_ttl = "1m"
[[sip.auth.users]]
username = "pbx"
password_env = "PBX_PW"
[sip.trunk]
address = "trunk.example.net:5060"
username = "u"
password_env = "TRUNK_PW"
[[sip.trunks]]
name = "backup"
address = "backup.example.net"
transport = "tcp"
[[sip.registrations]]
registrar = "pbx.example.net"
user = "7001"
password_env = "REG_PW"
expires = "2m"
[sip.transfer_targets]
sales = "sip:sales@pbx.example.net"
front = "+15550123"
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.SIP
	if p.Auth.NonceTTL != time.Minute || p.Auth.Users[0].PasswordEnv != "PBX_PW" || p.Trunk.Address != "trunk.example.net:5060" ||
		p.TLSListen != "127.0.0.1:5061" || p.TLSCert != "/etc/voiced/sip.pem" || p.TLSKey != "/etc/voiced/sip.key" ||
		p.Trunks[0].Transport != "tcp" || p.Registrations[0].Expires != 2*time.Minute || p.TransferTargets["sales"] == "" || p.TransferTargets["front"] != "+15550123" {
		t.Errorf("decoded %+v", p)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"user without password_env", "[[sip.auth.users]]\nusername = \"a\"\n", "sip.auth.users[0]"},
		{"bad algorithm", "[sip.auth]\nalgorithms = [\"SHA-1\"]\n", "SHA-1"},
		{"trunk without address", "[sip.trunk]\nusername = \"u\"\n", "address is required"},
		{"trunk transport", "[sip.trunk]\naddress = \"a\"\ntransport = \"sctp\"\n", "sctp"},
		{"two default trunks", "[sip.trunk]\naddress = \"a\"\n[[sip.trunks]]\naddress = \"b\"\n", "used twice"},
		{"password in the file", "[sip.trunk]\naddress = \"a\"\npassword = \"x\"\n", "password"},
		{"registration without user", "[[sip.registrations]]\nregistrar = \"pbx\"\n", "sip.registrations[0]"},
		{"transfer target not sip", "[sip.transfer_targets]\nx = \"tel:123\"\n", "sip.transfer_targets.x"},
		{"transfer target short number", "[sip.transfer_targets]\nx = \"+12\"\n", "sip.transfer_targets.x"},
		{"tls_listen without a certificate", "[sip]\ntls_listen = \"127.0.0.1:5061\"\n", "sip.tls_listen"},
		{"tls_cert without tls_key", "[sip]\ntls_cert = \"c.pem\"\n", "sip.tls_cert and sip.tls_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
