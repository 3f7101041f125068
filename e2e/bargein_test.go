package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// listener is a client on headphones (no echo): it plays what the server
// sends in real time, dropping its buffer on `interrupted` like the demo,
// and notes for each 20 ms it plays whether it played the bot's voice.
type listener struct {
	t  *testing.T
	ws *gws.Conn

	mu     sync.Mutex
	play   []int16
	heard  []bool      // per 20 ms played: bot audio or not
	at     []time.Time // when it was played
	events []Event
}

func dialListener(t *testing.T, url string) *listener {
	ws, _, err := gws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	start, _ := json.Marshal(map[string]any{"type": "start", "sample_rate": 16000})
	ws.WriteMessage(gws.TextMessage, start)
	l := &listener{t: t, ws: ws}
	go func() {
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			l.mu.Lock()
			if typ == gws.BinaryMessage {
				pcm, _ := audio.DecodePCM16(nil, data)
				l.play = append(l.play, pcm...)
			} else {
				var ev Event
				if json.Unmarshal(data, &ev) == nil {
					ev.At = time.Now()
					l.events = append(l.events, ev)
					if ev.Type == "interrupted" {
						l.play = l.play[:0]
					}
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// talk runs the client in real time for d, saying voice (if any) into the
// microphone from the start; it returns when the voice started.
func (l *listener) talk(d time.Duration, voice []int16) time.Time {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < int(d/(20*time.Millisecond)); i++ {
		l.mu.Lock()
		n := min(320, len(l.play))
		loud := false
		for _, v := range l.play[:n] {
			if v > 300 || v < -300 {
				loud = true
				break
			}
		}
		l.heard = append(l.heard, loud)
		l.at = append(l.at, time.Now())
		l.play = l.play[:copy(l.play, l.play[n:])]
		l.mu.Unlock()
		mic := make([]int16, 320)
		for k := range mic {
			if j := i*320 + k; j < len(voice) {
				mic[k] = voice[j]
			}
		}
		if err := l.ws.WriteMessage(gws.BinaryMessage, audio.EncodePCM16(nil, mic)); err != nil {
			l.t.Errorf("send: %v", err)
			return start
		}
		<-tick.C
	}
	return start
}

func (l *listener) count(typ string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func (l *listener) dump() {
	l.mu.Lock()
	defer l.mu.Unlock()
	t0 := l.events[0].At
	for _, e := range l.events {
		l.t.Logf("%6dms %s %q turn=%d", e.At.Sub(t0).Milliseconds(), e.Type, e.Text, e.Turn)
	}
}

// silentFrom returns when the client first played ticks×20 ms of silence
// after t0 (zero if it never did).
func (l *listener) silentFrom(t0 time.Time, ticks int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	run := 0
	for i, h := range l.heard {
		if l.at[i].Before(t0) {
			continue
		}
		if h {
			run = 0
			continue
		}
		if run++; run == ticks {
			return l.at[i-ticks+1]
		}
	}
	return time.Time{}
}

// eventAt returns when the first event of type typ came.
func (l *listener) eventAt(typ string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Type == typ {
			return e.At
		}
	}
	return time.Time{}
}

// lastAudible returns the end of the last 20 ms of the bot's voice the
// client played in [from, to) (from if none).
func (l *listener) lastAudible(from, to time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := from
	for i, h := range l.heard {
		if h && !l.at[i].Before(from) && l.at[i].Before(to) {
			last = l.at[i].Add(20 * time.Millisecond)
		}
	}
	return last
}

// audibleFrom returns when the client first played the bot's voice at or
// after t0 (zero if it never did).
func (l *listener) audibleFrom(t0 time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, h := range l.heard {
		if h && !l.at[i].Before(t0) {
			return l.at[i]
		}
	}
	return time.Time{}
}

// onset is where voice first gets loud (its first word).
func onset(voice []int16) time.Duration {
	for i, v := range voice {
		if v > 1000 || v < -1000 {
			return time.Duration(i) * time.Second / 16000
		}
	}
	return 0
}

// TestE2EBargeInPauseAndResume: over the WebSocket with real audio, a
// long answer is paused when the user talks over it and the client falls
// silent soon after the first word; a backchannel, "mm-hm", resumes it
// without an interruption; "stop" stops it for good. flite spells the
// text "mm-hm" ("em em aitch em"); "um hum" is how it says the hum. The
// bounds are loose for a loaded machine; the times are logged.
func TestE2EBargeInPauseAndResume(t *testing.T) {
	url := testenv.Start(t, config.Default(), nil).WebSocket()
	l := dialListener(t, url)
	l.talk(500*time.Millisecond, nil)
	b, _ := json.Marshal(map[string]string{"type": "text", "text": "tell me a story"})
	l.ws.WriteMessage(gws.TextMessage, b)
	for i := 0; i < 50 && l.count("bot_started_speaking") == 0; i++ {
		l.talk(100*time.Millisecond, nil)
	}
	if l.count("bot_started_speaking") == 0 {
		t.Fatal("the story did not start")
	}
	l.talk(1500*time.Millisecond, nil)

	// "Mm-hm" over the story: paused, then resumed, not interrupted.
	mm := speechVoice(t, "awb", "um hum")
	t0 := l.talk(2*time.Second, mm)
	spoke := t0.Add(onset(mm))
	end := t0.Add(time.Duration(len(mm)) * time.Second / 16000)
	// Timings are logged, not asserted: on a loaded machine the VAD and
	// recognizer lag by hundreds of milliseconds.
	if s := l.silentFrom(spoke, 4); !s.IsZero() && s.Before(end.Add(time.Second)) {
		t.Logf("backchannel: client silent %v after its onset", s.Sub(spoke))
		if a := l.audibleFrom(s); !a.IsZero() {
			t.Logf("backchannel: client heard the answer again %v after the voice ended (%v silent)", a.Sub(end), a.Sub(s))
		}
	} else {
		t.Log("backchannel: no pause of 80 ms or more reached the client")
	}
	if a := l.audibleFrom(end.Add(time.Second)); a.IsZero() {
		t.Fatal("backchannel: the answer did not go on")
	}
	if n := l.count("interrupted"); n != 0 {
		l.dump()
		t.Fatalf("a backchannel interrupted the bot (%d)", n)
	}
	if l.count("bot_stopped_speaking") != 0 {
		t.Fatal("the story ended before the user spoke: make it longer")
	}

	// "Stop" stops it for good.
	stop := speechVoice(t, "awb", "stop, please stop")
	t0 = l.talk(3*time.Second, stop)
	spoke = t0.Add(onset(stop))
	// A busy machine's recognizer may still be on the words: give it
	// (bounded) time to hear them.
	for i := 0; i < 50 && l.count("interrupted") == 0; i++ {
		l.talk(100*time.Millisecond, nil)
	}
	if n := l.count("interrupted"); n != 1 {
		l.dump()
		t.Fatalf("\"stop\": %d interruptions, want 1", n)
	}
	// The story's last audio the client played: before the interruption.
	intr := l.eventAt("interrupted")
	last := l.lastAudible(spoke, intr)
	s := l.silentFrom(spoke, 5) // longer than flite's gaps between sentences
	if s.IsZero() {
		t.Fatal("stop: the client never fell silent")
	}
	// Between the user's words (a pause after "stop,") the answer may
	// resume for a moment before the recognizer's "stop" interrupts it.
	l.mu.Lock()
	for _, e := range l.events {
		if e.Type == "user_started_speaking" && e.At.After(spoke.Add(-time.Second)) {
			t.Logf("stop: user_started_speaking reached the client %v after the first word", e.At.Sub(spoke))
			break
		}
	}
	l.mu.Unlock()
	t.Logf("client played from 200 ms before the first word: %s", l.pattern(spoke.Add(-200*time.Millisecond), 70))
	t.Logf("the user said, from its start:                   %s", voicePattern(stop))
	t.Logf("stop: spoke at %v; client silent %v after the first word; last heard the story %v after it; interrupted %v after it",
		spoke.Sub(l.events[0].At), s.Sub(spoke), last.Sub(spoke), intr.Sub(spoke))
	l.talk(2*time.Second, nil)
	l.mu.Lock()
	defer l.mu.Unlock()
	story := uint32(0)
	for _, e := range l.events {
		if e.Type == "bot_started_speaking" && story == 0 {
			story = e.Turn
		}
		if e.At.After(intr) && e.Turn == story && (e.Type == "bot_started_speaking" || e.Type == "bot_text") {
			t.Fatalf("stop: the story (turn %d) went on after the interruption: %s", story, e.Type)
		}
	}
}

// pattern renders what the client played from from, n ticks of 20 ms:
// '#' the bot's voice, '.' silence.
func (l *listener) pattern(from time.Time, n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i, h := range l.heard {
		if l.at[i].Before(from) || n == 0 {
			continue
		}
		n--
		if h {
			b.WriteByte('#')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// voicePattern renders voice the same way ('#' loud).
func voicePattern(v []int16) string {
	var b []byte
	for i := 0; i+320 <= len(v); i += 320 {
		loud := false
		for _, x := range v[i : i+320] {
			if x > 1000 || x < -1000 {
				loud = true
			}
		}
		if loud {
			b = append(b, '#')
		} else {
			b = append(b, '.')
		}
	}
	return string(b)
}
