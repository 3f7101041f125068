// Package rtvi is the end-to-end test of voiced with Pipecat's own client:
// the published @pipecat-ai/client-js and @pipecat-ai/websocket-transport
// (pinned in package-lock.json), bundled by build.sh into dist/, run in
// headless Chromium (internal/browsertest) from a page on another origin
// than the server, with speech synthesized by flite as the microphone.
//
// It skips when the bundle, the VAD model or Chromium is missing, and
// fails instead under VOICED_REQUIRE_MODELS=1 or VOICED_REQUIRE_SERVICES=1
// (`make test`, whose `services` step runs build.sh).
package rtvi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/browsertest"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// What the microphone says: a request for a long answer, then, while the
// bot speaks it, words that interrupt it.
const (
	first  = "please tell me a story"
	second = "stop stop please stop talking"
)

type botOutput struct {
	Text         string `json:"text"`
	Spoken       bool   `json:"spoken"`
	SpokenStatus string `json:"spoken_status"`
	SegmentID    int    `json:"segment_id"`
}

type state struct {
	Connected   bool            `json:"connected"`
	BotReady    json.RawMessage `json:"botReady"`
	Transport   string          `json:"transport"`
	Events      []string        `json:"events"`
	Transcripts []struct {
		Text  string `json:"text"`
		Final bool   `json:"final"`
	} `json:"transcripts"`
	BotOutputs      []botOutput       `json:"botOutputs"`
	TTSTexts        []string          `json:"ttsTexts"`
	Errors          []json.RawMessage `json:"errors"`
	BotAudioSamples int               `json:"botAudioSamples"`
	BotAudioPeak    float64           `json:"botAudioPeak"`
	StartError      *string           `json:"startError"`
}

func (s state) finals() []string {
	var out []string
	for _, t := range s.Transcripts {
		if t.Final {
			out = append(out, t.Text)
		}
	}
	return out
}

// bundle returns dist/, skipping (or failing, when every dependency is
// required) without it.
func bundle(t *testing.T) string {
	dist, _ := filepath.Abs("dist")
	if _, err := os.Stat(filepath.Join(dist, "bundle.js")); err != nil {
		why := "no e2e/rtvi/dist/bundle.js (run e2e/rtvi/build.sh, or make services)"
		if os.Getenv("VOICED_REQUIRE_MODELS") == "1" || os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return dist
}

// micWAV writes the microphone's speech: 8 s of silence (the fake
// microphone starts with getUserMedia, seconds before client-js records
// on a busy machine), the request, 6 s of silence (the bot starts its
// story), the interruption, then silence.
func micWAV(t *testing.T) string {
	const rate = 16000
	var pcm []int16
	pcm = append(pcm, make([]int16, 8*rate)...)
	pcm = append(pcm, testenv.Speech(t, first)...)
	pcm = append(pcm, make([]int16, 6*rate)...)
	pcm = append(pcm, testenv.Speech(t, second)...)
	pcm = append(pcm, make([]int16, 6*rate)...)
	path := filepath.Join(t.TempDir(), "mic.wav")
	if err := audio.SaveWAV(path, frame.Mono16k, pcm); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPipecatClientWebSocket: client-js's startBotAndConnect against
// voiced's /start, over Pipecat's WebSocket transport.
func TestPipecatClientWebSocket(t *testing.T) {
	dist := bundle(t)
	browsertest.Chromium(t)
	page := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer page.Close()
	cfg := config.Default()
	cfg.Server.Origins = []string{page.URL} // the app's page is on another origin
	srv := testenv.Start(t, cfg, nil)
	b := browsertest.Start(t, browsertest.Options{
		Microphone: micWAV(t),
		Timeout:    4 * time.Minute,
		Dump:       "window.rtviState",
	})
	if st := b.Navigate(page.URL + "/index.html"); st != 200 {
		t.Fatalf("loading the page: HTTP %d", st)
	}
	read := func() state {
		var s state
		b.Eval("window.rtviState", &s)
		return s
	}
	const step = 30 * time.Second

	// 1. startBotAndConnect resolves with bot-ready.
	b.Eval(`window.rtvi.start(`+jsString(srv.URL+"/start")+`, {user: "e2e"}), true`, nil)
	if !b.Wait(step, `() => window.rtviState.botReady !== null || window.rtviState.startError !== null`) {
		t.Fatal("startBotAndConnect did not settle")
	}
	s := read()
	if s.StartError != nil || !strings.Contains(string(s.BotReady), `"version":"2.1.0"`) {
		t.Fatalf("startBotAndConnect: %v, bot-ready %s", s.StartError, s.BotReady)
	}

	// 2. The spoken question: a final transcription, the bot's audio and
	// its words, reported as spoken.
	if !b.Wait(step, `() => { const s = window.rtviState;
		return s.transcripts.some((t) => t.final && t.text.trim() !== "") && s.botAudioSamples > 0 &&
			s.botOutputs.some((o) => o.spoken === true); }`) {
		t.Fatalf("no spoken turn: final transcripts %q, %d bot audio samples, %d bot-outputs", read().finals(), read().BotAudioSamples, len(read().BotOutputs))
	}

	// 3. The interruption, spoken over the answer: the answer's sentence
	// is cut (bot-output in progress, with the words heard), and the
	// interruption is answered in turn.
	if !b.Wait(step, `() => window.rtviState.botOutputs.some((o) => o.spoken === true && o.spoken_status === "in-progress")`) {
		t.Fatalf("the answer was not cut off: bot outputs %+v, final transcripts %q", read().BotOutputs, read().finals())
	}
	if !b.Wait(step, `() => window.rtviState.transcripts.filter((t) => t.final && t.text.trim() !== "").length >= 2`) {
		t.Fatalf("the interruption was not transcribed: %q", read().finals())
	}
	// Let the story end or be cut before typing.
	if !b.Wait(2*step, `() => { const e = window.rtviState.events;
		const n = (x) => e.filter((y) => y === x).length;
		return n("botStartedSpeaking") >= 2 && n("botStoppedSpeaking") >= n("botStartedSpeaking"); }`) {
		t.Fatalf("the bot did not finish speaking: events %q", read().Events)
	}

	// 4. send-text gets a spoken answer.
	before := read()
	b.Eval(`window.rtvi.sendText("what is your name"), true`, nil)
	if !b.Wait(step, `(n) => window.rtviState.botOutputs.slice(n).some((o) => o.spoken === true && o.text.includes("voiced"))`, len(before.BotOutputs)) {
		t.Fatalf("no spoken answer to send-text: bot outputs %+v", read().BotOutputs[len(before.BotOutputs):])
	}
	if after := read(); after.BotAudioSamples <= before.BotAudioSamples {
		t.Errorf("no bot audio for the answer to send-text")
	}

	// 5. client-message: the session's metadata is the /start body.
	var resp json.RawMessage
	b.Eval(`window.rtvi.request("session")`, &resp)
	if !strings.Contains(string(resp), `"metadata":{"user":"e2e"}`) {
		t.Errorf("session request answered %s", resp)
	}

	// 6. disconnect-bot ends the session.
	b.Eval(`window.rtvi.disconnectBot(), true`, nil)
	deadline := time.Now().Add(step)
	for srv.Admission().Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the session was still live %v after disconnect-bot", step)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !b.Wait(10*time.Second, `() => window.rtviState.transport === "disconnected" || window.rtviState.transport === "error"`) {
		t.Errorf("the client did not see the end: transport %q", read().Transport)
	}
	if ex := b.Exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %q", ex)
	}
	s = read()
	t.Logf("final transcripts %q; %d bot outputs; %d bot audio samples, peak %.3f; events %q; errors %s",
		s.finals(), len(s.BotOutputs), s.BotAudioSamples, s.BotAudioPeak, s.Events, s.Errors)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
