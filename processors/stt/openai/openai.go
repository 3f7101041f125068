// Package openai is a speech recognizer for the OpenAI audio API
// (POST /v1/audio/transcriptions, https://platform.openai.com/docs/api-reference/audio/createTranscription)
// and the servers that implement it: OpenAI, Groq, speaches,
// whisper.cpp's server, vLLM.
//
// It is a final-only recognizer: a stream buffers the utterance's audio
// (delimited by the VAD: UserStartedSpeaking to UserStoppedSpeaking), and
// Finish uploads it as one WAV file; the transcript comes back as the
// stream's final Result, with no interim results before it. The turn stage
// waits for it (see processors/turn's FinalWait: a final that arrives after
// the wait is still answered).
package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/stt"
)

// Name is the provider's name in errors, spans and configuration.
const Name = "openai"

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// Config configures a Recognizer; it is the [stt.openai] table of
// voiced.toml. The zero value transcribes with OpenAI's whisper-1, the
// key in OPENAI_API_KEY.
type Config struct {
	// BaseURL is the API root, ending in /v1 (default DefaultBaseURL).
	BaseURL string `toml:"base_url"`
	// APIKeyEnv names the environment variable holding the key. Default
	// OPENAI_API_KEY for api.openai.com; other servers get no key unless
	// it is set.
	APIKeyEnv string `toml:"api_key_env"`
	Model     string `toml:"model"`    // default "whisper-1"
	Language  string `toml:"language"` // ISO-639-1 ("en"); "" lets the server detect it
	Prompt    string `toml:"prompt"`   // vocabulary hints
	// SampleRate is the rate of the uploaded audio (default 16000).
	SampleRate int `toml:"sample_rate"`
	// Timeout bounds one transcription, from Finish to the transcript
	// (default 15s).
	Timeout time.Duration `toml:"timeout"`
	// MaxUtterance bounds the audio of one utterance (default 2m); audio
	// past it is refused.
	MaxUtterance time.Duration `toml:"max_utterance"`
	// MinUtterance is the shortest audio worth a request (default 100ms):
	// shorter utterances end with an empty final transcript.
	MinUtterance time.Duration `toml:"min_utterance"`

	// HTTPClient, if set, replaces the pooled client.
	HTTPClient *http.Client `toml:"-"`
	// Observer, if set, is told of every call.
	Observer provider.Observer `toml:"-"`
}

// ErrConfig is wrapped by the errors of Validate and New.
var ErrConfig = errors.New("stt/openai: bad config")

// ErrTooLong is returned by Send for audio past MaxUtterance.
var ErrTooLong = errors.New("stt/openai: utterance too long")

func (c *Config) defaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.APIKeyEnv == "" && strings.Contains(c.BaseURL, "api.openai.com") {
		c.APIKeyEnv = "OPENAI_API_KEY"
	}
	if c.Model == "" {
		c.Model = "whisper-1"
	}
	if c.SampleRate == 0 {
		c.SampleRate = 16000
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.MaxUtterance == 0 {
		c.MaxUtterance = 2 * time.Minute
	}
	if c.MinUtterance == 0 {
		c.MinUtterance = 100 * time.Millisecond
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
	if !audio.SupportedRate(c.SampleRate) {
		return "", fmt.Errorf("%w: sample_rate %d", ErrConfig, c.SampleRate)
	}
	if c.Timeout < 0 || c.MaxUtterance < 0 || c.MinUtterance < 0 {
		return "", fmt.Errorf("%w: negative duration", ErrConfig)
	}
	if !provider.HTTPURL(c.BaseURL) {
		return "", fmt.Errorf("%w: base_url %q", ErrConfig, c.BaseURL)
	}
	key, err := provider.APIKey(c.APIKeyEnv)
	if err != nil {
		return "", fmt.Errorf("stt/openai: %w", err)
	}
	return key, nil
}

// Recognizer is an stt.Recognizer for an OpenAI-compatible server. It is
// safe for concurrent use; its HTTP connections are pooled.
type Recognizer struct {
	cfg    Config
	client *goopenai.Client
}

var _ stt.Recognizer = (*Recognizer)(nil)

// New returns a recognizer, or an error naming what is wrong with cfg.
func New(cfg Config) (*Recognizer, error) {
	cfg.defaults()
	key, err := cfg.check()
	if err != nil {
		return nil, err
	}
	cc := goopenai.DefaultConfig(key)
	cc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient != nil {
		cc.HTTPClient = cfg.HTTPClient
	} else {
		cc.HTTPClient = provider.HTTPClient()
	}
	return &Recognizer{cfg: cfg, client: goopenai.NewClientWithConfig(cc)}, nil
}

// Format implements stt.Recognizer.
func (r *Recognizer) Format() frame.Format {
	return frame.Format{SampleRate: r.cfg.SampleRate, Channels: 1}
}

// Open implements stt.Recognizer. The stream's request runs under ctx (the
// session's, in the stt stage), bounded by Timeout.
func (r *Recognizer) Open(ctx context.Context) (stt.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stt/openai: open: %w", context.Cause(ctx))
	}
	ctx, cancel := context.WithCancel(ctx)
	return &stream{r: r, ctx: ctx, cancel: cancel, done: make(chan struct{}), closing: make(chan struct{})}, nil
}

// stream buffers one utterance and transcribes it at Finish.
type stream struct {
	r      *Recognizer
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	pcm      []int16
	finished bool
	closed   bool
	done     chan struct{} // closed when res/err are set
	closing  chan struct{} // closed by Close
	res      stt.Result
	err      error
	got      bool // Recv has returned the outcome
}

// Send implements stt.Stream: it copies pcm into the utterance.
func (s *stream) Send(ctx context.Context, pcm []int16) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.finished:
		return errors.New("stt/openai: send after finish")
	case len(s.pcm)+len(pcm) > s.r.Format().Samples(s.r.cfg.MaxUtterance):
		return fmt.Errorf("%w: over %v", ErrTooLong, s.r.cfg.MaxUtterance)
	}
	s.pcm = append(s.pcm, pcm...)
	return nil
}

// Finish implements stt.Stream: it starts the upload and returns at once.
func (s *stream) Finish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return stt.ErrClosed
	case s.finished:
		return errors.New("stt/openai: finish twice")
	}
	s.finished = true
	if s.r.Format().Duration(len(s.pcm)) < s.r.cfg.MinUtterance {
		s.res = stt.Result{Final: true}
		close(s.done)
		return nil
	}
	pcm := s.pcm
	s.pcm = nil
	go func() {
		res, err := s.r.transcribe(s.ctx, pcm)
		s.mu.Lock()
		s.res, s.err = res, err
		s.mu.Unlock()
		close(s.done)
	}()
	return nil
}

// Recv implements stt.Stream: the final result once the server answered,
// then io.EOF. A stream closed before its result returns stt.ErrClosed.
func (s *stream) Recv(ctx context.Context) (stt.Result, error) {
	select {
	case <-s.done:
	case <-s.closing:
		select {
		case <-s.done:
		default:
			return stt.Result{}, stt.ErrClosed
		}
	case <-ctx.Done():
		return stt.Result{}, context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got {
		return stt.Result{}, io.EOF
	}
	s.got = true
	return s.res, s.err
}

// Close implements stt.Stream: it abandons a pending upload, waits for its
// goroutine, and wakes a waiting Recv. Idempotent.
func (s *stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	finished := s.finished
	close(s.closing)
	s.mu.Unlock()
	s.cancel()
	if finished {
		<-s.done
	}
	return nil
}

// wavFile is the uploaded file; its ContentType names the part's type.
type wavFile struct{ *bytes.Reader }

func (wavFile) ContentType() string { return "audio/wav" }

func (r *Recognizer) transcribe(ctx context.Context, pcm []int16) (res stt.Result, err error) {
	ctx, call := provider.Start(ctx, r.cfg.Observer, provider.CallInfo{Provider: Name, Op: "transcribe", Model: r.cfg.Model})
	defer func() { call.End(err) }()
	var wav bytes.Buffer
	if err := audio.WriteWAV(&wav, r.Format(), pcm); err != nil {
		return stt.Result{}, fmt.Errorf("stt/openai: %w", err)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, r.cfg.Timeout, errTimeout)
	defer cancel()
	resp, err := r.client.CreateTranscription(tctx, goopenai.AudioRequest{
		Model:    r.cfg.Model,
		FilePath: "utterance.wav",
		Reader:   wavFile{bytes.NewReader(wav.Bytes())},
		Prompt:   r.cfg.Prompt,
		Language: r.cfg.Language,
		Format:   goopenai.AudioResponseFormatJSON,
	})
	if err != nil {
		if ctx.Err() != nil {
			return stt.Result{}, context.Cause(ctx)
		}
		if context.Cause(tctx) == errTimeout {
			err = fmt.Errorf("%w after %v", errTimeout, r.cfg.Timeout)
		}
		return stt.Result{}, provider.Wrap(ctx, Name, "transcribe", status(err), err)
	}
	call.FirstResult()
	return stt.Result{Text: strings.TrimSpace(resp.Text), Final: true}, nil
}

// errTimeout is the cause of a transcription cut by Timeout.
var errTimeout = errors.New("no transcript within the timeout")

// status is the HTTP status of a go-openai error, 0 if none.
func status(err error) int {
	var ae *goopenai.APIError
	if errors.As(err, &ae) {
		return ae.HTTPStatusCode
	}
	var re *goopenai.RequestError
	if errors.As(err, &re) {
		return re.HTTPStatusCode
	}
	return 0
}
