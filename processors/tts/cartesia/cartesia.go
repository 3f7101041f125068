// Package cartesia is a streaming speech synthesizer for Cartesia's
// WebSocket API (https://docs.cartesia.ai/api-reference/tts/websocket).
//
// One WebSocket, opened ahead and shared by every sentence of every
// session, carries each sentence as its own context (context_id): the
// request with the transcript, raw pcm_s16le output and add_timestamps,
// then "chunk" messages of base64 audio and "timestamps" messages of word
// timings, until "done". A sentence cut short by its caller is cancelled
// on the server with {"context_id": ..., "cancel": true}. A connection
// that fails is dialed again by the next sentence.
package cartesia

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/tts"
)

// Name is the provider's name in errors, spans and configuration.
const Name = "cartesia"

// DefaultBaseURL is Cartesia's WebSocket endpoint.
const DefaultBaseURL = "wss://api.cartesia.ai/tts/websocket"

// APIVersion is the Cartesia-Version this package speaks.
const APIVersion = "2024-06-10"

// Config configures a Synthesizer; it is the [tts.cartesia] table of
// voiced.toml. Voice is required (a Cartesia voice ID); the key is in
// CARTESIA_API_KEY by default.
type Config struct {
	BaseURL    string `toml:"base_url"`    // default DefaultBaseURL
	APIKeyEnv  string `toml:"api_key_env"` // default CARTESIA_API_KEY
	Voice      string `toml:"voice"`       // voice ID; agents' voices override it
	Model      string `toml:"model"`       // default "sonic-2"
	Language   string `toml:"language"`    // default "en"
	SampleRate int    `toml:"sample_rate"` // default 24000
	// Timeout bounds a sentence (default 30s); DialTimeout the handshake
	// (default 5s); FirstByteTimeout the wait for its first audio (default
	// 10s).
	Timeout          time.Duration `toml:"timeout"`
	DialTimeout      time.Duration `toml:"dial_timeout"`
	FirstByteTimeout time.Duration `toml:"first_byte_timeout"`

	// Observer, if set, is told of every sentence.
	Observer provider.Observer `toml:"-"`
}

var (
	// ErrConfig is wrapped by the errors of Validate and New.
	ErrConfig = errors.New("tts/cartesia: bad config")
	// ErrProtocol is wrapped by the errors of messages that do not follow
	// the protocol.
	ErrProtocol = errors.New("tts/cartesia: protocol error")
	// ErrClosed is returned by Synthesize after Close.
	ErrClosed = errors.New("tts/cartesia: closed")
)

func (c *Config) defaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.APIKeyEnv == "" {
		c.APIKeyEnv = "CARTESIA_API_KEY"
	}
	if c.Model == "" {
		c.Model = "sonic-2"
	}
	if c.Language == "" {
		c.Language = "en"
	}
	if c.SampleRate == 0 {
		c.SampleRate = 24000
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.FirstByteTimeout == 0 {
		c.FirstByteTimeout = 10 * time.Second
	}
}

// Validate reports what is wrong with c (after defaults), including an
// unset key variable, which it names.
func (c Config) Validate() error {
	c.defaults()
	_, err := c.check()
	return err
}

func (c *Config) check() (string, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return "", fmt.Errorf("%w: base_url %q (ws:// or wss://)", ErrConfig, c.BaseURL)
	}
	if c.Voice == "" {
		return "", fmt.Errorf("%w: voice (a voice ID) is required", ErrConfig)
	}
	if !audio.SupportedRate(c.SampleRate) {
		return "", fmt.Errorf("%w: sample_rate %d", ErrConfig, c.SampleRate)
	}
	if c.Timeout < 0 || c.DialTimeout < 0 || c.FirstByteTimeout < 0 {
		return "", fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	key, err := provider.APIKey(c.APIKeyEnv)
	if err != nil {
		return "", fmt.Errorf("tts/cartesia: %w", err)
	}
	return key, nil
}

// Words are word timings of a sentence, in seconds from its audio's start.
type Words struct {
	Words []string  `json:"words"`
	Start []float64 `json:"start"`
	End   []float64 `json:"end"`
}

// Synthesizer is a tts.Synthesizer for Cartesia. It is safe for concurrent
// use; sentences share one connection. Close it to close the connection.
type Synthesizer struct {
	cfg    Config
	header http.Header
	dialer websocket.Dialer
	ids    atomic.Uint64

	mu      sync.Mutex
	conn    *conn
	closed  bool
	warming bool // Warm is dialing
	wg      sync.WaitGroup
}

var _ tts.WordSynthesizer = (*Synthesizer)(nil)

// New returns a synthesizer, or an error naming what is wrong with cfg.
func New(cfg Config) (*Synthesizer, error) {
	cfg.defaults()
	key, err := cfg.check()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Cartesia-Version", APIVersion)
	if key != "" {
		h.Set("X-API-Key", key)
	}
	return &Synthesizer{cfg: cfg, header: h, dialer: websocket.Dialer{HandshakeTimeout: cfg.DialTimeout, Proxy: http.ProxyFromEnvironment}}, nil
}

// Format implements tts.Synthesizer.
func (s *Synthesizer) Format() frame.Format {
	return frame.Format{SampleRate: s.cfg.SampleRate, Channels: 1}
}

// Connect opens the shared connection now, if it is not open.
func (s *Synthesizer) Connect(ctx context.Context) error {
	_, err := s.get(ctx)
	return err
}

// Warm implements provider.Warmer: it opens the shared connection in the
// background, if it is not open or being opened.
func (s *Synthesizer) Warm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.warming || s.conn != nil && s.conn.alive() {
		return
	}
	s.warming = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.get(context.Background()) // a failure is the next sentence's to meet
		s.mu.Lock()
		s.warming = false
		s.mu.Unlock()
	}()
}

func (c *conn) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil
}

// Close closes the connection, ends the sentences in progress with an
// error, and waits for the reader. Idempotent.
func (s *Synthesizer) Close() error {
	s.mu.Lock()
	s.closed = true
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.ws.Close()
	}
	s.wg.Wait()
	return nil
}

// conn is the shared connection and its contexts.
type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex

	mu   sync.Mutex
	ctxs map[string]*inbox
	err  error // set when the reader ends
}

// inbox queues one context's messages without ever blocking the reader.
type inbox struct {
	mu   sync.Mutex
	msgs []message
	err  error
	wake chan struct{} // cap 1
}

func (b *inbox) put(m message, err error) {
	b.mu.Lock()
	if err != nil {
		b.err = err
	} else {
		b.msgs = append(b.msgs, m)
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *inbox) next(ctx context.Context) (message, error) {
	for {
		b.mu.Lock()
		if len(b.msgs) > 0 {
			m := b.msgs[0]
			b.msgs = b.msgs[1:]
			b.mu.Unlock()
			return m, nil
		}
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return message{}, err
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-ctx.Done():
			return message{}, context.Cause(ctx)
		}
	}
}

func (c *conn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteJSON(v)
}

// get returns the live connection, dialing one if there is none.
func (s *Synthesizer) get(ctx context.Context) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.conn != nil {
		s.conn.mu.Lock()
		dead := s.conn.err != nil
		s.conn.mu.Unlock()
		if !dead {
			return s.conn, nil
		}
		s.conn = nil
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	ws, resp, err := s.dialer.DialContext(dctx, s.cfg.BaseURL, s.header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		return nil, provider.Wrap(ctx, Name, "connect", status, err)
	}
	c := &conn{ws: ws, ctxs: map[string]*inbox{}}
	s.conn = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.read()
	}()
	return c, nil
}

type message struct {
	Type       string `json:"type"`
	ContextID  string `json:"context_id"`
	Data       string `json:"data"`
	Done       bool   `json:"done"`
	StatusCode int    `json:"status_code"`
	Error      string `json:"error"`
	Timestamps *Words `json:"word_timestamps"`
}

// read dispatches messages to their contexts until the connection fails,
// then fails every context.
func (c *conn) read() {
	var err error
	for {
		var kind int
		var b []byte
		kind, b, err = c.ws.ReadMessage()
		if err != nil {
			err = &provider.Error{Provider: Name, Op: "synthesize", Retryable: true, Err: fmt.Errorf("connection lost: %w", err)}
			break
		}
		if kind != websocket.TextMessage {
			err = &provider.Error{Provider: Name, Op: "synthesize", Retryable: true, Err: fmt.Errorf("%w: binary message", ErrProtocol)}
			break
		}
		m, perr := parse(b)
		if perr != nil {
			err = &provider.Error{Provider: Name, Op: "synthesize", Retryable: true, Err: fmt.Errorf("%w: %v: %.80q", ErrProtocol, perr, b)}
			break
		}
		c.mu.Lock()
		box := c.ctxs[m.ContextID]
		c.mu.Unlock()
		if box != nil { // else a cancelled context's late message
			box.put(m, nil)
		}
	}
	c.ws.Close()
	c.mu.Lock()
	c.err = err
	boxes := c.ctxs
	c.ctxs = map[string]*inbox{}
	c.mu.Unlock()
	for _, b := range boxes {
		b.put(message{}, err)
	}
}

type request struct {
	ModelID       string       `json:"model_id"`
	Transcript    string       `json:"transcript"`
	Voice         voiceSpec    `json:"voice"`
	Language      string       `json:"language"`
	ContextID     string       `json:"context_id"`
	OutputFormat  outputFormat `json:"output_format"`
	AddTimestamps bool         `json:"add_timestamps"`
	Continue      bool         `json:"continue"`
}

type voiceSpec struct {
	Mode string `json:"mode"`
	ID   string `json:"id"`
}

type outputFormat struct {
	Container  string `json:"container"`
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sample_rate"`
}

var (
	errFirstByte = errors.New("no audio within the first-byte timeout")
	errTimeout   = errors.New("sentence not synthesized within the timeout")
)

// SynthesizeWords implements tts.WordSynthesizer with Cartesia's word
// timestamps (seconds from the start of the context's audio: the
// sentence's).
func (s *Synthesizer) SynthesizeWords(ctx context.Context, text, voice string, emit func(pcm []int16) error, words func([]frame.Word)) error {
	return s.SynthesizeTimed(ctx, text, voice, emit, func(w Words) {
		ws := make([]frame.Word, len(w.Words))
		for i := range w.Words {
			ws[i] = frame.Word{Text: w.Words[i], Start: seconds(w.Start[i]), End: seconds(w.End[i])}
		}
		words(ws)
	})
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Synthesize implements tts.Synthesizer.
func (s *Synthesizer) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error {
	return s.SynthesizeTimed(ctx, text, voice, emit, nil)
}

// SynthesizeTimed is Synthesize that also passes the word timings as they
// arrive to words (which may be nil): what was played of the sentence can
// be known to the word.
func (s *Synthesizer) SynthesizeTimed(ctx context.Context, text, voice string, emit func(pcm []int16) error, words func(Words)) (err error) {
	if voice == "" {
		voice = s.cfg.Voice
	}
	ctx, call := provider.Start(ctx, s.cfg.Observer, provider.CallInfo{Provider: Name, Op: "synthesize", Model: s.cfg.Model})
	defer func() { call.End(err) }()
	c, err := s.get(ctx)
	if err != nil {
		return err
	}
	id := "voiced-" + strconv.FormatUint(s.ids.Add(1), 10)
	box := &inbox{wake: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.ctxs[id] = box
	c.mu.Unlock()
	finished := false
	defer func() {
		c.mu.Lock()
		delete(c.ctxs, id)
		c.mu.Unlock()
		if !finished {
			c.write(map[string]any{"context_id": id, "cancel": true}) // best effort
		}
	}()
	tctx, cancel := context.WithTimeoutCause(ctx, s.cfg.Timeout, errTimeout)
	defer cancel()
	fctx, fcancel := context.WithCancelCause(tctx)
	defer fcancel(nil)
	first := time.AfterFunc(s.cfg.FirstByteTimeout, func() { fcancel(errFirstByte) })
	defer first.Stop()
	fail := func(err error) error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if cause := context.Cause(fctx); cause == errFirstByte || cause == errTimeout {
			err = cause
		}
		return provider.Wrap(ctx, Name, "synthesize", 0, err)
	}
	err = c.write(request{
		ModelID: s.cfg.Model, Transcript: strings.TrimSpace(text), Voice: voiceSpec{Mode: "id", ID: voice},
		Language: s.cfg.Language, ContextID: id, AddTimestamps: true,
		OutputFormat: outputFormat{Container: "raw", Encoding: "pcm_s16le", SampleRate: s.cfg.SampleRate},
	})
	if err != nil {
		return fail(err)
	}
	var pcm []int16
	got := false
	for {
		m, err := box.next(fctx)
		if err != nil {
			return fail(err)
		}
		switch m.Type {
		case "chunk":
			if pcm, err = chunk(m, pcm[:0]); err != nil {
				return fail(err)
			}
			if !got {
				got = true
				first.Stop()
				call.FirstResult()
			}
			if err := emit(pcm); err != nil {
				return err
			}
		case "timestamps":
			if w := m.Timestamps; w != nil && (len(w.Start) != len(w.Words) || len(w.End) != len(w.Words)) {
				return fail(fmt.Errorf("%w: timestamps of %d words with %d and %d times", ErrProtocol, len(w.Words), len(w.Start), len(w.End)))
			}
			if m.Timestamps != nil && words != nil {
				words(*m.Timestamps)
			}
		case "done":
			finished = true
			if !got {
				return fail(errors.New("no audio"))
			}
			return nil
		case "error":
			finished = true
			return provider.Wrap(ctx, Name, "synthesize", m.StatusCode, errors.New(m.Error))
		default:
			return fail(fmt.Errorf("%w: message type %q", ErrProtocol, m.Type))
		}
	}
}

// parse reads one server message; every message names its context.
func parse(b []byte) (message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.ContextID == "" {
		return m, errors.New("no context_id")
	}
	return m, nil
}

// chunk appends the audio of a "chunk" message to dst.
func chunk(m message, dst []int16) ([]int16, error) {
	raw, err := base64.StdEncoding.DecodeString(m.Data)
	if err == nil {
		dst, err = audio.DecodePCM16(dst, raw)
	}
	if err != nil {
		return dst, fmt.Errorf("%w: audio: %v", ErrProtocol, err)
	}
	return dst, nil
}
