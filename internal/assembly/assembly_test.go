package assembly

import (
	"errors"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/config"
)

func TestCheckListsTheKnownProviders(t *testing.T) {
	if err := Check(config.Default()); err != nil {
		t.Fatalf("Check(default) = %v", err)
	}
	cfg, err := config.Parse([]byte(`
[vad]
provider = "webrtcvad"
[stt]
provider = "whisper"
[tts]
provider = "polly"
[llm]
provider = "claude"
[orchestration]
mode = "committee"
[[agents]]
name = "a"
`))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(cfg)
	if !errors.Is(err, ErrUnknownProvider) {
		t.Fatalf("Check = %v, want ErrUnknownProvider", err)
	}
	for _, want := range []string{
		`vad.provider "webrtcvad" (known: silero)`,
		`stt.provider "whisper" (known: deepgram, openai, sphinx)`,
		`tts.provider "polly" (known: cartesia, elevenlabs, flite, openai)`,
		`llm.provider "claude" (known: openai, scripted)`,
		`orchestration.mode "committee" (known: collaborative, graph, handoff`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v\nwant it to mention %s", err, want)
		}
	}
	// Load refuses before it loads anything.
	if _, err := Load(t.Context(), cfg, Options{}); !errors.Is(err, ErrUnknownProvider) {
		t.Fatalf("Load = %v, want ErrUnknownProvider", err)
	}
}

// fakeProvider records its configuration and its Close.
type fakeProvider struct {
	voice  string
	closed int
}

func (f *fakeProvider) Close() error { f.closed++; return nil }

func TestProvideClosesWhatItMade(t *testing.T) {
	made := &fakeProvider{}
	table := map[string]func(config.TTS) (*fakeProvider, error){
		"fake": func(c config.TTS) (*fakeProvider, error) { made.voice = c.Voice; return made, nil },
		"bad":  func(config.TTS) (*fakeProvider, error) { return nil, errors.New("no voice") },
	}
	a := &Assembly{}
	p, err := provide(a, "tts", "fake", table, config.TTS{Provider: "fake", Voice: "v1"})
	if err != nil || p != made || made.voice != "v1" {
		t.Fatalf("provide = %v, %v (voice %q)", p, err, made.voice)
	}
	if _, err := provide(a, "tts", "bad", table, config.TTS{}); err == nil || !strings.Contains(err.Error(), "tts bad: no voice") {
		t.Fatalf("provide(bad) = %v", err)
	}
	if _, err := provide(a, "tts", "nope", table, config.TTS{}); !errors.Is(err, ErrUnknownProvider) || !strings.Contains(err.Error(), "known: bad, fake") {
		t.Fatalf("provide(nope) = %v", err)
	}
	if err := a.Close(); err != nil || made.closed != 1 {
		t.Fatalf("Close = %v, closed %d times", err, made.closed)
	}
	if err := a.Close(); err != nil || made.closed != 1 {
		t.Fatalf("second Close = %v, closed %d times", err, made.closed)
	}
}

func TestSessionConfigTakesTheSections(t *testing.T) {
	cfg, err := config.Parse([]byte("[vad]\nconfidence = 0.7\n[tts]\nvoice = \"awb\"\n[turn]\nmin_words = 3\n[session]\necho_cancel = true\n[echo]\ntail = \"100ms\"\n[idle]\nprompt = \"Hi?\"\n[agent]\nmax_history = 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := SessionConfig(cfg)
	if sc.VAD.Confidence != 0.7 || sc.Voice != "awb" || sc.Turn.MinWords != 3 || !sc.EchoCancel ||
		sc.Echo.Tail.Milliseconds() != 100 || sc.Idle.Prompt != "Hi?" || sc.Agent.MaxHistory != 7 || sc.Agent.Name != "assistant" {
		t.Fatalf("SessionConfig = %+v", sc)
	}
}
