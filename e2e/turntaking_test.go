package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/server"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// speakerphone is a client without echo cancellation: it plays what the
// server sends in real time (dropping it on `interrupted`, like the demo),
// and its microphone hears that playback again `delay` later at `gain`,
// plus whatever the test says into it.
type speakerphone struct {
	t     *testing.T
	ws    *gws.Conn
	delay int
	gain  float64

	mu     sync.Mutex
	play   []int16 // received, not yet played
	line   []int16 // played, on its way back to the microphone
	events []Event
}

func dialSpeakerphone(t *testing.T, url string, delay time.Duration, gain float64) *speakerphone {
	ws, _, err := gws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	start, _ := json.Marshal(map[string]any{"type": "start", "sample_rate": 16000})
	ws.WriteMessage(gws.TextMessage, start)
	sp := &speakerphone{t: t, ws: ws, delay: int(delay.Seconds() * 16000), gain: gain}
	sp.line = make([]int16, sp.delay)
	go func() {
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			sp.mu.Lock()
			if typ == gws.BinaryMessage {
				pcm, _ := audio.DecodePCM16(nil, data)
				sp.play = append(sp.play, pcm...)
			} else {
				var ev Event
				if json.Unmarshal(data, &ev) == nil {
					ev.At = time.Now()
					sp.events = append(sp.events, ev)
					if ev.Type == "interrupted" {
						sp.play = sp.play[:0]
					}
				}
			}
			sp.mu.Unlock()
		}
	}()
	return sp
}

// talk runs the room in real time for d, saying voice (if any) into the
// microphone from the start. Like a sound card, it keeps to the wall
// clock: when the test falls behind (a busy machine), it catches up by
// playing and capturing the chunks that are due at once, rather than
// letting its playback fall behind the server's, which would make the echo
// outlast the audio the server sent.
func (sp *speakerphone) talk(d time.Duration, voice []int16) {
	const chunk = 20 * time.Millisecond
	start := time.Now()
	n := int(d / chunk)
	for i := 0; i < n; {
		for due := min(n, int(time.Since(start)/chunk)+1); i < due; i++ {
			if !sp.tick(i, voice) {
				return
			}
		}
		time.Sleep(time.Until(start.Add(time.Duration(i) * chunk)))
	}
}

// tick plays the i'th 20 ms chunk and sends what the microphone heard.
func (sp *speakerphone) tick(i int, voice []int16) bool {
	sp.mu.Lock()
	n := min(320, len(sp.play))
	sp.line = append(sp.line, sp.play[:n]...)
	sp.line = append(sp.line, make([]int16, 320-n)...)
	sp.play = sp.play[:copy(sp.play, sp.play[n:])]
	mic := make([]int16, 320)
	for k := range mic {
		v := sp.gain * float64(sp.line[k])
		if j := i*320 + k; j < len(voice) {
			v += float64(voice[j])
		}
		mic[k] = int16(max(-32768, min(32767, v)))
	}
	sp.line = sp.line[:copy(sp.line, sp.line[320:])]
	sp.mu.Unlock()
	if err := sp.ws.WriteMessage(gws.BinaryMessage, audio.EncodePCM16(nil, mic)); err != nil {
		sp.t.Errorf("send: %v", err)
		return false
	}
	return true
}

func (sp *speakerphone) count(typ string) int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	n := 0
	for _, e := range sp.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func (sp *speakerphone) dump() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	t0 := sp.events[0].At
	for _, e := range sp.events {
		sp.t.Logf("%6dms %s %q turn=%d", e.At.Sub(t0).Milliseconds(), e.Type, e.Text, e.Turn)
	}
}

// cough is a burst of noise, d long, at about -12 dBFS.
func cough(d time.Duration) []int16 { return testenv.Cough(d) }

// startTurnServer runs voiced with echo cancellation on (as for a
// speakerphone client) and returns its WebSocket URL.
func startTurnServer(t *testing.T) string {
	return testenv.Start(t, config.Default(), func(s *server.Server) { s.Builder().Config.EchoCancel = true }).WebSocket()
}

// TestE2ETurnTaking: over a speakerphone (the bot's voice comes back 80 ms
// later at -6 dB), the bot's own echo and a 150 ms cough do not interrupt
// it; the user's own words (another voice) do. Echo that passes the
// canceller pauses the bot, and stops with it: the turn-taking stage does
// not count voiced audio heard within its echo tail of the pause.
func TestE2ETurnTaking(t *testing.T) {
	url := startTurnServer(t)
	voice := speechVoice(t, "awb", "wait, stop please, I have a question")
	if err := turnTakingScenario(t, url, voice); err != nil {
		t.Fatal(err)
	}
}

func turnTakingScenario(t *testing.T, url string, voice []int16) error {
	sp := dialSpeakerphone(t, url, 80*time.Millisecond, 0.5)
	defer sp.ws.Close()
	sp.talk(500*time.Millisecond, nil)
	b, _ := json.Marshal(map[string]string{"type": "text", "text": "tell me a story"})
	sp.ws.WriteMessage(gws.TextMessage, b)
	for i := 0; i < 50 && sp.count("bot_started_speaking") == 0; i++ {
		sp.talk(100*time.Millisecond, nil)
	}
	if sp.count("bot_started_speaking") == 0 {
		return errors.New("the story did not start")
	}
	sp.talk(4*time.Second, nil) // echo only
	if n := sp.count("interrupted"); n != 0 {
		sp.dump()
		return fmt.Errorf("the bot interrupted itself %d times on its own echo", n)
	}
	sp.talk(2*time.Second, cough(150*time.Millisecond))
	if n := sp.count("interrupted"); n != 0 {
		sp.dump()
		return errors.New("a 150 ms cough interrupted the bot")
	}
	if sp.count("bot_stopped_speaking") != 0 {
		t.Fatal("the story ended before the user spoke: make it longer")
	}
	from := sp.len()
	sp.talk(4*time.Second, voice)
	// A busy machine's recognizer may still be on the user's words: give
	// it (bounded) time to hear them.
	for i := 0; i < 50 && sp.countUntil(from, "interrupted", "bot_started_speaking") == 0; i++ {
		sp.talk(100*time.Millisecond, nil)
	}
	// The story is interrupted once, while the user speaks. (The echo of
	// the answer to the user's words is a later exchange, from its
	// bot_started_speaking: the window before it is the one under test.)
	if n := sp.countUntil(from, "interrupted", "bot_started_speaking"); n != 1 {
		sp.dump()
		return fmt.Errorf("the user's words over the echo: %d interruptions, want 1", n)
	}
	return nil
}

// len is the number of events received so far.
func (sp *speakerphone) len() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.events)
}

// countUntil counts the events of type typ from the from'th on, before the
// first event of type end after it (all of them if there is none).
func (sp *speakerphone) countUntil(from int, typ, end string) int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	n := 0
	for _, e := range sp.events[from:] {
		if e.Type == end {
			break
		}
		if e.Type == typ {
			n++
		}
	}
	return n
}

// speechVoice is speech in another flite voice.
func speechVoice(t *testing.T, voice, text string) []int16 {
	return testenv.SpeechVoice(t, voice, text)
}
