package e2e

import (
	"encoding/json"
	"math"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
)

// Event is a server event as the client saw it.
type Event struct {
	Type        string  `json:"type"`
	Turn        uint32  `json:"turn"`
	Text        string  `json:"text"`
	Final       bool    `json:"final"`
	Code        string  `json:"code"`
	Message     string  `json:"message"`
	VoiceToVoce float64 `json:"voice_to_voice_ms"`
	From        string  `json:"from"`
	To          string  `json:"to"`
	Agent       string  `json:"agent"`
	Name        string  `json:"name"`
	STTFinal    float64 `json:"stt_final_ms"`
	At          time.Time
}

// AudioIn is a binary message from the server.
type AudioIn struct {
	At      time.Time
	Samples int
	Peak    int // max |sample|
}

// client is a WebSocket client that streams audio like a microphone (in
// real time, 20 ms at a time) and records everything the server sends.
type client struct {
	t    *testing.T
	ws   *gws.Conn
	rate int

	mu     sync.Mutex
	events []Event
	audio  []AudioIn
	closed chan struct{}
	// closeCode is the server's close code, once read.
	closeCode int
}

func dial(t *testing.T, url string, rate int) *client {
	t.Helper()
	ws, _, err := gws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{t: t, ws: ws, rate: rate, closed: make(chan struct{})}
	start, _ := json.Marshal(map[string]any{"type": "start", "sample_rate": rate})
	if err := ws.WriteMessage(gws.TextMessage, start); err != nil {
		t.Fatal(err)
	}
	go c.read()
	t.Cleanup(func() { ws.Close() })
	return c
}

func (c *client) read() {
	defer close(c.closed)
	for {
		typ, data, err := c.ws.ReadMessage()
		now := time.Now()
		if err != nil {
			if ce, ok := err.(*gws.CloseError); ok {
				c.mu.Lock()
				c.closeCode = ce.Code
				c.mu.Unlock()
			}
			return
		}
		c.mu.Lock()
		if typ == gws.BinaryMessage {
			pcm, _ := audio.DecodePCM16(nil, data)
			peak := 0
			for _, v := range pcm {
				peak = max(peak, abs(int(v)))
			}
			c.audio = append(c.audio, AudioIn{At: now, Samples: len(pcm), Peak: peak})
		} else {
			var ev Event
			if json.Unmarshal(data, &ev) == nil {
				ev.At = now
				c.events = append(c.events, ev)
			}
		}
		c.mu.Unlock()
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// stream sends pcm in real time, 20 ms per message, and returns the wall
// time at which its last audible sample was sent (zero if none).
func (c *client) stream(pcm []int16) (lastVoice time.Time) {
	_, lastVoice = c.streamVoice(pcm)
	return lastVoice
}

// streamVoice is stream, also returning when the first audible sample was
// sent.
func (c *client) streamVoice(pcm []int16) (firstVoice, lastVoice time.Time) {
	chunk := c.rate / 50
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	thresh := int(32768 * math.Pow(10, -40.0/20)) // -40 dBFS
	for i := 0; i < len(pcm); i += chunk {
		end := min(i+chunk, len(pcm))
		if err := c.ws.WriteMessage(gws.BinaryMessage, audio.EncodePCM16(nil, pcm[i:end])); err != nil {
			c.t.Errorf("send audio: %v", err)
			return firstVoice, lastVoice
		}
		for _, v := range pcm[i:end] {
			if abs(int(v)) > thresh {
				lastVoice = time.Now()
				if firstVoice.IsZero() {
					firstVoice = lastVoice
				}
				break
			}
		}
		<-tick.C
	}
	return firstVoice, lastVoice
}

// silence streams d of digital silence in real time.
func (c *client) silence(d time.Duration) {
	c.stream(make([]int16, int(d.Seconds()*float64(c.rate))))
}

// silenceUntil streams silence until cond holds or max elapses.
func (c *client) silenceUntil(max time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		c.silence(100 * time.Millisecond)
	}
	return cond()
}

func (c *client) sendJSON(v any) {
	b, _ := json.Marshal(v)
	if err := c.ws.WriteMessage(gws.TextMessage, b); err != nil {
		c.t.Errorf("send: %v", err)
	}
}

// snapshot returns copies of what was received so far.
func (c *client) snapshot() ([]Event, []AudioIn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...), append([]AudioIn(nil), c.audio...)
}

// count returns how many events of type typ arrived after since.
func (c *client) count(typ string, since time.Time) int {
	evs, _ := c.snapshot()
	n := 0
	for _, e := range evs {
		if e.Type == typ && !e.At.Before(since) {
			n++
		}
	}
	return n
}

// first returns the first event of type typ at or after since.
func (c *client) first(typ string, since time.Time) (Event, bool) {
	evs, _ := c.snapshot()
	for _, e := range evs {
		if e.Type == typ && !e.At.Before(since) {
			return e, true
		}
	}
	return Event{}, false
}

// firstAudible returns the arrival time of the first audio message after
// since whose peak is above -40 dBFS.
func (c *client) firstAudible(since time.Time) (time.Time, bool) {
	_, au := c.snapshot()
	thresh := int(32768 * math.Pow(10, -40.0/20))
	for _, a := range au {
		if !a.At.Before(since) && a.Peak > thresh {
			return a.At, true
		}
	}
	return time.Time{}, false
}

// audioBetween returns the samples received in [from, to).
func (c *client) audioBetween(from, to time.Time) int {
	_, au := c.snapshot()
	n := 0
	for _, a := range au {
		if !a.At.Before(from) && a.At.Before(to) {
			n += a.Samples
		}
	}
	return n
}
