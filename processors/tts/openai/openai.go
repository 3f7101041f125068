// Package openai is a speech synthesizer for the OpenAI audio API
// (POST /v1/audio/speech, https://platform.openai.com/docs/api-reference/audio/createSpeech)
// and the servers that implement it: OpenAI, Kokoro-FastAPI, speaches, vLLM.
//
// The answer is streamed: MP3 is decoded as its bytes arrive (go-mp3), WAV
// and raw PCM are read as they come, so the first audio is emitted long
// before a sentence has been downloaded. The audio is converted to the
// synthesizer's declared Format (SampleRate, 24 kHz by default).
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/processors/provider"
	"github.com/voiced-dev/voiced/processors/tts"
)

// Name is the provider's name in errors, spans and configuration.
const Name = "openai"

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// Config configures a Synthesizer; it is the [tts.openai] table of
// voiced.toml. The zero value speaks with OpenAI's tts-1 and alloy voice,
// as MP3, with the key in OPENAI_API_KEY.
type Config struct {
	// BaseURL is the API root, ending in /v1 (default DefaultBaseURL).
	BaseURL string `toml:"base_url"`
	// APIKeyEnv names the environment variable holding the key (keys do
	// not belong in files). Default OPENAI_API_KEY for api.openai.com;
	// other servers get no key unless it is set.
	APIKeyEnv string `toml:"api_key_env"`
	Model     string `toml:"model"` // default "tts-1"
	Voice     string `toml:"voice"` // default "alloy"; agents' voices override it
	// Format is the response format asked for: "mp3" (default), "wav" or
	// "pcm" (16-bit little-endian mono at SampleRate).
	Format string `toml:"format"`
	// SampleRate is the rate of the emitted audio and of "pcm" answers
	// (default 24000, OpenAI's).
	SampleRate   int     `toml:"sample_rate"`
	Speed        float64 `toml:"speed"`        // 0.25 to 4 (default 1)
	Instructions string  `toml:"instructions"` // style prompt for models that take one
	// Timeout bounds a whole sentence (default 30s); FirstByteTimeout the
	// wait for the answer's headers (default 10s).
	Timeout          time.Duration `toml:"timeout"`
	FirstByteTimeout time.Duration `toml:"first_byte_timeout"`

	// HTTPClient, if set, replaces the pooled client.
	HTTPClient *http.Client `toml:"-"`
	// Observer, if set, is told of every call.
	Observer provider.Observer `toml:"-"`
}

// ErrConfig is wrapped by the errors of Validate and New.
var ErrConfig = errors.New("tts/openai: bad config")

func (c *Config) defaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.APIKeyEnv == "" && strings.Contains(c.BaseURL, "api.openai.com") {
		c.APIKeyEnv = "OPENAI_API_KEY"
	}
	if c.Model == "" {
		c.Model = "tts-1"
	}
	if c.Voice == "" {
		c.Voice = "alloy"
	}
	if c.Format == "" {
		c.Format = "mp3"
	}
	if c.SampleRate == 0 {
		c.SampleRate = 24000
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
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
	switch c.Format {
	case "mp3", "wav", "pcm":
	default:
		return "", fmt.Errorf("%w: format %q (mp3, wav or pcm)", ErrConfig, c.Format)
	}
	if !audio.SupportedRate(c.SampleRate) {
		return "", fmt.Errorf("%w: sample_rate %d", ErrConfig, c.SampleRate)
	}
	if c.Speed != 0 && (c.Speed < 0.25 || c.Speed > 4) {
		return "", fmt.Errorf("%w: speed %v (0.25 to 4)", ErrConfig, c.Speed)
	}
	if c.Timeout < 0 || c.FirstByteTimeout < 0 {
		return "", fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	if !provider.HTTPURL(c.BaseURL) {
		return "", fmt.Errorf("%w: base_url %q", ErrConfig, c.BaseURL)
	}
	key, err := provider.APIKey(c.APIKeyEnv)
	if err != nil {
		return "", fmt.Errorf("tts/openai: %w", err)
	}
	return key, nil
}

// Synthesizer is a tts.Synthesizer for an OpenAI-compatible server. It is
// safe for concurrent use; its HTTP connections are pooled and kept alive
// between sentences.
type Synthesizer struct {
	cfg    Config
	client *goopenai.Client
}

var _ tts.Synthesizer = (*Synthesizer)(nil)

// New returns a synthesizer, or an error naming what is wrong with cfg
// (an unset key variable among others).
func New(cfg Config) (*Synthesizer, error) {
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
	return &Synthesizer{cfg: cfg, client: goopenai.NewClientWithConfig(cc)}, nil
}

// Format implements tts.Synthesizer.
func (s *Synthesizer) Format() frame.Format {
	return frame.Format{SampleRate: s.cfg.SampleRate, Channels: 1}
}

// errFirstByte is the cause of a call cut by FirstByteTimeout.
var errFirstByte = errors.New("no answer within the first-byte timeout")

// errTimeout is the cause of a call cut by Timeout.
var errTimeout = errors.New("sentence not synthesized within the timeout")

// Synthesize implements tts.Synthesizer. Failures are *provider.Error
// (retryable for timeouts, 429, 5xx, broken or malformed streams), except
// that ctx's cancellation returns its cause.
func (s *Synthesizer) Synthesize(ctx context.Context, text, voice string, emit func(pcm []int16) error) (err error) {
	if voice == "" {
		voice = s.cfg.Voice
	}
	ctx, call := provider.Start(ctx, s.cfg.Observer, provider.CallInfo{Provider: Name, Op: "synthesize", Model: s.cfg.Model})
	defer func() { call.End(err) }()

	cctx, cancel := context.WithTimeoutCause(ctx, s.cfg.Timeout, errTimeout)
	defer cancel()
	hctx, hcancel := context.WithCancelCause(cctx)
	defer hcancel(nil)
	first := time.AfterFunc(s.cfg.FirstByteTimeout, func() { hcancel(errFirstByte) })
	resp, err := s.client.CreateSpeech(hctx, goopenai.CreateSpeechRequest{
		Model:          goopenai.SpeechModel(s.cfg.Model),
		Input:          text,
		Voice:          goopenai.SpeechVoice(voice),
		ResponseFormat: goopenai.SpeechResponseFormat(s.cfg.Format),
		Speed:          s.cfg.Speed,
		Instructions:   s.cfg.Instructions,
	})
	first.Stop()
	if err != nil {
		return s.fail(ctx, hctx, status(err), err)
	}
	defer resp.Close()
	r := &reader{body: resp, format: s.cfg.Format, rate: s.cfg.SampleRate}
	out := s.Format()
	var (
		rs   *audio.Resampler
		buf  = make([]int16, out.SampleRate/50) // 20 ms
		conv []int16
	)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			pcm := buf[:n]
			if rs == nil {
				if rs, err = audio.NewResampler(r.rate, out.SampleRate); err != nil {
					return &provider.Error{Provider: Name, Op: "synthesize", Err: err}
				}
			}
			conv = rs.Process(conv[:0], pcm)
			if len(conv) > 0 {
				call.FirstResult()
				if err := emit(conv); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return s.fail(ctx, hctx, 0, rerr)
		}
	}
	if rs == nil {
		return &provider.Error{Provider: Name, Op: "synthesize", Retryable: true, Err: errors.New("empty audio")}
	}
	if tail := rs.Flush(conv[:0]); len(tail) > 0 {
		return emit(tail)
	}
	return nil
}

// fail turns a call's error into the provider error (or ctx's cause).
func (s *Synthesizer) fail(ctx, hctx context.Context, status int, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if cause := context.Cause(hctx); cause == errFirstByte || cause == errTimeout {
		err = fmt.Errorf("%w after %v", cause, s.timeoutFor(cause))
	}
	return provider.Wrap(ctx, Name, "synthesize", status, err)
}

func (s *Synthesizer) timeoutFor(cause error) time.Duration {
	if cause == errFirstByte {
		return s.cfg.FirstByteTimeout
	}
	return s.cfg.Timeout
}

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
