// Package deepgram is a streaming speech recognizer for Deepgram's live
// transcription API (WebSocket, https://developers.deepgram.com/reference/speech-to-text/listen-streaming).
//
// Each utterance streams over its own WebSocket: binary frames of linear16
// audio go up; Results messages come back as interim results (the
// utterance's settled segments, is_final, followed by the unsettled one).
// Finish sends Finalize, and the Results marked from_finalize give the
// final transcript; the stream then sends CloseStream. Deepgram's own
// endpointing (speech_final) and UtteranceEnd events end the utterance too
// once it is finished. A connection is dialed ahead of each utterance and
// kept open with KeepAlive messages, so an utterance does not pay the
// handshake.
package deepgram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/voiced-dev/voiced/processors/stt"
)

// Name is the provider's name in errors, spans and configuration.
const Name = "deepgram"

// DefaultBaseURL is Deepgram's live endpoint.
const DefaultBaseURL = "wss://api.deepgram.com/v1/listen"

// Config configures a Recognizer; it is the [stt.deepgram] table of
// voiced.toml. The zero value recognizes English with nova-3, the key in
// DEEPGRAM_API_KEY.
type Config struct {
	BaseURL    string `toml:"base_url"`    // default DefaultBaseURL
	APIKeyEnv  string `toml:"api_key_env"` // default DEEPGRAM_API_KEY
	Model      string `toml:"model"`       // default "nova-3"
	Language   string `toml:"language"`    // default "en"
	SampleRate int    `toml:"sample_rate"` // of the audio sent (default 16000)
	// Endpointing is the silence after which Deepgram marks speech final
	// (default 300ms); UtteranceEnd the gap in words after which it sends
	// UtteranceEnd (default 1s, at least 1s).
	Endpointing  time.Duration `toml:"endpointing"`
	UtteranceEnd time.Duration `toml:"utterance_end"`
	SmartFormat  bool          `toml:"smart_format"`
	Keyterms     []string      `toml:"keyterms"` // vocabulary to favour (nova-3)
	// KeepAlive is the interval of KeepAlive messages on a connection
	// waiting for its utterance (default 5s; Deepgram closes a silent one
	// after 10s). Warm is how many connections are kept dialed ahead
	// (default 1; -1: none).
	KeepAlive time.Duration `toml:"keep_alive"`
	Warm      int           `toml:"warm"`
	// DialTimeout bounds the WebSocket handshake (default 5s).
	DialTimeout time.Duration `toml:"dial_timeout"`

	// Observer, if set, is told of every utterance.
	Observer provider.Observer `toml:"-"`
}

// ErrConfig is wrapped by the errors of Validate and New.
var ErrConfig = errors.New("stt/deepgram: bad config")

func (c *Config) defaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.APIKeyEnv == "" {
		c.APIKeyEnv = "DEEPGRAM_API_KEY"
	}
	if c.Model == "" {
		c.Model = "nova-3"
	}
	if c.Language == "" {
		c.Language = "en"
	}
	if c.SampleRate == 0 {
		c.SampleRate = 16000
	}
	if c.Endpointing == 0 {
		c.Endpointing = 300 * time.Millisecond
	}
	if c.UtteranceEnd == 0 {
		c.UtteranceEnd = time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 5 * time.Second
	}
	if c.Warm == 0 {
		c.Warm = 1
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
}

// Validate reports what is wrong with c (after defaults), including an
// unset key variable, which it names.
func (c Config) Validate() error {
	c.defaults()
	_, _, err := c.check()
	return err
}

func (c *Config) check() (*url.URL, string, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return nil, "", fmt.Errorf("%w: base_url %q (ws:// or wss://)", ErrConfig, c.BaseURL)
	}
	if !audio.SupportedRate(c.SampleRate) {
		return nil, "", fmt.Errorf("%w: sample_rate %d", ErrConfig, c.SampleRate)
	}
	if c.UtteranceEnd < time.Second {
		return nil, "", fmt.Errorf("%w: utterance_end %v (at least 1s)", ErrConfig, c.UtteranceEnd)
	}
	if c.Endpointing < 0 || c.KeepAlive < 0 || c.DialTimeout < 0 || c.Warm < -1 {
		return nil, "", fmt.Errorf("%w: negative setting", ErrConfig)
	}
	key, err := provider.APIKey(c.APIKeyEnv)
	if err != nil {
		return nil, "", fmt.Errorf("stt/deepgram: %w", err)
	}
	q := u.Query()
	q.Set("model", c.Model)
	q.Set("language", c.Language)
	q.Set("encoding", "linear16")
	q.Set("sample_rate", strconv.Itoa(c.SampleRate))
	q.Set("channels", "1")
	q.Set("interim_results", "true")
	q.Set("endpointing", strconv.FormatInt(c.Endpointing.Milliseconds(), 10))
	q.Set("utterance_end_ms", strconv.FormatInt(c.UtteranceEnd.Milliseconds(), 10))
	q.Set("vad_events", "true")
	if c.SmartFormat {
		q.Set("smart_format", "true")
	}
	for _, k := range c.Keyterms {
		q.Add("keyterm", k)
	}
	u.RawQuery = q.Encode()
	return u, key, nil
}

// Recognizer is an stt.Recognizer for Deepgram. It is safe for concurrent
// use. Close it to close the connections it keeps warm.
type Recognizer struct {
	cfg    Config
	url    string
	header http.Header
	dialer websocket.Dialer

	mu     sync.Mutex
	spares []*spare
	dials  int // dials in flight for spares
	closed bool
	wg     sync.WaitGroup
}

var _ stt.Recognizer = (*Recognizer)(nil)

// New returns a recognizer, or an error naming what is wrong with cfg. It
// dials nothing until the first Open.
func New(cfg Config) (*Recognizer, error) {
	cfg.defaults()
	u, key, err := cfg.check()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Token "+key)
	}
	return &Recognizer{cfg: cfg, url: u.String(), header: h,
		dialer: websocket.Dialer{HandshakeTimeout: cfg.DialTimeout, Proxy: http.ProxyFromEnvironment}}, nil
}

// Format implements stt.Recognizer.
func (r *Recognizer) Format() frame.Format {
	return frame.Format{SampleRate: r.cfg.SampleRate, Channels: 1}
}

// Close closes the warm connections and waits for their goroutines. Open
// streams are not affected. Idempotent.
func (r *Recognizer) Close() error {
	r.mu.Lock()
	r.closed = true
	spares := r.spares
	r.spares = nil
	r.mu.Unlock()
	for _, s := range spares {
		s.stop()
		s.conn.Close()
	}
	r.wg.Wait()
	return nil
}

// dial opens a connection.
func (r *Recognizer) dial(ctx context.Context) (*websocket.Conn, error) {
	c, resp, err := r.dialer.DialContext(ctx, r.url, r.header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		return nil, provider.Wrap(ctx, Name, "connect", status, err)
	}
	return c, nil
}

// spare is a connection dialed ahead, kept alive until an Open takes it.
type spare struct {
	conn *websocket.Conn
	quit chan struct{}
	done chan struct{}
	bad  bool // a KeepAlive failed; read after done
}

func (s *spare) stop() {
	close(s.quit)
	<-s.done
}

// keepAlive sends KeepAlive messages until stopped.
func (r *Recognizer) keepAlive(s *spare) {
	defer close(s.done)
	t := time.NewTicker(r.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			if err := s.conn.WriteMessage(websocket.TextMessage, msgKeepAlive); err != nil {
				s.bad = true
				return
			}
		}
	}
}

// Warm implements provider.Warmer: it dials spares up to Config.Warm, in
// the background (nothing when Warm is -1).
func (r *Recognizer) Warm() {
	if r.cfg.Warm > 0 {
		r.refill()
	}
}

// refill dials spares up to Warm, in the background.
func (r *Recognizer) refill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.closed && len(r.spares)+r.dials < r.cfg.Warm {
		r.dials++
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DialTimeout)
			c, err := r.dial(ctx)
			cancel()
			r.mu.Lock()
			defer r.mu.Unlock()
			r.dials--
			if err != nil {
				return // the next Open dials itself
			}
			if r.closed {
				c.Close()
				return
			}
			s := &spare{conn: c, quit: make(chan struct{}), done: make(chan struct{})}
			r.spares = append(r.spares, s)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.keepAlive(s)
			}()
		}()
	}
}

// take returns a warm connection, or nil.
func (r *Recognizer) take() *websocket.Conn {
	for {
		r.mu.Lock()
		if len(r.spares) == 0 {
			r.mu.Unlock()
			return nil
		}
		s := r.spares[0]
		r.spares = r.spares[1:]
		r.mu.Unlock()
		s.stop()
		if !s.bad {
			return s.conn
		}
		s.conn.Close()
	}
}

// Open implements stt.Recognizer: it takes a warm connection (or dials
// one, bounded by DialTimeout and ctx) and starts reading its results.
func (r *Recognizer) Open(ctx context.Context) (stt.Stream, error) {
	octx, call := provider.Start(ctx, r.cfg.Observer, provider.CallInfo{Provider: Name, Op: "recognize", Model: r.cfg.Model})
	c := r.take()
	if c == nil {
		dctx, cancel := context.WithTimeout(octx, r.cfg.DialTimeout)
		var err error
		c, err = r.dial(dctx)
		cancel()
		if err != nil {
			call.End(err)
			return nil, err
		}
	}
	if r.cfg.Warm > 0 {
		r.refill()
	}
	s := &stream{conn: c, call: call, wake: make(chan struct{}), done: make(chan struct{})}
	go s.read()
	return s, nil
}

var (
	msgKeepAlive   = []byte(`{"type":"KeepAlive"}`)
	msgFinalize    = []byte(`{"type":"Finalize"}`)
	msgCloseStream = []byte(`{"type":"CloseStream"}`)
)

// ErrProtocol is wrapped by the errors of messages that do not follow
// Deepgram's protocol.
var ErrProtocol = errors.New("stt/deepgram: protocol error")

// stream is one utterance on one connection. Send and Finish run on one
// goroutine (the only writer after Open), read on its own, Recv on a third.
type stream struct {
	conn *websocket.Conn
	call provider.Call

	wmu      sync.Mutex // writes
	finished atomic.Bool

	mu       sync.Mutex
	queue    []stt.Result
	settled  []string // is_final segments
	final    bool     // the final result is queued
	err      error    // the read loop's end
	closed   bool
	wake     chan struct{} // closed and replaced when the queue changes
	done     chan struct{} // closed when read returns
	pcmBytes []byte
}

// Send implements stt.Stream.
func (s *stream) Send(ctx context.Context, pcm []int16) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if s.finished.Load() {
		return errors.New("stt/deepgram: send after finish")
	}
	s.pcmBytes = audio.EncodePCM16(s.pcmBytes[:0], pcm)
	if err := s.conn.WriteMessage(websocket.BinaryMessage, s.pcmBytes); err != nil {
		err = provider.Wrap(ctx, Name, "send", 0, err)
		s.end(err)
		return err
	}
	return nil
}

// usable reports a closed stream or the read loop's error.
func (s *stream) usable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.err != nil && s.err != io.EOF:
		return s.err
	}
	return nil
}

// Finish implements stt.Stream: it sends Finalize.
func (s *stream) Finish(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if s.finished.Swap(true) {
		return errors.New("stt/deepgram: finish twice")
	}
	if err := s.conn.WriteMessage(websocket.TextMessage, msgFinalize); err != nil {
		err = provider.Wrap(ctx, Name, "finalize", 0, err)
		s.end(err)
		return err
	}
	return nil
}

func (s *stream) changed() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// message is the union of the server's messages that matter here.
type message struct {
	Type         string `json:"type"`
	IsFinal      bool   `json:"is_final"`
	SpeechFinal  bool   `json:"speech_final"`
	FromFinalize bool   `json:"from_finalize"`
	Channel      *struct {
		Alternatives []struct {
			Transcript string `json:"transcript"`
		} `json:"alternatives"`
	} `json:"channel"`
	ErrCode string `json:"err_code"`
	ErrMsg  string `json:"err_msg"`
}

// UnmarshalJSON accepts "channel" as an object (Results) or an array
// (UtteranceEnd, SpeechStarted).
func (m *message) UnmarshalJSON(b []byte) error {
	type plain message
	var raw struct {
		plain
		Channel json.RawMessage `json:"channel"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = message(raw.plain)
	if len(raw.Channel) > 0 && raw.Channel[0] == '{' {
		return json.Unmarshal(raw.Channel, &m.Channel)
	}
	return nil
}

// read turns the server's messages into results until the final one, an
// error or Close.
func (s *stream) read() {
	defer close(s.done)
	first := true
	for {
		kind, b, err := s.conn.ReadMessage()
		if err != nil {
			s.end(provider.Wrap(context.Background(), Name, "recognize", 0, fmt.Errorf("connection lost: %w", err)))
			return
		}
		if kind != websocket.TextMessage {
			s.end(&provider.Error{Provider: Name, Op: "recognize", Retryable: true, Err: fmt.Errorf("%w: binary message", ErrProtocol)})
			return
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			s.end(&provider.Error{Provider: Name, Op: "recognize", Retryable: true, Err: fmt.Errorf("%w: %v", ErrProtocol, err)})
			return
		}
		if first && m.Type == "Results" {
			first = false
			s.call.FirstResult()
		}
		if s.handle(m) {
			s.wmu.Lock()
			s.conn.WriteMessage(websocket.TextMessage, msgCloseStream) // best effort
			s.wmu.Unlock()
			return
		}
	}
}

// handle applies one message; it reports whether the stream is done.
func (s *stream) handle(m message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	finished := s.finished.Load()
	switch m.Type {
	case "Results":
		text := ""
		if m.Channel != nil && len(m.Channel.Alternatives) > 0 {
			text = strings.TrimSpace(m.Channel.Alternatives[0].Transcript)
		}
		if m.IsFinal {
			if text != "" {
				s.settled = append(s.settled, text)
			}
			if m.FromFinalize || (finished && m.SpeechFinal) {
				return s.finishLocked()
			}
			s.queue = append(s.queue, stt.Result{Text: strings.Join(s.settled, " ")})
		} else if text != "" {
			s.queue = append(s.queue, stt.Result{Text: strings.Join(append(s.settled[:len(s.settled):len(s.settled)], text), " ")})
		}
		s.changed()
	case "UtteranceEnd":
		if finished {
			return s.finishLocked()
		}
	case "Error":
		s.err = &provider.Error{Provider: Name, Op: "recognize", Retryable: true, Err: fmt.Errorf("%s: %s", m.ErrCode, m.ErrMsg)}
		s.changed()
		return true
	case "SpeechStarted", "Metadata":
	default:
		s.err = &provider.Error{Provider: Name, Op: "recognize", Retryable: true, Err: fmt.Errorf("%w: message type %q", ErrProtocol, m.Type)}
		s.changed()
		return true
	}
	return false
}

// finishLocked queues the final result; s.mu is held.
func (s *stream) finishLocked() bool {
	s.queue = append(s.queue, stt.Result{Text: strings.Join(s.settled, " "), Final: true})
	s.final = true
	s.err = io.EOF
	s.changed()
	return true
}

// end records the read loop's error, unless the stream ended already.
func (s *stream) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && !s.closed {
		s.err = err
		s.changed()
	}
}

// Recv implements stt.Stream.
func (s *stream) Recv(ctx context.Context) (stt.Result, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return stt.Result{}, stt.ErrClosed
		case len(s.queue) > 0:
			r := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return r, nil
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return stt.Result{}, err
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return stt.Result{}, context.Cause(ctx)
		}
	}
}

// Close implements stt.Stream: it closes the connection and waits for the
// reader. Idempotent.
func (s *stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.err
	s.changed()
	s.mu.Unlock()
	if err == io.EOF {
		// The final result is in: the read loop is sending CloseStream
		// and returning. Let it, rather than cut the message off.
		<-s.done
	}
	s.wmu.Lock()
	s.conn.Close()
	s.wmu.Unlock()
	<-s.done
	if err == io.EOF {
		err = nil // closed after its final result, or before any error
	}
	s.call.End(err)
	return nil
}
