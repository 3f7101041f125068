// Package browser holds the end-to-end tests of the web demo in headless
// Chromium, driven from Go (internal/browsertest): a real voiced server on
// loopback, and the page with Chromium's fake microphone playing speech
// synthesized by flite at test time. No Node.js is involved.
//
// They skip when the VAD model or Chromium is missing, and fail instead
// under VOICED_REQUIRE_MODELS=1 (`make test`). Screenshots go to e2e/out/.
// Environment: E2E_TIMEOUT_MS (wait for the spoken turn, default 30000),
// E2E_LOOP=1 (the fake microphone repeats the speech instead of playing it
// once followed by silence), CHROMIUM (default /usr/bin/chromium).
package browser

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/internal/browsertest"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// said is what the fake microphone says.
const said = "hello what can you do"

// state is the part of the page's window.voicedState the tests read.
type state struct {
	Transport   string `json:"transport"`
	SessionID   string `json:"sessionId"`
	SampleRate  int    `json:"sampleRate"`
	Transcripts []struct {
		Text  string `json:"text"`
		Final bool   `json:"final"`
	} `json:"transcripts"`
	BotTexts           []string          `json:"botTexts"`
	Events             []string          `json:"events"`
	AudioBytesReceived float64           `json:"audioBytesReceived"`
	AudioBytesSent     float64           `json:"audioBytesSent"`
	PlayedPeak         float64           `json:"playedPeak"`
	InterruptedCount   int               `json:"interruptedCount"`
	Metrics            []json.RawMessage `json:"metrics"`
	ICEServers         [][]string        `json:"iceServers"`
}

// stunServer answers STUN binding requests (RFC 8489) on loopback with
// the sender's address, until the test ends; it returns its host:port.
func stunServer(t *testing.T) string {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.Type != stun.BindingRequest {
				continue
			}
			u := from.(*net.UDPAddr)
			if resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: u.IP, Port: u.Port}, stun.Fingerprint); err == nil {
				conn.WriteTo(resp.Raw, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return conn.LocalAddr().String()
}

func (s state) finals() []string {
	var out []string
	for _, t := range s.Transcripts {
		if t.Final && strings.TrimSpace(t.Text) != "" {
			out = append(out, t.Text)
		}
	}
	return out
}

// spokenTurn is true once the page has shown a final transcript and has
// received and actually rendered reply audio.
const spokenTurn = `(transport) => {
  const s = window.voicedState;
  return !!s && (!transport || s.transport === transport) &&
    s.transcripts.some((t) => t.final && t.text.trim() !== "") &&
    s.audioBytesReceived > 0 && s.playedPeak > 0.01;
}`

// micWAV writes the speech, with lead of silence before and 4 s after (the
// server's VAD needs the silence to end the turn, and with E2E_LOOP=1 it
// lets the reply play before the speech repeats). Chromium starts playing
// the file when the page opens the microphone, before the call connects:
// the lead keeps the speech for after the connection.
func micWAV(t *testing.T, lead time.Duration) string {
	const rate = 16000
	speech := testenv.Speech(t, said)
	pcm := make([]int16, 0, len(speech)+int(lead.Seconds()*rate)+4*rate)
	pcm = append(pcm, make([]int16, int(lead.Seconds()*rate))...)
	pcm = append(pcm, speech...)
	pcm = append(pcm, make([]int16, 4*rate)...)
	path := filepath.Join(t.TempDir(), "input.wav")
	if err := audio.SaveWAV(path, frame.Mono16k, pcm); err != nil {
		t.Fatal(err)
	}
	return path
}

func turnTimeout(t *testing.T) time.Duration {
	v := os.Getenv("E2E_TIMEOUT_MS")
	if v == "" {
		return 30 * time.Second
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms <= 0 {
		t.Fatalf("E2E_TIMEOUT_MS=%q: want a number of milliseconds", v)
	}
	return time.Duration(ms) * time.Millisecond
}

func startBrowser(t *testing.T, lead time.Duration, flags map[string]any) *browsertest.Browser {
	browsertest.Chromium(t) // skip before the server loads when there is none
	return browsertest.Start(t, browsertest.Options{
		Microphone:     micWAV(t, lead),
		LoopMicrophone: os.Getenv("E2E_LOOP") == "1",
		Flags:          flags,
		Timeout:        turnTimeout(t) + 3*time.Minute,
		Dump:           "window.voicedState",
	})
}

func readState(b *browsertest.Browser) state {
	var s state
	b.Eval("window.voicedState", &s)
	return s
}

// requireSpokenTurn waits for the spoken turn and fails with what is
// missing.
func requireSpokenTurn(t *testing.T, b *browsertest.Browser, transport string) {
	t.Helper()
	timeout := turnTimeout(t)
	if b.Wait(timeout, spokenTurn, transport) {
		return
	}
	var missing []string
	var s *state
	b.Eval("window.voicedState", &s)
	if s == nil {
		missing = append(missing, "window.voicedState")
	} else {
		if transport != "" && s.Transport != transport {
			missing = append(missing, "transport "+transport+" (is "+s.Transport+")")
		}
		if len(s.finals()) == 0 {
			missing = append(missing, "final transcript")
		}
		if !(s.AudioBytesReceived > 0) {
			missing = append(missing, "reply audio received")
		}
		if !(s.PlayedPeak > 0.01) {
			missing = append(missing, "reply audio rendered (playedPeak "+strconv.FormatFloat(s.PlayedPeak, 'f', 4, 64)+")")
		}
	}
	t.Fatalf("spoken turn incomplete after %v; missing: %s", timeout, strings.Join(missing, ", "))
}

// heardSaid fails t unless a final transcript shares a word with what the
// microphone said.
func heardSaid(t *testing.T, s state) {
	t.Helper()
	want := strings.Fields(said)
	for _, f := range s.finals() {
		for _, w := range strings.FieldsFunc(strings.ToLower(f), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '\'') }) {
			if slices.Contains(want, w) {
				return
			}
		}
	}
	t.Errorf("said %q, final transcripts %q: no word in common", said, s.finals())
}

func noExceptions(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	if ex := b.Exceptions(); len(ex) > 0 {
		t.Errorf("the page threw uncaught errors: %q", ex)
	}
}

func screenshot(t *testing.T, b *browsertest.Browser, name string) string {
	t.Helper()
	dir := filepath.Join("..", "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	b.Screenshot(path)
	return path
}

// TestBrowserDemo loads the demo over the WebSocket with ?autostart=1 while
// the fake microphone speaks. It passes when the page has shown a final
// transcript of the speech and has received and rendered reply audio, and
// then echoes typed text as a final transcript.
func TestBrowserDemo(t *testing.T) {
	srv := testenv.Start(t, config.Default(), nil)
	b := startBrowser(t, 300*time.Millisecond, nil)
	start := time.Now()
	if st := b.Navigate(srv.URL + "/?autostart=1"); st != 200 {
		t.Fatalf("loading the demo: HTTP %d", st)
	}

	// 1. The spoken turn.
	requireSpokenTurn(t, b, "")
	spokenMs := time.Since(start).Milliseconds()
	heardSaid(t, readState(b))
	// Best effort: let the turn's metrics arrive so the screenshot shows them.
	b.Wait(5*time.Second, `() => window.voicedState.metrics.length > 0`)

	// 2. Typed text is echoed as a final transcript.
	const typed = "please say something short"
	b.Type("#text-input", typed+"\r")
	if !b.Wait(10*time.Second, `(text) => window.voicedState.transcripts.some((t) => t.final && t.text === text)`, typed) {
		t.Fatalf("typed text was not echoed as a final transcript within 10 s")
	}
	noExceptions(t, b)

	shot := screenshot(t, b, "demo.png")
	s := readState(b)
	t.Logf("session %s at %d Hz: final transcripts %q, bot texts %q, %0.f reply bytes, played peak %.4f, interrupted %d, %d events, %d metrics; spoken turn after %d ms; screenshot %s",
		s.SessionID, s.SampleRate, s.finals(), s.BotTexts, s.AudioBytesReceived, s.PlayedPeak, s.InterruptedCount, len(s.Events), len(s.Metrics), spokenMs, shot)
}

// TestBrowserWebRTC loads the demo over WebRTC. It passes when:
//  1. a final transcript of the speech came back on the "events" data
//     channel, reply audio arrived (RTP bytes received, from getStats) and
//     was rendered (the AnalyserNode on the remote track saw a level);
//  2. a typed request for a long answer starts the bot speaking, and a
//     typed interruption brings `interrupted`, after which the page's output
//     level (measured 30-80 ms later) is silence, and the bot's track as
//     received falls silent within 1 s: barge-in clears playback (the server
//     stops sending; the page mutes what the jitter buffer still holds).
//
// The server delays its answers by 1.5 s, so that the answer to the
// interruption does not fill the silence the test listens for.
func TestBrowserWebRTC(t *testing.T) {
	cfg := config.Default()
	cfg.LLM.Scripted.FirstTokenDelay = 1500 * time.Millisecond
	// A STUN server on loopback: the page must get it from the server.
	stunURL := "stun:" + stunServer(t)
	cfg.WebRTC.ICEServers = []config.ICEServer{{URLs: []string{stunURL}}}
	srv := testenv.Start(t, cfg, nil)
	// WebRTC connects seconds after the microphone opens on a busy
	// machine (ICE servers, gathering, ICE, DTLS, SCTP).
	b := startBrowser(t, 6*time.Second, map[string]any{
		// A local pion server: allow loopback candidates and show real IPs.
		"allow-loopback-in-peer-connection": true,
		"disable-features":                  "Translate,WebRtcHideLocalIpsWithMdns",
	})
	start := time.Now()
	if st := b.Navigate(srv.URL + "/?autostart=1&transport=webrtc"); st != 200 {
		t.Fatalf("loading the demo: HTTP %d", st)
	}

	// 1. The spoken turn.
	requireSpokenTurn(t, b, "webrtc")
	spokenMs := time.Since(start).Milliseconds()
	heardSaid(t, readState(b))
	b.Wait(5*time.Second, `() => window.voicedState.metrics.length > 0`)

	// 2. Barge-in: once the first answer is over, a long answer, then a
	// typed interruption.
	const step = 15 * time.Second
	count := `(type) => window.voicedState.events.filter((t) => t === type).length`
	if !b.Wait(step, `() => { const n = `+count+`; return n("bot_stopped_speaking") >= n("bot_started_speaking"); }`) {
		t.Fatal("the first answer did not end")
	}
	var started int
	b.Eval("("+count+`)("bot_started_speaking")`, &started)
	var t0 float64
	b.Eval("performance.now()", &t0)
	b.Type("#text-input", "tell me a story\r")
	if !b.Wait(step, `(n) => window.voicedState.events.filter((t) => t === "bot_started_speaking").length > n && window.voicedState.botLevel > 0.01`, started) {
		t.Fatal("the long answer did not start playing")
	}
	// Let it talk for a second, then interrupt while a word is audible, not
	// in a pause between two (both judged by the page's clock).
	b.Wait(5*time.Second, `(t0) => performance.now() - t0 >= 1000 && window.voicedState.botLevel > 0.05`, t0)
	var before struct {
		Level         float64 `json:"level"`
		Interruptions int     `json:"interruptions"`
	}
	b.Eval(`({ level: window.voicedState.botLevel, interruptions: window.voicedState.interruptedCount })`, &before)
	if !(before.Level > 0.01) {
		t.Fatalf("the long answer was not playing before the interruption (level %.4f)", before.Level)
	}
	b.Type("#text-input", "stop\r")
	if !b.Wait(step, `(n) => window.voicedState.interruptedCount > n`, before.Interruptions) {
		t.Fatal("no interrupted event after the typed interruption")
	}
	interrupted := time.Now()
	// What the browser receives falls silent too: the server stopped sending
	// (the delayed answers cannot fill the gap).
	if !b.Wait(time.Second, `() => window.voicedState.rxLevel < 0.001`) {
		t.Fatal("the bot's track was still audible 1 s after `interrupted`")
	}
	rxSilent := time.Since(interrupted)
	if !b.Wait(2*time.Second, `() => window.voicedState.levelAfterInterrupt !== null`) {
		t.Fatal("no output level was measured after `interrupted`")
	}
	var levelAfter float64
	b.Eval("window.voicedState.levelAfterInterrupt", &levelAfter)
	if !(levelAfter < 0.001) {
		t.Errorf("the bot's audio kept playing after `interrupted` (level %.4f)", levelAfter)
	}
	noExceptions(t, b)

	shot := screenshot(t, b, "demo-webrtc.png")
	s := readState(b)
	if s.Transport != "webrtc" {
		t.Errorf("transport %q, want webrtc", s.Transport)
	}
	if want := [][]string{{stunURL}}; !slices.EqualFunc(s.ICEServers, want, slices.Equal) {
		t.Errorf("the page used ICE servers %q, want %q", s.ICEServers, want)
	}
	t.Logf("session %s over %s: final transcripts %q, bot texts %q, %0.f bytes received, %0.f sent, played peak %.4f; level %.4f before the interruption, %g after; received track silent %v after `interrupted`; %d interruptions; spoken turn after %d ms; screenshot %s",
		s.SessionID, s.Transport, s.finals(), s.BotTexts, s.AudioBytesReceived, s.AudioBytesSent, s.PlayedPeak,
		before.Level, levelAfter, rxSilent.Round(time.Millisecond), s.InterruptedCount, spokenMs, shot)
}
