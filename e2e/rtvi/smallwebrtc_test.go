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

// smallState is window.rtviState of the SmallWebRTC page.
type smallState struct {
	Connected   bool            `json:"connected"`
	BotReady    json.RawMessage `json:"botReady"`
	Transport   string          `json:"transport"`
	Events      []string        `json:"events"`
	Transcripts []struct {
		Text  string `json:"text"`
		Final bool   `json:"final"`
	} `json:"transcripts"`
	BotOutputs []struct {
		Text         string `json:"text"`
		Spoken       bool   `json:"spoken"`
		SpokenStatus string `json:"spoken_status"`
	} `json:"botOutputs"`
	Errors             []json.RawMessage `json:"errors"`
	BotTrack           bool              `json:"botTrack"`
	BotPeak            float64           `json:"botPeak"`
	AudibleMs          int               `json:"audibleMs"`
	AudioBytesReceived int               `json:"audioBytesReceived"`
	BotDisconnected    bool              `json:"botDisconnected"`
	StartError         *string           `json:"startError"`
}

func (s smallState) finals() []string {
	var out []string
	for _, t := range s.Transcripts {
		if t.Final {
			out = append(out, t.Text)
		}
	}
	return out
}

// smallPage returns dist/ with the SmallWebRTC page, skipping (or
// failing, when every dependency is required) without it.
func smallPage(t *testing.T) string {
	dist, _ := filepath.Abs("dist")
	if _, err := os.Stat(filepath.Join(dist, "smallwebrtc.js")); err != nil {
		why := "no e2e/rtvi/dist/smallwebrtc.js (run e2e/rtvi/build.sh, or make services)"
		if os.Getenv("VOICED_REQUIRE_MODELS") == "1" || os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return dist
}

// smallMic writes the microphone's speech: silence while the peer
// connection comes up, a question, 9 s of silence (the test asks for the
// demo agent's story, about 25 s of answer, by send-text as soon as the
// question is answered), words that interrupt the story, then silence.
func smallMic(t *testing.T) string {
	const rate = 16000
	var pcm []int16
	pcm = append(pcm, make([]int16, 2*rate)...)
	pcm = append(pcm, testenv.Speech(t, "what is your name")...)
	pcm = append(pcm, make([]int16, 9*rate)...)
	pcm = append(pcm, testenv.Speech(t, "wait stop what is the weather")...)
	pcm = append(pcm, make([]int16, 6*rate)...)
	path := filepath.Join(t.TempDir(), "mic.wav")
	if err := audio.SaveWAV(path, frame.Mono16k, pcm); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPipecatClientSmallWebRTC: client-js's startBotAndConnect against
// voiced's /start, over Pipecat's SmallWebRTC transport (offer and
// trickled candidates on /sessions/{id}/api/offer, RTVI on the chat data
// channel, the bot's voice on the audio track), from a page on another
// origin, with speech as the microphone.
func TestPipecatClientSmallWebRTC(t *testing.T) {
	dist := smallPage(t)
	browsertest.Chromium(t)
	page := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer page.Close()
	cfg := config.Default()
	cfg.Server.Origins = []string{page.URL} // the app's page is on another origin
	srv := testenv.Start(t, cfg, nil)
	b := browsertest.Start(t, browsertest.Options{
		Microphone: smallMic(t),
		Timeout:    4 * time.Minute,
		Dump:       "window.rtviState",
	})
	if st := b.Navigate(page.URL + "/smallwebrtc.html"); st != 200 {
		t.Fatalf("loading the page: HTTP %d", st)
	}
	read := func() smallState {
		var s smallState
		b.Eval("window.rtviState", &s)
		return s
	}
	const step = 30 * time.Second

	// 1. startBotAndConnect resolves with bot-ready, and the bot's audio
	// track starts.
	b.Eval(`window.rtvi.start(`+smallJS(srv.URL+"/start")+`, {user: "e2e"}), true`, nil)
	if !b.Wait(step, `() => window.rtviState.botReady !== null || window.rtviState.startError !== null`) {
		t.Fatal("startBotAndConnect did not settle")
	}
	s := read()
	if s.StartError != nil || !strings.Contains(string(s.BotReady), `"version":"2.1.0"`) {
		t.Fatalf("startBotAndConnect: %v, bot-ready %s", s.StartError, s.BotReady)
	}
	if !b.Wait(step, `() => window.rtviState.botTrack`) {
		t.Fatal("the bot's audio track did not start")
	}

	// 2. The spoken question: a final transcription, the bot's audio
	// (audible on the track) and its words, reported as spoken.
	if !b.Wait(step, `() => { const s = window.rtviState;
		return s.transcripts.some((t) => t.final && t.text.trim() !== "") && s.audibleMs > 0 &&
			s.botOutputs.some((o) => o.spoken === true); }`) {
		s := read()
		t.Fatalf("no spoken turn: final transcripts %q, %d bytes and %d ms audible of bot audio, %d bot-outputs",
			s.finals(), s.AudioBytesReceived, s.AudibleMs, len(s.BotOutputs))
	}

	// 3. The interruption, spoken over a long answer: send-text asks for
	// the story at once (a spoken request would depend on the recognizer
	// hearing "story"), the microphone talks over it, the story's
	// sentence is cut (bot-output in progress, with the words heard), and
	// the interruption is transcribed.
	b.Eval(`window.rtvi.sendText("please tell me a story"), true`, nil)
	if !b.Wait(step, `() => window.rtviState.botOutputs.some((o) => o.text.startsWith("Once upon a time"))`) {
		t.Fatalf("the story did not start: bot outputs %+v", read().BotOutputs)
	}
	var story int
	b.Eval(`window.rtviState.botOutputs.findIndex((o) => o.text.startsWith("Once upon a time"))`, &story)
	if !b.Wait(step, `(n) => window.rtviState.botOutputs.slice(n).some((o) => o.spoken === true && o.spoken_status === "in-progress")`, story) {
		t.Fatalf("the story was not cut off: bot outputs %+v, final transcripts %q", read().BotOutputs, read().finals())
	}
	if !b.Wait(step, `() => window.rtviState.transcripts.filter((t) => t.final && t.text.trim() !== "").length >= 2`) {
		t.Fatalf("the interruption was not transcribed: %q", read().finals())
	}
	if !b.Wait(2*step, `() => { const e = window.rtviState.events;
		const n = (x) => e.filter((y) => y === x).length;
		return n("botStartedSpeaking") >= 2 && n("botStoppedSpeaking") >= n("botStartedSpeaking"); }`) {
		t.Fatalf("the bot did not finish speaking: events %q", read().Events)
	}

	// 4. send-text gets a spoken answer, audible on the track.
	before := read()
	b.Eval(`window.rtvi.sendText("what is your name"), true`, nil)
	if !b.Wait(step, `(n) => window.rtviState.botOutputs.slice(n).some((o) => o.spoken === true && o.text.includes("voiced"))`, len(before.BotOutputs)) {
		t.Fatalf("no spoken answer to send-text: bot outputs %+v", read().BotOutputs[len(before.BotOutputs):])
	}
	if !b.Wait(step, `(ms) => window.rtviState.audibleMs > ms`, before.AudibleMs) {
		t.Errorf("no audible bot audio for the answer to send-text")
	}

	// 5. client-message: the session's metadata is the /start body.
	var resp json.RawMessage
	b.Eval(`window.rtvi.request("session")`, &resp)
	if !strings.Contains(string(resp), `"metadata":{"user":"e2e"}`) {
		t.Errorf("session request answered %s", resp)
	}

	// 6. disconnect-bot ends the session: peerLeft reaches the client,
	// which disconnects.
	b.Eval(`window.rtvi.disconnectBot(), true`, nil)
	deadline := time.Now().Add(step)
	for srv.Admission().Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the session was still live %v after disconnect-bot", step)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !b.Wait(10*time.Second, `() => window.rtviState.botDisconnected && window.rtviState.transport === "disconnected"`) {
		t.Errorf("the client did not see the end: peerLeft %v, transport %q", read().BotDisconnected, read().Transport)
	}
	if ex := b.Exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %q", ex)
	}
	s = read()
	if len(s.Errors) > 0 {
		t.Errorf("RTVI errors: %s", s.Errors)
	}
	t.Logf("final transcripts %q; %d bot outputs; %d bytes of bot audio, %d ms audible, peak %.3f; events %q",
		s.finals(), len(s.BotOutputs), s.AudioBytesReceived, s.AudibleMs, s.BotPeak, s.Events)
}

func smallJS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
