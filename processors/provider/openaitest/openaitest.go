// Package openaitest is a local fake of the OpenAI audio API
// (https://platform.openai.com/docs/api-reference/audio) for tests: POST
// /v1/audio/transcriptions (multipart) and POST /v1/audio/speech (JSON in,
// streamed media out), and POST /v1/chat/completions (streamed answers,
// https://platform.openai.com/docs/api-reference/chat). It checks every request it is sent against its
// Config (authorization, model, voice, format, audio content type, sample
// rate and length) and fails the test on any mismatch; it answers with real
// media: flite speech, as MP3 encoded by lame, WAV or raw PCM.
//
// Faults queued with Push make the next request of an endpoint slow,
// refused (429, 5xx), cut mid-stream, stalled mid-stream or malformed.
package openaitest

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
)

// The media are flite speech of Phrase, 3.29 s:
//
//	flite -t "Hello, this is a test of streaming speech." -o hello-8k.wav
//	lame -m m --resample 24 -b 32 hello-8k.wav hello-24k.mp3
var (
	//go:embed media/hello-24k.mp3
	helloMP3 []byte
	//go:embed media/hello-8k.wav
	helloWAV []byte
)

// Phrase is what the served speech says.
const Phrase = "Hello, this is a test of streaming speech."

// SpeechRate is the sample rate of the served WAV and PCM (OpenAI's 24 kHz).
const SpeechRate = 24000

// Speech returns the served speech as 24 kHz mono PCM (what the wav and pcm
// formats hold).
func Speech() []int16 {
	f, pcm, err := audio.ReadWAV(bytes.NewReader(helloWAV))
	if err != nil {
		panic(err)
	}
	r, err := audio.NewResampler(f.SampleRate, SpeechRate)
	if err != nil {
		panic(err)
	}
	return r.Flush(r.Process(nil, pcm))
}

// SpeechMP3 returns the served MP3 (24 kHz mono, 32 kbit/s).
func SpeechMP3() []byte { return bytes.Clone(helloMP3) }

// Config says what the server expects and answers.
type Config struct {
	Key        string // expected bearer token ("" for none checked)
	STTModel   string // expected transcription model (default "whisper-1")
	TTSModel   string // expected speech model (default "tts-1")
	Voices     []string
	Language   string // expected language field ("" for none)
	Transcript string // answer to every transcription (default "what is the weather like today")
	// SampleRate is the expected rate of uploaded WAV (default 16000).
	SampleRate int
	// MinAudio and MaxAudio bound the uploaded audio's length (default
	// 100 ms and 60 s).
	MinAudio, MaxAudio time.Duration
	// Chunk and ChunkEvery pace streamed speech: Chunk bytes every
	// ChunkEvery (default: 2048 bytes, no wait).
	Chunk      int
	ChunkEvery time.Duration
	// TranscribeDelay and SpeechDelay are waited before every answer of
	// their endpoint (a Fault's FirstByte adds to them): a cloud's latency.
	TranscribeDelay, SpeechDelay time.Duration
	// ChatModel is the expected chat model (default "gpt-4o-mini"), Reply
	// the streamed answer of /v1/chat/completions, a word a chunk
	// (default "It is sunny today.").
	ChatModel string
	Reply     string
}

// Fault changes the answer to one request.
type Fault struct {
	FirstByte time.Duration // wait before answering
	Status    int           // answer with this error status
	DropAfter int           // close the connection after this many body bytes (>0)
	Malformed bool          // a 200 answer whose body is not what it says
	// StallAfter, for a chat completion, sends this many chunks of the
	// answer and then nothing, holding the stream open until the client
	// gives up (>0).
	StallAfter int
}

// Request is what the server was sent.
type Request struct {
	Path   string
	Model  string
	Voice  string // speech
	Format string // speech response_format, or transcription response_format
	Input  string // speech text
	// Audio is the uploaded WAV's samples (transcription).
	Audio       []int16
	AudioFormat frame.Format
	// User is the last user message of a chat completion.
	User string
}

// Server is a running fake. It is safe for concurrent use.
type Server struct {
	URL string // base URL, ending in /v1

	bad func(error) // told of each bad request
	cfg Config
	srv *httptest.Server

	mu     sync.Mutex
	faults map[string][]Fault
	reqs   []Request
}

// New starts a server on the loopback interface; it is closed when the
// test ends, and a bad request fails the test.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := Start(cfg, func(err error) { t.Errorf("%v", err) })
	t.Cleanup(s.Close)
	return s
}

// Start starts a server on the loopback interface for a program that is
// not a test (a benchmark): bad is told of each bad request (nil: ignored).
// The caller must Close it.
func Start(cfg Config, bad func(error)) *Server {
	if bad == nil {
		bad = func(error) {}
	}
	if cfg.STTModel == "" {
		cfg.STTModel = "whisper-1"
	}
	if cfg.TTSModel == "" {
		cfg.TTSModel = "tts-1"
	}
	if cfg.Transcript == "" {
		cfg.Transcript = "what is the weather like today"
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 16000
	}
	if cfg.MinAudio == 0 {
		cfg.MinAudio = 100 * time.Millisecond
	}
	if cfg.MaxAudio == 0 {
		cfg.MaxAudio = time.Minute
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = 2048
	}
	if cfg.ChatModel == "" {
		cfg.ChatModel = "gpt-4o-mini"
	}
	if cfg.Reply == "" {
		cfg.Reply = "It is sunny today."
	}
	s := &Server{bad: bad, cfg: cfg, faults: map[string][]Fault{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/audio/transcriptions", s.transcribe)
	mux.HandleFunc("POST /v1/audio/speech", s.speech)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close closes the server and every connection to it. Idempotent.
func (s *Server) Close() { s.srv.CloseClientConnections(); s.srv.Close() }

// Push queues f for the next request to path ("/v1/audio/speech" or
// "/v1/audio/transcriptions").
func (s *Server) Push(path string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], f)
}

// Requests returns the requests received so far, well-formed or not.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

func (s *Server) next(path string, r Request) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	q := s.faults[path]
	if len(q) == 0 {
		return Fault{}
	}
	s.faults[path] = q[1:]
	return q[0]
}

// reject fails the test and answers 400 the way OpenAI does.
func (s *Server) reject(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.bad(fmt.Errorf("openaitest: bad request: %s", msg))
	apiError(w, http.StatusBadRequest, msg)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error"}})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Key == "" {
		return true
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+s.cfg.Key {
		s.bad(fmt.Errorf("openaitest: authorization %q", got))
		apiError(w, http.StatusUnauthorized, "Incorrect API key provided")
		return false
	}
	return true
}

// wait sleeps d unless the request is abandoned first.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) transcribe(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		s.reject(w, "multipart: %v", err)
		return
	}
	req := Request{Path: r.URL.Path, Model: r.FormValue("model"), Format: r.FormValue("response_format")}
	file, hdr, err := r.FormFile("file")
	if err == nil {
		defer file.Close()
		req.AudioFormat, req.Audio, err = audio.ReadWAV(file)
	}
	f := s.next(r.URL.Path, req)
	switch {
	case err != nil:
		s.reject(w, "file: %v", err)
		return
	case req.Model != s.cfg.STTModel:
		s.reject(w, "model %q, want %q", req.Model, s.cfg.STTModel)
		return
	case r.FormValue("language") != s.cfg.Language:
		s.reject(w, "language %q, want %q", r.FormValue("language"), s.cfg.Language)
		return
	case req.Format != "" && req.Format != "json" && req.Format != "verbose_json" && req.Format != "text":
		s.reject(w, "response_format %q", req.Format)
		return
	}
	if ct, _, _ := mime.ParseMediaType(hdr.Header.Get("Content-Type")); ct != "audio/wav" && ct != "audio/x-wav" && ct != "audio/wave" {
		s.reject(w, "file content type %q", hdr.Header.Get("Content-Type"))
		return
	}
	if !strings.HasSuffix(hdr.Filename, ".wav") {
		s.reject(w, "file name %q", hdr.Filename)
		return
	}
	if want := (frame.Format{SampleRate: s.cfg.SampleRate, Channels: 1}); req.AudioFormat != want {
		s.reject(w, "audio %+v, want %+v", req.AudioFormat, want)
		return
	}
	if d := req.AudioFormat.Duration(len(req.Audio)); d < s.cfg.MinAudio || d > s.cfg.MaxAudio {
		s.reject(w, "audio of %v, want %v to %v", d, s.cfg.MinAudio, s.cfg.MaxAudio)
		return
	}
	if !wait(r, s.cfg.TranscribeDelay+f.FirstByte) {
		return
	}
	if f.Status != 0 {
		apiError(w, f.Status, http.StatusText(f.Status))
		return
	}
	var body []byte
	switch req.Format {
	case "text":
		w.Header().Set("Content-Type", "text/plain")
		body = []byte(s.cfg.Transcript + "\n")
	default:
		w.Header().Set("Content-Type", "application/json")
		body, _ = json.Marshal(map[string]any{"text": s.cfg.Transcript})
	}
	if f.Malformed {
		body = body[:len(body)/2]
	}
	s.write(w, r, f, body)
}

type speechRequest struct {
	Model          string  `json:"model"`
	Input          string  `json:"input"`
	Voice          string  `json:"voice"`
	ResponseFormat string  `json:"response_format"`
	Speed          float64 `json:"speed"`
	Instructions   string  `json:"instructions"`
}

func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var sr speechRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&sr)
	f := s.next(r.URL.Path, Request{Path: r.URL.Path, Model: sr.Model, Voice: sr.Voice, Format: sr.ResponseFormat, Input: sr.Input})
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		s.reject(w, "content type %q", r.Header.Get("Content-Type"))
		return
	}
	switch {
	case err != nil:
		s.reject(w, "body: %v", err)
		return
	case sr.Model != s.cfg.TTSModel:
		s.reject(w, "model %q, want %q", sr.Model, s.cfg.TTSModel)
		return
	case len(s.cfg.Voices) > 0 && !slices.Contains(s.cfg.Voices, sr.Voice):
		s.reject(w, "voice %q, want one of %q", sr.Voice, s.cfg.Voices)
		return
	case strings.TrimSpace(sr.Input) == "" || len(sr.Input) > 4096:
		s.reject(w, "input of %d bytes", len(sr.Input))
		return
	}
	var body []byte
	switch sr.ResponseFormat {
	case "", "mp3":
		w.Header().Set("Content-Type", "audio/mpeg")
		body = helloMP3
	case "wav":
		w.Header().Set("Content-Type", "audio/wav")
		body = streamingWAV(Speech())
	case "pcm":
		w.Header().Set("Content-Type", "audio/pcm")
		body = audio.EncodePCM16(nil, Speech())
	default:
		s.reject(w, "response_format %q", sr.ResponseFormat)
		return
	}
	if !wait(r, s.cfg.SpeechDelay+f.FirstByte) {
		return
	}
	if f.Status != 0 {
		apiError(w, f.Status, http.StatusText(f.Status))
		return
	}
	if f.Malformed {
		body = []byte("<html><body>502 Bad Gateway</body></html>" + strings.Repeat(" ", 4000))
	}
	s.write(w, r, f, body)
}

// write streams body in paced chunks, or cuts the connection after
// f.DropAfter bytes.
func (s *Server) write(w http.ResponseWriter, r *http.Request, f Fault, body []byte) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	sent := 0
	for sent < len(body) {
		n := min(s.cfg.Chunk, len(body)-sent)
		if f.DropAfter > 0 && sent+n >= f.DropAfter {
			w.Write(body[sent:f.DropAfter])
			rc.Flush()
			if conn, _, err := rc.Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if _, err := w.Write(body[sent : sent+n]); err != nil {
			return
		}
		rc.Flush()
		sent += n
		if sent < len(body) && !wait(r, s.cfg.ChunkEvery) {
			return
		}
	}
}

// streamingWAV is a WAV header whose sizes say "unknown" (0xFFFFFFFF), as
// servers that stream WAV send, followed by pcm.
func streamingWAV(pcm []int16) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(0xFFFFFFFF))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(SpeechRate), uint32(SpeechRate * 2), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(0xFFFFFFFF))
	return audio.EncodePCM16(b.Bytes(), pcm)
}

// chatRequest lists every field a chat completion request may have: an
// unknown one is a bad request.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role       string            `json:"role"`
		Content    *string           `json:"content"`
		Name       string            `json:"name"`
		ToolCalls  []json.RawMessage `json:"tool_calls"`
		ToolCallID string            `json:"tool_call_id"`
	} `json:"messages"`
	MaxTokens           int      `json:"max_tokens"`
	MaxCompletionTokens int      `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
	Stream              bool     `json:"stream"`
	StreamOptions       struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []json.RawMessage `json:"tools"`
}

// chat answers a streamed chat completion (the server-sent events of
// https://platform.openai.com/docs/api-reference/chat/streaming) with
// Reply, a word an event, or with the next Fault.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	var req chatRequest
	if err := d.Decode(&req); err != nil {
		s.reject(w, "chat request: %v", err)
		return
	}
	if req.Model != s.cfg.ChatModel {
		s.reject(w, "model %q, want %q", req.Model, s.cfg.ChatModel)
		return
	}
	if !req.Stream {
		s.reject(w, "stream is false: voiced streams answers")
		return
	}
	rec := Request{Path: r.URL.Path, Model: req.Model}
	for _, m := range req.Messages {
		if m.Role == "user" && m.Content != nil {
			rec.User = *m.Content
		}
	}
	if rec.User == "" {
		s.reject(w, "no user message")
		return
	}
	f := s.next(r.URL.Path, rec)
	if !wait(r, f.FirstByte) {
		return
	}
	if f.Status != 0 {
		apiError(w, f.Status, fmt.Sprintf("fault %d", f.Status))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if f.Malformed {
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\": 42\n\ndata: <html>502 Bad Gateway</html>\n\n")
		rc.Flush()
		return
	}
	for i, word := range strings.SplitAfter(s.cfg.Reply, " ") {
		if f.StallAfter > 0 && i == f.StallAfter {
			<-r.Context().Done()
			return
		}
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": word}}}})
		fmt.Fprintf(w, "data: %s\n\n", b)
		rc.Flush()
	}
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}})
	fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
	rc.Flush()
}
