package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
)

// providerConfig is voiced with OpenAI-compatible speech pointed at the
// fakes, and extra TOML appended.
func providerConfig(t *testing.T, stt, tts *openaitest.Server, extra string) config.Config {
	t.Helper()
	t.Setenv("VOICED_E2E_OPENAI_KEY", "sk-e2e")
	src := fmt.Sprintf(`
[stt]
provider = "openai"
[stt.openai]
base_url = %q
api_key_env = "VOICED_E2E_OPENAI_KEY"
language = "en"

[tts]
provider = "openai"
[tts.openai]
base_url = %q
api_key_env = "VOICED_E2E_OPENAI_KEY"
voice = "nova"
format = "mp3"
%s`, stt.URL, tts.URL, extra)
	cfg, err := config.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// converse says one utterance and returns the final transcript event's
// text once the bot has finished an audible answer.
func converse(t *testing.T, c *client, said string) string {
	t.Helper()
	c.silence(400 * time.Millisecond)
	since := time.Now()
	c.stream(speech(t, said))
	if !c.silenceUntil(20*time.Second, func() bool { return c.count("bot_stopped_speaking", since) > 0 }) {
		evs, _ := c.snapshot()
		t.Fatalf("the bot did not finish answering; events: %v", types(evs))
	}
	final, ok := c.first("transcript", since)
	for ok && !final.Final {
		final, ok = c.first("transcript", final.At.Add(time.Nanosecond))
	}
	if !ok {
		t.Fatal("no final transcript")
	}
	if _, ok := c.firstAudible(since); !ok {
		t.Fatal("no audible reply")
	}
	return final.Text
}

// TestE2EOpenAISpeech holds a spoken conversation with recognition and
// synthesis on the OpenAI audio API (the fake): the transcript is the
// fake's, and the answer is heard, decoded from MP3.
func TestE2EOpenAISpeech(t *testing.T) {
	stt := openaitest.New(t, openaitest.Config{Key: "sk-e2e", Language: "en", Transcript: "what is the weather like today"})
	tts := openaitest.New(t, openaitest.Config{Key: "sk-e2e", Voices: []string{"nova"}, Chunk: 1024, ChunkEvery: 10 * time.Millisecond})
	c := dial(t, startConfigured(t, providerConfig(t, stt, tts, "")), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	if got := converse(t, c, "hello there how are you"); got != "what is the weather like today" {
		t.Fatalf("transcript %q", got)
	}
	reqs := stt.Requests()
	if len(reqs) != 1 || len(reqs[0].Audio) < 16000 {
		t.Fatalf("transcription requests %d (audio %d samples)", len(reqs), len(reqs[0].Audio))
	}
	said := tts.Requests()
	if len(said) == 0 || !strings.Contains(said[0].Input, "weather") {
		t.Fatalf("speech requests %+v", said)
	}
}

// TestE2EProviderFailsMidTurn: the recognizer is down (503) and the voice
// drops its connection mid-sentence; the embedded engines take over and the
// conversation carries on.
func TestE2EProviderFailsMidTurn(t *testing.T) {
	stt := openaitest.New(t, openaitest.Config{Key: "sk-e2e", Language: "en"})
	tts := openaitest.New(t, openaitest.Config{Key: "sk-e2e", Voices: []string{"nova"}, Chunk: 1024, ChunkEvery: 10 * time.Millisecond})
	stt.Push("/v1/audio/transcriptions", openaitest.Fault{Status: 503})
	tts.Push("/v1/audio/speech", openaitest.Fault{DropAfter: 4000})
	cfg := providerConfig(t, stt, tts, `
[stt.resilience]
failover = ["sphinx"]
[tts.resilience]
failover = ["flite"]
`)
	c := dial(t, startConfigured(t, cfg), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	got := converse(t, c, "hello there")
	if overlap("hello there", got) == 0 {
		t.Fatalf("sphinx heard %q", got)
	}
	if evs, _ := c.snapshot(); strings.Contains(types(evs), "error") {
		t.Fatalf("an error reached the client: %v", types(evs))
	}
	// The next turn is back on the primaries.
	if got := converse(t, c, "what is your name"); got != "what is the weather like today" {
		t.Fatalf("second turn %q", got)
	}
}

// TestE2ESpeechFaultsWithoutFailover: with no failover configured, a
// recognizer that fails (503) drops that turn with an error event and no
// answer, and a voice that fails (503) gives an error event instead of the
// sentence; the session stays up and the next turns are heard.
func TestE2ESpeechFaultsWithoutFailover(t *testing.T) {
	stt := openaitest.New(t, openaitest.Config{Key: "sk-e2e", Language: "en"})
	tts := openaitest.New(t, openaitest.Config{Key: "sk-e2e", Voices: []string{"nova"}, Chunk: 1024, ChunkEvery: 10 * time.Millisecond})
	c := dial(t, startConfigured(t, providerConfig(t, stt, tts, "")), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	errorAfter := func(since time.Time) Event {
		t.Helper()
		if !c.silenceUntil(20*time.Second, func() bool { return c.count("error", since) > 0 }) {
			evs, _ := c.snapshot()
			t.Fatalf("no error event; events: %v", types(evs))
		}
		e, _ := c.first("error", since)
		return e
	}

	// The recognizer fails: the turn is dropped with an error event.
	stt.Push("/v1/audio/transcriptions", openaitest.Fault{Status: 503})
	c.silence(400 * time.Millisecond)
	since := time.Now()
	c.stream(speech(t, "hello there"))
	if e := errorAfter(since); !strings.Contains(e.Message, "stt") {
		t.Errorf("error event %+v, want the recognizer's", e)
	}
	if n := len(tts.Requests()); n != 0 {
		t.Errorf("the dropped turn was answered (%d speech requests)", n)
	}
	if got := converse(t, c, "what is your name"); got != "what is the weather like today" {
		t.Fatalf("the turn after the recognizer's failure: %q", got)
	}

	// The voice fails: an error event, and the next turn is heard.
	tts.Push("/v1/audio/speech", openaitest.Fault{Status: 503})
	c.silence(400 * time.Millisecond)
	since = time.Now()
	c.stream(speech(t, "hello again"))
	if e := errorAfter(since); !strings.Contains(e.Message, "tts") {
		t.Errorf("error event %+v, want the voice's", e)
	}
	c.silence(2 * time.Second) // what was left of that answer plays
	if got := converse(t, c, "one more time"); got != "what is the weather like today" {
		t.Fatalf("the turn after the voice's failure: %q", got)
	}
}
