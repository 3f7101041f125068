// Package openai is an agents.ChatModel for any server that speaks OpenAI's
// chat-completions API with streaming: OpenAI itself, Groq, Ollama, vLLM,
// the llama.cpp server and other compatible gateways.
//
// It posts to BaseURL + "/chat/completions" with "stream": true and
// "stream_options": {"include_usage": true}, and reads the answer as
// server-sent events (one JSON chunk per "data:" line, ended by
// "data: [DONE]"). Wire format:
// https://platform.openai.com/docs/api-reference/chat/create and
// https://platform.openai.com/docs/api-reference/chat/streaming; HTTP and
// SSE parsing are done by github.com/sashabaranov/go-openai.
//
// Ollama, on the same machine, needs no key:
//
//	m, err := openai.New(openai.Config{
//		BaseURL: "http://localhost:11434/v1",
//		Model:   "llama3.2",
//	})
//
// Groq:
//
//	m, err := openai.New(openai.Config{
//		BaseURL: "https://api.groq.com/openai/v1",
//		APIKey:  os.Getenv("GROQ_API_KEY"),
//		Model:   "llama-3.3-70b-versatile",
//	})
//
// vLLM and the llama.cpp server work the same way with their own base URLs
// (by default http://localhost:8000/v1 and http://localhost:8080/v1).
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/voiced-dev/voiced/agents"
)

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultTimeout bounds connecting and waiting for the response headers
// when Config.Timeout is zero. It is generous because a local server may
// load the model into memory before it answers the first request.
const DefaultTimeout = 60 * time.Second

// APIKeyEnv is the environment variable that supplies the key for OpenAI's
// own API when Config.APIKey is empty.
const APIKeyEnv = "OPENAI_API_KEY"

// ProviderName is what Provider returns and what ProviderError.Provider
// holds.
const ProviderName = "openai"

// Errors. Failed streams return an *agents.ProviderError whose Err wraps one
// of these (or, for network failures, the transport's own error).
var (
	// ErrConfig is returned by New for an unusable Config.
	ErrConfig = errors.New("openai: invalid config")
	// ErrInvalidRequest: the agents.Request cannot be expressed in the
	// chat-completions API (unknown role, tool result without a call ID,
	// a tool schema that is not a JSON object, ...). Never retryable.
	ErrInvalidRequest = errors.New("openai: invalid request")
	// ErrAPI: the server answered with an error (an HTTP error status, or
	// an error event inside the stream). ProviderError.Status holds the
	// HTTP status (0 for an in-stream error) and the message holds what
	// the server said.
	ErrAPI = errors.New("openai: server error")
	// ErrTimeout: connecting or waiting for the response headers took
	// longer than Config.Timeout. Retryable.
	ErrTimeout = errors.New("openai: timed out waiting for the response")
	// ErrMalformed: the response is not a well-formed chat-completions
	// event stream (bad JSON, inconsistent tool-call fragments). Not
	// retryable.
	ErrMalformed = errors.New("openai: malformed stream")
	// ErrTruncated: the stream ended before the model finished (no
	// finish_reason). Retryable if nothing was yielded yet.
	ErrTruncated = errors.New("openai: stream ended before the answer finished")
)

// Config configures a Model. Only Model is required.
type Config struct {
	// BaseURL is the API root, ending before "/chat/completions"
	// (default DefaultBaseURL).
	BaseURL string `toml:"base_url"`
	// APIKey is sent as "Authorization: Bearer <key>"; empty sends no
	// Authorization header (Ollama, local vLLM). When it is empty and
	// BaseURL is OpenAI's own API (api.openai.com), New reads it from the
	// OPENAI_API_KEY environment variable. The variable is deliberately
	// not used for other hosts, so an OpenAI key is never sent to a third
	// party by accident.
	APIKey string `toml:"api_key"`
	// Model is the model's name at the provider ("gpt-4o-mini",
	// "llama3.2", ...). Required.
	Model string `toml:"model"`
	// Organization, if set, is sent as the OpenAI-Organization header.
	Organization string `toml:"organization"`
	// Timeout bounds connecting, sending the request and waiting for the
	// response headers (default DefaultTimeout; negative: no limit). It
	// does not bound the streamed answer itself: the caller's context
	// (the turn, which barge-in cancels) does.
	Timeout time.Duration `toml:"timeout"`
	// ExtraHeaders are added to every request, after the standard ones,
	// which they override (for gateways that want their own headers).
	ExtraHeaders map[string]string `toml:"extra_headers"`
	// HTTPClient sends the requests (default: a client of its own with
	// the default transport's settings). Its Timeout must be zero or
	// longer than any answer: it would cut streams off.
	HTTPClient *http.Client `toml:"-"`
}

// Model is an agents.ChatModel (and agents.ModelInfo) backed by an
// OpenAI-compatible server. It is safe for concurrent use; it holds no
// per-request state.
type Model struct {
	client  *goopenai.Client
	model   string
	timeout time.Duration
}

var (
	_ agents.ChatModel = (*Model)(nil)
	_ agents.ModelInfo = (*Model)(nil)
)

// New validates cfg, applies the defaults and returns a Model. It makes no
// request.
func New(cfg Config) (*Model, error) {
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, fmt.Errorf("%w: model is required", ErrConfig)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: base_url %q: want an absolute http or https URL", ErrConfig, cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: base_url %q: must not have a query or fragment", ErrConfig, cfg.BaseURL)
	}
	if cfg.APIKey == "" && u.Hostname() == "api.openai.com" {
		cfg.APIKey = os.Getenv(APIKeyEnv)
	}
	var headers http.Header
	for k, v := range cfg.ExtraHeaders {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("%w: extra_headers: bad header name %q", ErrConfig, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("%w: extra_headers: bad value for %q", ErrConfig, k)
		}
		if headers == nil {
			headers = make(http.Header, len(cfg.ExtraHeaders))
		}
		headers.Set(k, v)
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	case cfg.Timeout < 0:
		cfg.Timeout = 0
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			hc.Transport = t.Clone()
		}
	}

	oc := goopenai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	oc.OrgID = cfg.Organization
	oc.HTTPClient = doer{client: hc, headers: headers}
	return &Model{
		client:  goopenai.NewClientWithConfig(oc),
		model:   cfg.Model,
		timeout: cfg.Timeout,
	}, nil
}

// Provider implements agents.ModelInfo.
func (m *Model) Provider() string { return ProviderName }

// Model implements agents.ModelInfo: the configured model name.
func (m *Model) Model() string { return m.model }

// Stream implements agents.ChatModel. It sends one streaming
// chat-completions request and yields, in order:
//
//   - an Event with Text for each text delta, as it arrives;
//   - an Event with a complete ToolCall for each tool call, once the
//     server moves on to the next call or the stream ends (a call without
//     an ID gets "call_<index>"; empty arguments become "{}");
//   - a last Event with FinishReason (as the server sent it: "stop",
//     "tool_calls", "length", ...) and Usage (nil if the server sent none).
//
// Errors are *agents.ProviderError{Provider: "openai", Op: "stream"}.
// Retryable is set for HTTP 408, 409, 429 and 5xx, for network failures,
// ErrTimeout and ErrTruncated, and for errors reported inside the stream;
// it is not set for other statuses (400, 401, 403, 404, ...), for
// ErrInvalidRequest and ErrMalformed, and never once an event has been
// yielded: the caller has already used part of the answer.
//
// When ctx is cancelled (barge-in) the sequence ends at once with
// context.Cause(ctx), unwrapped, and the HTTP stream is closed; breaking
// out of the loop closes it too. Nothing outlives the loop.
func (m *Model) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		creq, err := m.request(req)
		if err != nil {
			yield(agents.Event{}, &agents.ProviderError{Provider: ProviderName, Op: "stream", Err: err})
			return
		}
		if ctx.Err() != nil {
			yield(agents.Event{}, context.Cause(ctx))
			return
		}
		rctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var timer *time.Timer
		if m.timeout > 0 {
			timer = time.AfterFunc(m.timeout, func() { cancel(ErrTimeout) })
		}
		stream, err := m.client.CreateChatCompletionStream(rctx, creq)
		if timer != nil {
			timer.Stop()
		}
		if err == nil && rctx.Err() != nil {
			stream.Close()
			err = rctx.Err()
		}
		if err != nil {
			yield(agents.Event{}, m.fail(ctx, rctx, err, false))
			return
		}
		defer stream.Close()

		var (
			calls   assembler
			finish  string
			usage   *agents.Usage
			chunks  int
			yielded bool
		)
		emit := func(ev agents.Event) bool {
			if ctx.Err() != nil {
				yield(agents.Event{}, context.Cause(ctx))
				return false
			}
			yielded = true
			return yield(ev, nil)
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				yield(agents.Event{}, m.fail(ctx, rctx, err, yielded))
				return
			}
			chunks++
			if chunk.Usage != nil {
				usage = &agents.Usage{InputTokens: chunk.Usage.PromptTokens, OutputTokens: chunk.Usage.CompletionTokens}
			}
			for i := range chunk.Choices {
				c := &chunk.Choices[i]
				if c.Index != 0 {
					continue // we ask for one choice
				}
				for _, text := range [...]string{c.Delta.Content, c.Delta.Refusal} {
					if text != "" && !emit(agents.Event{Text: text}) {
						return
					}
				}
				for _, f := range c.Delta.ToolCalls {
					done, err := calls.add(f)
					if err != nil {
						yield(agents.Event{}, m.fail(ctx, rctx, err, yielded))
						return
					}
					if done != nil && !emit(agents.Event{ToolCall: done}) {
						return
					}
				}
				if c.FinishReason != "" {
					finish = string(c.FinishReason)
				}
			}
		}
		if finish == "" {
			err := fmt.Errorf("%w (after %d events)", ErrTruncated, chunks)
			if chunks == 0 {
				err = fmt.Errorf("%w: no events in the response (content type %q)", ErrTruncated, stream.Header().Get("Content-Type"))
			}
			yield(agents.Event{}, m.fail(ctx, rctx, err, yielded))
			return
		}
		done, err := calls.flush()
		if err != nil {
			yield(agents.Event{}, m.fail(ctx, rctx, err, yielded))
			return
		}
		if done != nil && !emit(agents.Event{ToolCall: done}) {
			return
		}
		emit(agents.Event{Usage: usage, FinishReason: finish})
	}
}

// doer adds the configured extra headers to go-openai's requests.
type doer struct {
	client  *http.Client
	headers http.Header
}

func (d doer) Do(r *http.Request) (*http.Response, error) {
	for k, v := range d.headers {
		r.Header[k] = v
	}
	return d.client.Do(r)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
