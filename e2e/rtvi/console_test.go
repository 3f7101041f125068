package rtvi

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/browsertest"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// screenshotEnv names the file TestVoiceUIKitConsole writes its screenshot
// to when set: VOICED_RTVI_SCREENSHOT=$PWD/docs/rtvi-console.png
// regenerates the one docs/rtvi.md shows.
const screenshotEnv = "VOICED_RTVI_SCREENSHOT"

// consoleState is what the console page shows, read from its DOM.
type consoleState struct {
	Text   string   `json:"text"`   // the page's text
	Events []string `json:"events"` // the client's events, for the log
	Errors []any    `json:"errors"`
}

// TestVoiceUIKitConsole: voice-ui-kit's ConsoleTemplate, as published,
// connects to voiced with its own Connect button, over Pipecat's WebSocket
// transport, and renders a spoken turn (the user's words as voiced
// transcribed them, and the bot's answer) and a typed one. Then the
// client's send-text options: run_immediately false is not answered,
// audio_response false is answered in text only.
func TestVoiceUIKitConsole(t *testing.T) {
	dist := bundle(t)
	if _, err := os.Stat(filepath.Join(dist, "console.js")); err != nil {
		why := "no e2e/rtvi/dist/console.js (run e2e/rtvi/build.sh, or make services)"
		if os.Getenv("VOICED_REQUIRE_MODELS") == "1" || os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	browsertest.Chromium(t)
	page := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer page.Close()
	cfg := config.Default()
	cfg.Server.Origins = []string{page.URL}
	srv := testenv.Start(t, cfg, nil)

	// The microphone: silence while the page connects, the question, then
	// silence while the bot answers.
	const rate = 16000
	pcm := make([]int16, 8*rate)
	pcm = append(pcm, testenv.Speech(t, first)...)
	pcm = append(pcm, make([]int16, 20*rate)...)
	mic := filepath.Join(t.TempDir(), "mic.wav")
	if err := audio.SaveWAV(mic, frame.Mono16k, pcm); err != nil {
		t.Fatal(err)
	}
	b := browsertest.Start(t, browsertest.Options{
		Microphone: mic,
		Timeout:    3 * time.Minute,
		Dump:       "window.consoleState",
	})
	if st := b.Navigate(page.URL + "/console.html?endpoint=" + srv.URL + "/start"); st != 200 {
		t.Fatalf("loading the page: HTTP %d", st)
	}
	read := func() consoleState {
		var s consoleState
		b.Eval(`({text: document.body.innerText, events: window.consoleState.events, errors: window.consoleState.errors})`, &s)
		return s
	}
	const step = 45 * time.Second

	// The user connects with the template's own button.
	connect := `[...document.querySelectorAll("button")].find((b) => /^connect$/i.test(b.innerText.trim()))`
	// (It is there before the client is made, and enabled while the
	// client initializes its devices, when a click is ignored.)
	if !b.Wait(step, `() => { const b = `+connect+`, c = window.consoleClient;
		return !!b && !b.disabled && !!c && c.state === "initialized"; }`) {
		t.Fatalf("no Connect button: the page shows %q", read().Text)
	}
	b.Eval(connect+`.click(), true`, nil)
	if !b.Wait(step, `() => window.consoleState.events.includes("botReady")`) {
		t.Fatalf("not connected: events %q, errors %v, the page shows %q", read().Events, read().Errors, read().Text)
	}

	// The spoken turn shows in the conversation: the user's transcript,
	// then the bot's answer (the built-in demo agent's: "My name is
	// voiced. ...").
	var final string
	if !b.Wait(2*step, `() => window.consoleState.finals.length > 0`) {
		t.Fatalf("no final transcript: events %q", read().Events)
	}
	b.Eval(`window.consoleState.finals[0]`, &final)
	if !b.Wait(step, `(said) => { const t = document.body.innerText.toLowerCase(), i = t.indexOf(said.toLowerCase());
		return i >= 0 && /my\s+name\s+is\s+voiced/.test(t.slice(i)); }`, strings.TrimSpace(final)) {
		t.Fatalf("the conversation does not show the turn (transcript %q): the page shows %q", final, read().Text)
	}
	if !b.Wait(step, `() => window.consoleState.events.includes("botStoppedSpeaking")`) {
		t.Errorf("the bot did not finish speaking: events %q", read().Events)
	}

	// A typed turn, with the template's text box (send-text): the message
	// and its spoken answer show after the spoken turn. (client-react
	// closes the bot's message 2.5 s after it stops speaking, or when the
	// user speaks: a message typed sooner would be shown before the
	// answer to it, which would join the first. Timers run in order, so
	// 4 s by the page's clock is past that one.)
	if !b.Wait(step, `() => performance.now() >= window.consoleState.stoppedAt + 4000`) {
		t.Fatal("the page's clock did not move on")
	}
	b.Type(`[placeholder^="Type message"]`, "hello\r")
	if !b.Wait(step, `() => { const t = document.body.innerText.toLowerCase();
		const answer1 = t.indexOf("my name is voiced"), typed = t.indexOf("\nhello\n", answer1);
		return answer1 >= 0 && typed > answer1 && t.indexOf("hello! i am voiced", typed) > typed; }`) {
		t.Fatalf("the conversation does not show the typed turn: the page shows %q", read().Text)
	}
	// Let the answer finish playing, then keep the picture.
	if !b.Wait(step, `() => window.consoleState.events.filter((e) => e === "botStoppedSpeaking").length >= 2`) {
		t.Errorf("the bot did not finish speaking: events %q", read().Events)
	}
	shot := filepath.Join(t.TempDir(), "console.png")
	b.Screenshot(shot)
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the screenshot: %v", err)
	}
	t.Logf("screenshot %dx%d, %d bytes", img.Bounds().Dx(), img.Bounds().Dy(), len(data))
	if out := os.Getenv(screenshotEnv); out != "" {
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// send-text's options, from the client: a message to remember, not
	// answered now, then a question answered in text only.
	var n int
	b.Eval(`window.consoleState.events.length`, &n)
	b.Eval(`window.consoleClient.sendText("please remember the word apricot", {run_immediately: false}), true`, nil)
	b.Eval(`window.consoleClient.sendText("what is your name", {audio_response: false}), true`, nil)
	if !b.Wait(step, `() => window.consoleState.outputs.some((o) => o.will_be_spoken === false && o.spoken === false && /voiced/i.test(o.text))`) {
		t.Fatalf("no text-only answer: events %q", read().Events[n:])
	}
	// The answer is over (bot-llm-stopped) and 2 s more have passed on
	// the page: one answer was given (to the question, not the note), and
	// nothing was spoken.
	if !b.Wait(step, `(n) => window.consoleState.events.slice(n).includes("botLlmStopped") &&
		performance.now() >= window.consoleState.llmStoppedAt + 2000`, n) {
		t.Fatalf("the text-only answer did not end: events %q", read().Events[n:])
	}
	var after []string
	b.Eval(`window.consoleState.events.slice(`+strconv.Itoa(n)+`)`, &after)
	if c := slices.Index(after, "botStartedSpeaking"); c >= 0 || strings.Count(strings.Join(after, " "), "botLlmStarted") != 1 {
		t.Errorf("after the note and the text-only question, events %q: want one answer, not spoken", after)
	}

	if ex := b.Exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %q", ex)
	}
	t.Logf("transcript %q; events %q", final, read().Events)
}
