// Package deepgramtest is a local fake of Deepgram's live transcription
// WebSocket API (https://developers.deepgram.com/reference/speech-to-text/listen-streaming)
// for tests. It checks what it is sent (authorization, the query's model,
// encoding, rate and options, audio frames of whole samples, the control
// messages KeepAlive, Finalize and CloseStream, nothing after CloseStream)
// and fails the test on any mismatch. It "hears" one word of its transcript
// for every WordEvery of audio: interim Results as words arrive, an is_final
// segment every four words, and at Finalize the rest, from_finalize, then
// UtteranceEnd.
//
// Faults queued with Push make the next connection refused, cut after some
// audio, malformed or mute.
package deepgramtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Config says what the server expects and answers.
type Config struct {
	Key        string // expected key ("Authorization: Token <key>"), "" for none
	Model      string // default "nova-3"
	Language   string // default "en"
	SampleRate int    // default 16000
	Transcript string // default "what is the weather like today"
	WordEvery  time.Duration
	// FinalDelay delays the answer to Finalize.
	FinalDelay time.Duration
}

// Fault changes how one connection goes.
type Fault struct {
	Status    int  // refuse the upgrade with this status
	DropAfter int  // close the connection abruptly after this many samples
	Malformed bool // answer the first audio with a frame that is not JSON
	Mute      bool // never answer Finalize
}

// Conn is what one connection was sent.
type Conn struct {
	Query map[string]string
	// Opened is when the handshake completed; FirstAudio when the first
	// audio arrived (zero: none).
	Opened, FirstAudio time.Time
	Samples            int
	KeepAlives         int
	Finalizes          int
	CloseStream        bool
}

// Server is a running fake. It is safe for concurrent use.
type Server struct {
	URL string // ws://127.0.0.1:port/v1/listen

	t   testing.TB
	cfg Config
	srv *httptest.Server
	up  websocket.Upgrader

	mu     sync.Mutex
	faults []Fault
	conns  []*Conn
}

// New starts a server on the loopback interface, closed when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "nova-3"
	}
	if cfg.Language == "" {
		cfg.Language = "en"
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 16000
	}
	if cfg.Transcript == "" {
		cfg.Transcript = "what is the weather like today"
	}
	if cfg.WordEvery == 0 {
		cfg.WordEvery = 150 * time.Millisecond
	}
	s := &Server{t: t, cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/listen", s.listen)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/v1/listen"
	return s
}

// Push queues f for the next connection.
func (s *Server) Push(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Conns returns a snapshot of the connections so far, in order.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conn, len(s.conns))
	for i, c := range s.conns {
		out[i] = *c
	}
	return out
}

func (s *Server) update(c *Conn, f func(*Conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(c)
}

func (s *Server) listen(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Key != "" && r.Header.Get("Authorization") != "Token "+s.cfg.Key {
		s.t.Errorf("deepgramtest: authorization %q", r.Header.Get("Authorization"))
		http.Error(w, `{"err_code":"INVALID_AUTH"}`, http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	want := map[string]string{
		"model": s.cfg.Model, "language": s.cfg.Language, "encoding": "linear16",
		"sample_rate": strconv.Itoa(s.cfg.SampleRate), "channels": "1", "interim_results": "true",
	}
	for k, v := range want {
		if q.Get(k) != v {
			s.t.Errorf("deepgramtest: %s=%q, want %q", k, q.Get(k), v)
		}
	}
	for _, k := range []string{"endpointing", "utterance_end_ms"} {
		if _, err := strconv.Atoi(q.Get(k)); err != nil {
			s.t.Errorf("deepgramtest: %s=%q", k, q.Get(k))
		}
	}
	c := &Conn{Query: map[string]string{}}
	for k := range q {
		c.Query[k] = q.Get(k)
	}
	s.mu.Lock()
	var f Fault
	if len(s.faults) > 0 {
		f, s.faults = s.faults[0], s.faults[1:]
	}
	if f.Status == 0 {
		s.conns = append(s.conns, c)
	}
	s.mu.Unlock()
	if f.Status != 0 {
		http.Error(w, http.StatusText(f.Status), f.Status)
		return
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		s.t.Errorf("deepgramtest: upgrade: %v", err)
		return
	}
	defer ws.Close()
	s.mu.Lock()
	c.Opened = time.Now()
	s.mu.Unlock()
	s.serve(ws, c, f)
}

type alt struct {
	Transcript string  `json:"transcript"`
	Confidence float64 `json:"confidence"`
}

func results(text string, final, speechFinal, fromFinalize bool, start, dur float64) map[string]any {
	return map[string]any{
		"type": "Results", "channel_index": []int{0, 1}, "start": start, "duration": dur,
		"is_final": final, "speech_final": speechFinal, "from_finalize": fromFinalize,
		"channel": map[string]any{"alternatives": []alt{{Transcript: text, Confidence: 0.98}}},
	}
}

func (s *Server) serve(ws *websocket.Conn, c *Conn, f Fault) {
	words := strings.Fields(s.cfg.Transcript)
	perWord := int(time.Duration(s.cfg.SampleRate) * s.cfg.WordEvery / time.Second)
	samples, heard, settled := 0, 0, 0
	closed := false
	send := func(v any) bool { return ws.WriteJSON(v) == nil }
	secs := func(n int) float64 { return float64(n) / float64(s.cfg.SampleRate) }
	for {
		kind, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if closed {
			s.t.Errorf("deepgramtest: message after CloseStream")
			return
		}
		switch kind {
		case websocket.BinaryMessage:
			if len(b) == 0 || len(b)%2 != 0 {
				s.t.Errorf("deepgramtest: audio frame of %d bytes", len(b))
				return
			}
			samples += len(b) / 2
			s.update(c, func(c *Conn) {
				c.Samples = samples
				if c.FirstAudio.IsZero() {
					c.FirstAudio = time.Now()
				}
			})
			if f.DropAfter > 0 && samples >= f.DropAfter {
				ws.UnderlyingConn().Close()
				return
			}
			if f.Malformed {
				ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"Results","channel":`))
				f.Malformed = false
				continue
			}
			for heard < len(words) && (heard+1)*perWord <= samples {
				heard++
				if heard-settled == 4 {
					send(results(strings.Join(words[settled:heard], " "), true, false, false, secs(settled*perWord), secs((heard-settled)*perWord)))
					settled = heard
				} else {
					send(results(strings.Join(words[settled:heard], " "), false, false, false, secs(settled*perWord), secs((heard-settled)*perWord)))
				}
			}
		case websocket.TextMessage:
			var m struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				s.t.Errorf("deepgramtest: control message %q: %v", b, err)
				return
			}
			switch m.Type {
			case "KeepAlive":
				s.update(c, func(c *Conn) { c.KeepAlives++ })
			case "Finalize":
				s.update(c, func(c *Conn) { c.Finalizes++ })
				if f.Mute {
					continue
				}
				if samples == 0 {
					s.t.Errorf("deepgramtest: Finalize without audio")
				}
				time.Sleep(s.cfg.FinalDelay)
				send(results(strings.Join(words[settled:], " "), true, true, true, secs(settled*perWord), secs(samples-settled*perWord)))
				settled, heard = len(words), len(words)
				send(map[string]any{"type": "UtteranceEnd", "channel": []int{0, 1}, "last_word_end": secs(samples)})
			case "CloseStream":
				s.update(c, func(c *Conn) { c.CloseStream = true })
				closed = true
				send(map[string]any{"type": "Metadata", "request_id": "fake", "duration": secs(samples), "channels": 1})
				ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			default:
				s.t.Errorf("deepgramtest: unknown control message %q", b)
				return
			}
		}
	}
}
