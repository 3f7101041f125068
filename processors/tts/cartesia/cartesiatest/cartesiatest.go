// Package cartesiatest is a local fake of Cartesia's TTS WebSocket
// (https://docs.cartesia.ai/api-reference/tts/websocket) for tests. It
// checks what it is sent (X-API-Key and Cartesia-Version, each request's
// model, voice, context_id, raw pcm_s16le output and add_timestamps, cancel
// messages for known contexts) and fails the test on any mismatch. Each
// context is answered with real speech (flite's, at the requested rate) in
// base64 chunks, word timestamps spread over it, and done. Contexts on one
// connection are served concurrently, their messages interleaved.
package cartesiatest

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/processors/provider/openaitest"
)

// Config says what the server expects.
type Config struct {
	Key    string   // expected X-API-Key, "" for none checked
	Model  string   // default "sonic-2"
	Voices []string // accepted voice IDs (default any)
	// ChunkEvery paces each context's chunks (default none).
	ChunkEvery time.Duration
}

// Fault changes how one context (or its connection) goes.
type Fault struct {
	Status    int  // refuse the next upgrade with this status
	Error     int  // answer the next context with an error of this status
	DropAfter int  // close the connection after this many chunks of the next context
	Malformed bool // answer the next context with a chunk that is not base64
}

// Request is one context's request.
type Request struct {
	Model, Voice, Transcript, Language, ContextID string
	SampleRate                                    int
	Cancelled                                     bool
	// Conn is the connection's number (from 1, in the order accepted);
	// Opened when its handshake completed, Asked when the request came.
	Conn          int
	Opened, Asked time.Time
	// Timestamps are the word timestamps sent for the context (seconds
	// from the start of its audio).
	Timestamps struct {
		Words      []string
		Start, End []float64
	}
}

// Server is a running fake. It is safe for concurrent use.
type Server struct {
	URL string

	t   testing.TB
	cfg Config
	srv *httptest.Server
	up  websocket.Upgrader

	mu       sync.Mutex
	faults   []Fault
	requests []Request
	conns    int
}

// New starts a server on the loopback interface, closed when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "sonic-2"
	}
	s := &Server{t: t, cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tts/websocket", s.serve)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/tts/websocket"
	return s
}

// Push queues a fault.
func (s *Server) Push(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Requests returns the requests so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Conns returns how many connections were accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *Server) fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

type wire struct {
	ModelID    string `json:"model_id"`
	Transcript string `json:"transcript"`
	Voice      *struct {
		Mode string `json:"mode"`
		ID   string `json:"id"`
	} `json:"voice"`
	Language     string `json:"language"`
	ContextID    string `json:"context_id"`
	OutputFormat *struct {
		Container  string `json:"container"`
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sample_rate"`
	} `json:"output_format"`
	AddTimestamps bool `json:"add_timestamps"`
	Continue      bool `json:"continue"`
	Cancel        bool `json:"cancel"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Key != "" && r.Header.Get("X-API-Key") != s.cfg.Key {
		s.t.Errorf("cartesiatest: X-API-Key %q", r.Header.Get("X-API-Key"))
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Cartesia-Version") == "" {
		s.t.Errorf("cartesiatest: no Cartesia-Version")
	}
	s.mu.Lock()
	if len(s.faults) > 0 && s.faults[0].Status != 0 {
		st := s.faults[0].Status
		s.faults = s.faults[1:]
		s.mu.Unlock()
		http.Error(w, http.StatusText(st), st)
		return
	}
	s.mu.Unlock()
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns++ // once the handshake is over
	conn, opened := s.conns, time.Now()
	s.mu.Unlock()
	defer ws.Close()
	var wmu sync.Mutex
	write := func(v any) error {
		wmu.Lock()
		defer wmu.Unlock()
		return ws.WriteJSON(v)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var cmu sync.Mutex
	cancelled := map[string]chan struct{}{}
	for {
		var m wire
		if err := ws.ReadJSON(&m); err != nil {
			return
		}
		if m.Cancel {
			cmu.Lock()
			ch, ok := cancelled[m.ContextID]
			if ok {
				close(ch)
				delete(cancelled, m.ContextID)
			}
			cmu.Unlock()
			s.mu.Lock()
			for i := range s.requests {
				if s.requests[i].ContextID == m.ContextID {
					s.requests[i].Cancelled = true
					ok = true
				}
			}
			s.mu.Unlock()
			if !ok {
				s.t.Errorf("cartesiatest: cancel of unknown context %q", m.ContextID)
			}
			continue
		}
		switch {
		case m.ModelID != s.cfg.Model:
			s.t.Errorf("cartesiatest: model_id %q, want %q", m.ModelID, s.cfg.Model)
		case m.Voice == nil || m.Voice.Mode != "id" || (len(s.cfg.Voices) > 0 && !slices.Contains(s.cfg.Voices, m.Voice.ID)):
			s.t.Errorf("cartesiatest: voice %+v", m.Voice)
		case m.ContextID == "" || strings.TrimSpace(m.Transcript) == "":
			s.t.Errorf("cartesiatest: context %q, transcript %q", m.ContextID, m.Transcript)
		case m.OutputFormat == nil || m.OutputFormat.Container != "raw" || m.OutputFormat.Encoding != "pcm_s16le" || !audio.SupportedRate(m.OutputFormat.SampleRate):
			s.t.Errorf("cartesiatest: output_format %+v", m.OutputFormat)
		case !m.AddTimestamps:
			s.t.Errorf("cartesiatest: add_timestamps not set")
		default:
			s.mu.Lock()
			s.requests = append(s.requests, Request{Model: m.ModelID, Voice: m.Voice.ID, Transcript: m.Transcript,
				Language: m.Language, ContextID: m.ContextID, SampleRate: m.OutputFormat.SampleRate,
				Conn: conn, Opened: opened, Asked: time.Now()})
			s.mu.Unlock()
			stop := make(chan struct{})
			cmu.Lock()
			cancelled[m.ContextID] = stop
			cmu.Unlock()
			f := s.fault()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.speak(ws, write, m.ContextID, m.Transcript, m.OutputFormat.SampleRate, f, stop)
			}()
			continue
		}
		write(map[string]any{"type": "error", "context_id": m.ContextID, "status_code": 400, "done": true, "error": "bad request"})
	}
}

func (s *Server) speak(ws *websocket.Conn, write func(any) error, id, text string, rate int, f Fault, stop <-chan struct{}) {
	if f.Error != 0 {
		write(map[string]any{"type": "error", "context_id": id, "status_code": f.Error, "done": true, "error": http.StatusText(f.Error)})
		return
	}
	rs, _ := audio.NewResampler(openaitest.SpeechRate, rate)
	pcm := rs.Flush(rs.Process(nil, openaitest.Speech()))
	words := strings.Fields(text)
	secs := float64(len(pcm)) / float64(rate)
	per := secs / float64(len(words))
	chunk := rate / 5
	n := (len(pcm) + chunk - 1) / chunk
	w := 0
	for i := range n {
		select {
		case <-stop:
			return
		default:
		}
		if f.DropAfter > 0 && i == f.DropAfter {
			ws.UnderlyingConn().Close()
			return
		}
		part := pcm[i*chunk : min((i+1)*chunk, len(pcm))]
		data := base64.StdEncoding.EncodeToString(audio.EncodePCM16(nil, part))
		if f.Malformed {
			data = "%%%"
		}
		if write(map[string]any{"type": "chunk", "context_id": id, "data": data, "done": false, "status_code": 206, "step_time": 12.5}) != nil {
			return
		}
		end := float64(i*chunk+len(part)) / float64(rate)
		var ts struct {
			Words []string  `json:"words"`
			Start []float64 `json:"start"`
			End   []float64 `json:"end"`
		}
		for ; w < len(words) && float64(w)*per < end; w++ {
			ts.Words = append(ts.Words, words[w])
			ts.Start = append(ts.Start, float64(w)*per)
			ts.End = append(ts.End, float64(w+1)*per)
		}
		if len(ts.Words) > 0 {
			write(map[string]any{"type": "timestamps", "context_id": id, "done": false, "status_code": 206, "word_timestamps": ts})
			s.mu.Lock()
			for i := range s.requests {
				if r := &s.requests[i]; r.ContextID == id {
					r.Timestamps.Words = append(r.Timestamps.Words, ts.Words...)
					r.Timestamps.Start = append(r.Timestamps.Start, ts.Start...)
					r.Timestamps.End = append(r.Timestamps.End, ts.End...)
				}
			}
			s.mu.Unlock()
		}
		if s.cfg.ChunkEvery > 0 {
			select {
			case <-stop:
				return
			case <-time.After(s.cfg.ChunkEvery):
			}
		}
	}
	write(map[string]any{"type": "done", "context_id": id, "done": true, "status_code": 206})
}
