// Package elevenlabs is a streaming speech synthesizer for ElevenLabs'
// WebSocket input-streaming API
// (https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input).
//
// Each sentence goes over a WebSocket to
// /v1/text-to-speech/{voice}/stream-input: the opening message (a single
// space, with the voice settings), the sentence with flush set, and the
// empty text that ends the input. Audio arrives as base64 PCM in the
// requested output format, each chunk with the character alignment of the
// text it speaks, until a message marked isFinal. A connection for the
// default voice is opened when a session starts (Warm), and for each voice
// the next one as soon as one is used, so a sentence does not pay the
// handshake.
package elevenlabs

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
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/tts"
)

// Name is the provider's name in errors, spans and configuration.
const Name = "elevenlabs"

// DefaultBaseURL is ElevenLabs' API root for WebSockets.
const DefaultBaseURL = "wss://api.elevenlabs.io"

// Config configures a Synthesizer; it is the [tts.elevenlabs] table of
// voiced.toml. Voice is required (an ElevenLabs voice ID); the key is in
// ELEVENLABS_API_KEY by default.
type Config struct {
	BaseURL   string `toml:"base_url"`    // default DefaultBaseURL
	APIKeyEnv string `toml:"api_key_env"` // default ELEVENLABS_API_KEY
	Voice     string `toml:"voice"`       // voice ID; agents' voices override it
	Model     string `toml:"model"`       // default "eleven_flash_v2_5"
	// SampleRate picks the output format pcm_<rate>: 16000, 22050, 24000
	// (default) or 44100.
	SampleRate      int     `toml:"sample_rate"`
	Stability       float64 `toml:"stability"`        // voice settings; 0: the voice's own
	SimilarityBoost float64 `toml:"similarity_boost"` // likewise
	Speed           float64 `toml:"speed"`            // 0.7 to 1.2; 0: 1
	// Timeout bounds a sentence (default 30s); DialTimeout the handshake
	// (default 5s); FirstByteTimeout the wait for its first audio (default
	// 10s).
	Timeout          time.Duration `toml:"timeout"`
	DialTimeout      time.Duration `toml:"dial_timeout"`
	FirstByteTimeout time.Duration `toml:"first_byte_timeout"`
	// Warm is whether connections are opened ahead: for the default
	// voice at a session's start, for each voice once it is used (default
	// true).
	Warm *bool `toml:"warm"`

	// Observer, if set, is told of every sentence.
	Observer provider.Observer `toml:"-"`
}

// ErrConfig is wrapped by the errors of Validate and New.
var ErrConfig = errors.New("tts/elevenlabs: bad config")

// ErrProtocol is wrapped by the errors of messages that do not follow the
// protocol.
var ErrProtocol = errors.New("tts/elevenlabs: protocol error")

func (c *Config) defaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.APIKeyEnv == "" {
		c.APIKeyEnv = "ELEVENLABS_API_KEY"
	}
	if c.Model == "" {
		c.Model = "eleven_flash_v2_5"
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
	if c.Warm == nil {
		t := true
		c.Warm = &t
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
	switch c.SampleRate {
	case 16000, 22050, 24000, 44100:
	default:
		return "", fmt.Errorf("%w: sample_rate %d (16000, 22050, 24000 or 44100)", ErrConfig, c.SampleRate)
	}
	if c.Speed != 0 && (c.Speed < 0.7 || c.Speed > 1.2) {
		return "", fmt.Errorf("%w: speed %v (0.7 to 1.2)", ErrConfig, c.Speed)
	}
	if c.Timeout < 0 || c.DialTimeout < 0 || c.FirstByteTimeout < 0 {
		return "", fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	key, err := provider.APIKey(c.APIKeyEnv)
	if err != nil {
		return "", fmt.Errorf("tts/elevenlabs: %w", err)
	}
	return key, nil
}

// Alignment says when each character of a chunk's text is spoken, in
// milliseconds from the start of that chunk's audio (each message's
// alignment covers the characters its audio speaks).
type Alignment struct {
	Chars   []string `json:"chars"`
	StartMs []int    `json:"charStartTimesMs"`
	DurMs   []int    `json:"charDurationsMs"`
}

// Synthesizer is a tts.Synthesizer for ElevenLabs. It is safe for
// concurrent use. Close it to close the connection it keeps warm.
type Synthesizer struct {
	cfg    Config
	header http.Header
	dialer websocket.Dialer

	mu     sync.Mutex
	warm   map[string]*warmConn // by voice: the next connection, opened ahead
	closed bool
	wg     sync.WaitGroup
}

// warmConn is a connection opened ahead for one voice, or being dialed.
type warmConn struct {
	c      *websocket.Conn // nil while dialing
	at     time.Time       // when it was opened
	dialed chan struct{}   // closed once the dial is over
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
	if key != "" {
		h.Set("xi-api-key", key)
	}
	return &Synthesizer{cfg: cfg, header: h, warm: map[string]*warmConn{},
		dialer: websocket.Dialer{HandshakeTimeout: cfg.DialTimeout, Proxy: http.ProxyFromEnvironment}}, nil
}

// Format implements tts.Synthesizer.
func (s *Synthesizer) Format() frame.Format {
	return frame.Format{SampleRate: s.cfg.SampleRate, Channels: 1}
}

// Close closes the warm connections and waits for the dials in flight.
// Idempotent.
func (s *Synthesizer) Close() error {
	s.mu.Lock()
	s.closed = true
	for v, w := range s.warm {
		if w.c != nil {
			w.c.Close()
			delete(s.warm, v)
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Synthesizer) url(voice string) string {
	q := url.Values{}
	q.Set("model_id", s.cfg.Model)
	q.Set("output_format", "pcm_"+strconv.Itoa(s.cfg.SampleRate))
	q.Set("inactivity_timeout", "180") // the most: a warm connection waits
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/v1/text-to-speech/" + url.PathEscape(voice) + "/stream-input?" + q.Encode()
}

func (s *Synthesizer) dial(ctx context.Context, voice string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	c, resp, err := s.dialer.DialContext(ctx, s.url(voice), s.header)
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

// conn returns a connection for voice: the one opened ahead for it (one
// being dialed is waited for, as it is further along than a new dial), else
// a new one; then (warm set) it dials the voice's next one.
func (s *Synthesizer) conn(ctx context.Context, voice string) (c *websocket.Conn, warm bool, err error) {
	s.mu.Lock()
	c, dialed := s.takeLocked(voice)
	s.mu.Unlock()
	if dialed != nil {
		select {
		case <-dialed:
		case <-ctx.Done():
			return nil, false, context.Cause(ctx)
		}
		s.mu.Lock()
		c, _ = s.takeLocked(voice)
		s.mu.Unlock()
	}
	warm = c != nil
	if c == nil {
		if c, err = s.dial(ctx, voice); err != nil {
			return nil, false, err
		}
	}
	if *s.cfg.Warm {
		s.refill(voice)
	}
	return c, warm, nil
}

// Warm implements provider.Warmer: it dials a connection for the default
// voice in the background, unless one is open or being dialed (or
// Config.Warm is false). The other voices' are dialed once they are used.
func (s *Synthesizer) Warm() {
	if *s.cfg.Warm {
		s.refill(s.cfg.Voice)
	}
}

// spareLife is how long a warm connection is used: ElevenLabs closes it
// after inactivity_timeout (180 s) without text.
const spareLife = 170 * time.Second

// takeLocked takes voice's warm connection if it is fresh enough, or
// returns the channel to wait on while it is being dialed. s.mu held.
func (s *Synthesizer) takeLocked(voice string) (*websocket.Conn, chan struct{}) {
	w := s.warm[voice]
	switch {
	case w == nil:
		return nil, nil
	case w.c == nil:
		return nil, w.dialed
	}
	delete(s.warm, voice)
	if time.Since(w.at) > spareLife {
		w.c.Close()
		return nil, nil
	}
	return w.c, nil
}

// refill dials voice's next connection in the background, unless one is
// open or being dialed, and closes the connections the server is about to
// drop.
func (s *Synthesizer) refill(voice string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, w := range s.warm {
		if w.c != nil && time.Since(w.at) > spareLife {
			w.c.Close()
			delete(s.warm, v)
		}
	}
	if s.closed || s.warm[voice] != nil {
		return
	}
	w := &warmConn{dialed: make(chan struct{})}
	s.warm[voice] = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c, err := s.dial(context.Background(), voice)
		s.mu.Lock()
		defer s.mu.Unlock()
		defer close(w.dialed)
		if err != nil || s.closed {
			if s.warm[voice] == w {
				delete(s.warm, voice)
			}
			if c != nil {
				c.Close()
			}
			return
		}
		w.c, w.at = c, time.Now()
	}()
}

type voiceSettings struct {
	Stability       float64 `json:"stability,omitempty"`
	SimilarityBoost float64 `json:"similarity_boost,omitempty"`
	Speed           float64 `json:"speed,omitempty"`
}

type textMessage struct {
	Text          string         `json:"text"`
	VoiceSettings *voiceSettings `json:"voice_settings,omitempty"`
	Flush         bool           `json:"flush,omitempty"`
}

type audioMessage struct {
	Audio     *string    `json:"audio"`
	IsFinal   *bool      `json:"isFinal"`
	Alignment *Alignment `json:"alignment"`
	Error     string     `json:"error"`
	Message   string     `json:"message"`
}

// Synthesize implements tts.Synthesizer.
func (s *Synthesizer) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) error {
	return s.SynthesizeAligned(ctx, text, voice, func(pcm []int16, _ *Alignment) error { return emit(pcm) })
}

// SynthesizeWords implements tts.WordSynthesizer: the character alignment
// of each chunk, moved to the sentence's time by the audio before the
// chunk, is gathered into words (split at spaces); a word is reported as
// soon as its last character is known (it spells the sentence's next word,
// or a space follows), the last one at the end at the latest.
func (s *Synthesizer) SynthesizeWords(ctx context.Context, text, voice string, emit func(pcm []int16) error, words func([]frame.Word)) error {
	b := wordBuilder{want: strings.Fields(text)}
	var at time.Duration // the sentence's audio before this chunk
	f := frame.Format{SampleRate: s.cfg.SampleRate, Channels: 1}
	err := s.SynthesizeAligned(ctx, text, voice, func(pcm []int16, a *Alignment) error {
		if a != nil {
			if ws := b.add(a, at); len(ws) > 0 {
				words(ws)
			}
		}
		at += f.Duration(len(pcm))
		return emit(pcm)
	})
	if err == nil {
		if ws := b.flush(); len(ws) > 0 {
			words(ws)
		}
	}
	return err
}

// wordBuilder gathers aligned characters into words.
type wordBuilder struct {
	want       []string // the sentence's words not yet reported
	text       strings.Builder
	start, end time.Duration
}

// add takes a chunk's alignment, its times offset by at, and returns the
// words it completes.
func (b *wordBuilder) add(a *Alignment, at time.Duration) []frame.Word {
	var ws []frame.Word
	for i, c := range a.Chars {
		if strings.TrimSpace(c) == "" {
			ws = append(ws, b.flush()...)
			continue
		}
		start := at + time.Duration(a.StartMs[i])*time.Millisecond
		if b.text.Len() == 0 {
			b.start = start
		}
		b.text.WriteString(c)
		b.end = start + time.Duration(a.DurMs[i])*time.Millisecond
		if len(b.want) > 0 && b.text.String() == b.want[0] {
			ws = append(ws, b.flush()...) // complete: no need to wait for the space
		}
	}
	return ws
}

// flush returns the word being gathered, if any.
func (b *wordBuilder) flush() []frame.Word {
	if b.text.Len() == 0 {
		return nil
	}
	w := frame.Word{Text: b.text.String(), Start: b.start, End: b.end}
	b.text.Reset()
	if len(b.want) > 0 {
		b.want = b.want[1:]
	}
	return []frame.Word{w}
}

var (
	errFirstByte = errors.New("no audio within the first-byte timeout")
	errTimeout   = errors.New("sentence not synthesized within the timeout")
)

// SynthesizeAligned is Synthesize that also passes each chunk's character
// alignment (nil when the server sent none): what was played of the
// sentence can be known to the character.
func (s *Synthesizer) SynthesizeAligned(ctx context.Context, text, voice string, emit func(pcm []int16, a *Alignment) error) (err error) {
	if voice == "" {
		voice = s.cfg.Voice
	}
	ctx, call := provider.Start(ctx, s.cfg.Observer, provider.CallInfo{Provider: Name, Op: "synthesize", Model: s.cfg.Model})
	defer func() { call.End(err) }()
	c, warm, err := s.conn(ctx, voice)
	if err != nil {
		return err
	}
	vs := &voiceSettings{Stability: s.cfg.Stability, SimilarityBoost: s.cfg.SimilarityBoost, Speed: s.cfg.Speed}
	open := textMessage{Text: " ", VoiceSettings: vs}
	if err := c.WriteJSON(open); err != nil && warm {
		// The warm connection died waiting (the server's inactivity
		// timeout): dial afresh.
		c.Close()
		if c, err = s.dial(ctx, voice); err != nil {
			return err
		}
		if err := c.WriteJSON(open); err != nil {
			c.Close()
			return provider.Wrap(ctx, Name, "synthesize", 0, err)
		}
	} else if err != nil {
		c.Close()
		return provider.Wrap(ctx, Name, "synthesize", 0, err)
	}
	defer c.Close()
	// Cancellation, and the timeouts, close the connection under the read.
	tctx, cancel := context.WithTimeoutCause(ctx, s.cfg.Timeout, errTimeout)
	defer cancel()
	fctx, fcancel := context.WithCancelCause(tctx)
	defer fcancel(nil)
	first := time.AfterFunc(s.cfg.FirstByteTimeout, func() { fcancel(errFirstByte) })
	defer first.Stop()
	stop := context.AfterFunc(fctx, func() { c.Close() })
	defer stop()
	fail := func(err error) error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if cause := context.Cause(fctx); cause == errFirstByte || cause == errTimeout {
			err = cause
		}
		return provider.Wrap(ctx, Name, "synthesize", 0, err)
	}
	for _, m := range []textMessage{{Text: strings.TrimSpace(text) + " ", Flush: true}, {Text: ""}} {
		if err := c.WriteJSON(m); err != nil {
			return fail(err)
		}
	}
	var pcm []int16
	got := false
	for {
		kind, b, err := c.ReadMessage()
		if err != nil {
			return fail(fmt.Errorf("connection lost: %w", err))
		}
		if kind != websocket.TextMessage {
			return fail(fmt.Errorf("%w: binary message", ErrProtocol))
		}
		var al *Alignment
		var final bool
		pcm, al, final, err = decode(b, pcm[:0])
		if err != nil {
			return fail(err)
		}
		if len(pcm) > 0 {
			if !got {
				got = true
				first.Stop()
				call.FirstResult()
			}
			if err := emit(pcm, al); err != nil {
				return err
			}
		}
		if final {
			if !got {
				return fail(errors.New("no audio"))
			}
			return nil
		}
	}
}

// decode reads one server message: its audio appended to dst, its
// alignment (nil if none), and whether it is the last (isFinal).
func decode(b []byte, dst []int16) (pcm []int16, al *Alignment, final bool, err error) {
	var m audioMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return dst, nil, false, fmt.Errorf("%w: %.80q", ErrProtocol, b)
	}
	if m.Error != "" {
		return dst, nil, false, fmt.Errorf("%s: %s", m.Error, m.Message)
	}
	if m.Audio != nil && *m.Audio != "" {
		raw, err := base64.StdEncoding.DecodeString(*m.Audio)
		if err != nil {
			return dst, nil, false, fmt.Errorf("%w: audio: %v", ErrProtocol, err)
		}
		if dst, err = audio.DecodePCM16(dst, raw); err != nil {
			return dst, nil, false, fmt.Errorf("%w: %v", ErrProtocol, err)
		}
	}
	if a := m.Alignment; a != nil && (len(a.StartMs) != len(a.Chars) || len(a.DurMs) != len(a.Chars)) {
		return dst, nil, false, fmt.Errorf("%w: alignment of %d characters with %d and %d times", ErrProtocol, len(a.Chars), len(a.StartMs), len(a.DurMs))
	}
	return dst, m.Alignment, m.IsFinal != nil && *m.IsFinal, nil
}
