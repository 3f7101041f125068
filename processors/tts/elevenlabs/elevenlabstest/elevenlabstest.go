// Package elevenlabstest is a local fake of ElevenLabs' WebSocket
// input-streaming API
// (https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input)
// for tests. It checks what it is sent (the xi-api-key header, the voice in
// the path, model_id and output_format, the opening single space, text
// ending in a space, the empty text that ends the input, nothing after it)
// and fails the test on any mismatch. It answers with real speech (flite's,
// at the requested rate) in base64 PCM chunks, each with the character
// alignment of the text spread over the audio (as ElevenLabs sends it: the
// characters whose start falls in the chunk, their times in milliseconds
// from the chunk's start), then isFinal.
package elevenlabstest

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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
	Key    string   // expected xi-api-key, "" for none checked
	Model  string   // default "eleven_flash_v2_5"
	Voices []string // accepted voice IDs (default any)
	// ChunkEvery paces the audio chunks (default none).
	ChunkEvery time.Duration
}

// Fault changes how one connection goes.
type Fault struct {
	Status    int  // refuse the upgrade with this status
	DropAfter int  // close the connection abruptly after this many audio chunks
	Malformed bool // send a chunk whose audio is not base64
	FirstByte time.Duration
}

// Sentence is what one connection was asked to say.
type Sentence struct {
	Voice  string
	Format string // output_format
	Text   string
	Chunks int // audio chunks sent
	// Conn is the connection's number (from 1, in the order accepted);
	// Opened when its handshake completed, Asked when the text came.
	Conn          int
	Opened, Asked time.Time
	// Chars are the characters aligned, with their start and duration in
	// milliseconds from the start of the sentence's audio (the chunks
	// carried them from their own starts).
	Chars          []string
	StartMs, DurMs []int
}

// Server is a running fake. It is safe for concurrent use.
type Server struct {
	URL string // ws://127.0.0.1:port

	t   testing.TB
	cfg Config
	srv *httptest.Server
	up  websocket.Upgrader

	mu     sync.Mutex
	faults []Fault
	said   []Sentence
	conns  int
}

// New starts a server on the loopback interface, closed when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "eleven_flash_v2_5"
	}
	s := &Server{t: t, cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/text-to-speech/{voice}/stream-input", s.stream)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	return s
}

// Push queues f for the next connection.
func (s *Server) Push(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Said returns the sentences spoken so far.
func (s *Server) Said() []Sentence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.said)
}

// Conns returns how many connections were accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

type message struct {
	Text          *string        `json:"text"`
	VoiceSettings map[string]any `json:"voice_settings"`
	Flush         bool           `json:"flush"`
	TryTrigger    bool           `json:"try_trigger_generation"`
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Key != "" && r.Header.Get("xi-api-key") != s.cfg.Key {
		s.t.Errorf("elevenlabstest: xi-api-key %q", r.Header.Get("xi-api-key"))
		http.Error(w, `{"detail":"invalid_api_key"}`, http.StatusUnauthorized)
		return
	}
	voice, q := r.PathValue("voice"), r.URL.Query()
	if len(s.cfg.Voices) > 0 && !slices.Contains(s.cfg.Voices, voice) {
		s.t.Errorf("elevenlabstest: voice %q", voice)
	}
	if q.Get("model_id") != s.cfg.Model {
		s.t.Errorf("elevenlabstest: model_id %q, want %q", q.Get("model_id"), s.cfg.Model)
	}
	format := q.Get("output_format")
	rate, err := strconv.Atoi(strings.TrimPrefix(format, "pcm_"))
	if !strings.HasPrefix(format, "pcm_") || err != nil || !audio.SupportedRate(rate) {
		s.t.Errorf("elevenlabstest: output_format %q", format)
		http.Error(w, "bad output_format", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	var f Fault
	if len(s.faults) > 0 {
		f, s.faults = s.faults[0], s.faults[1:]
	}
	s.mu.Unlock()
	if f.Status != 0 {
		http.Error(w, http.StatusText(f.Status), f.Status)
		return
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	s.mu.Lock()
	s.conns++
	conn, opened := s.conns, time.Now()
	s.mu.Unlock()
	// The input: " ", then text, then "".
	var asked time.Time
	var text strings.Builder
	for i := 0; ; i++ {
		var m message
		if err := ws.ReadJSON(&m); err != nil {
			return // a warm connection closed unused, or a client gone
		}
		switch {
		case m.Text == nil:
			s.t.Errorf("elevenlabstest: message without text")
			return
		case i == 0 && *m.Text != " ":
			s.t.Errorf("elevenlabstest: first message %q, want a single space", *m.Text)
			return
		case i == 0:
			continue
		case *m.Text == "":
		case !strings.HasSuffix(*m.Text, " "):
			s.t.Errorf("elevenlabstest: text %q does not end with a space", *m.Text)
			return
		default:
			if asked.IsZero() {
				asked = time.Now()
			}
			text.WriteString(*m.Text)
			continue
		}
		break
	}
	said := strings.TrimSpace(text.String())
	if said == "" {
		s.t.Errorf("elevenlabstest: no text")
		return
	}
	if f.FirstByte > 0 {
		time.Sleep(f.FirstByte)
	}
	rs, _ := audio.NewResampler(openaitest.SpeechRate, rate)
	pcm := rs.Flush(rs.Process(nil, openaitest.Speech()))
	chars := strings.Split(said, "")
	chunk := rate / 5 // 200 ms
	n := (len(pcm) + chunk - 1) / chunk
	msPerChar := float64(len(pcm)) * 1000 / float64(rate) / float64(len(chars))
	sent := 0
	var aligned Sentence
	for i := 0; i < n; i++ {
		if f.DropAfter > 0 && i == f.DropAfter {
			ws.UnderlyingConn().Close()
			return
		}
		part := pcm[i*chunk : min((i+1)*chunk, len(pcm))]
		// The characters whose start falls in this chunk.
		var al struct {
			Chars   []string `json:"chars"`
			StartMs []int    `json:"charStartTimesMs"`
			DurMs   []int    `json:"charDurationsMs"`
		}
		from := i * chunk * 1000 / rate // ms; chunks are 200 ms
		for c := range chars {
			start := float64(c) * msPerChar
			if start >= float64(i*chunk)*1000/float64(rate) && start < float64(i*chunk+len(part))*1000/float64(rate) {
				al.Chars = append(al.Chars, chars[c])
				al.StartMs = append(al.StartMs, int(start)-from)
				al.DurMs = append(al.DurMs, int(msPerChar))
				aligned.Chars = append(aligned.Chars, chars[c])
				aligned.StartMs = append(aligned.StartMs, int(start))
				aligned.DurMs = append(aligned.DurMs, int(msPerChar))
			}
		}
		b64 := base64.StdEncoding.EncodeToString(audio.EncodePCM16(nil, part))
		if f.Malformed {
			b64 = "!!not base64!!"
		}
		msg := map[string]any{"audio": b64, "isFinal": nil, "alignment": al, "normalizedAlignment": al}
		if err := ws.WriteJSON(msg); err != nil {
			return
		}
		sent++
		if s.cfg.ChunkEvery > 0 {
			time.Sleep(s.cfg.ChunkEvery)
		}
	}
	// Recorded before the final message, which lets the client go on.
	s.mu.Lock()
	s.said = append(s.said, Sentence{Voice: voice, Format: format, Text: said, Chunks: sent, Conn: conn, Opened: opened, Asked: asked, Chars: aligned.Chars, StartMs: aligned.StartMs, DurMs: aligned.DurMs})
	s.mu.Unlock()
	ws.WriteJSON(map[string]any{"isFinal": true})
}
