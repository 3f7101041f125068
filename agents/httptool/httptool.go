// Package httptool makes agents.Tools that call an HTTP endpoint: the tools
// a configuration file declares ([[tools]] in voiced.toml), so that an
// agent can reach a real system without a program of its own.
//
// A call validates the model's arguments against the declared JSON Schema
// (a bad call is fed back to the model, as for built-in tools), fills the
// URL's {name} placeholders with arguments, sends the other arguments as
// the query (GET, DELETE, HEAD) or as a JSON body (other methods), and
// returns the response body, cut to MaxResponse bytes, as the tool result.
// Secrets come from the environment: ${VAR} in the URL or a header value is
// replaced, when the tool is made, by the variable's value, so that the
// file holds only the variable's name.
package httptool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/jsonschema"
)

// Defaults of Config.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxResponse = 16 << 10
	DefaultFillerDelay = 1500 * time.Millisecond
)

var (
	// ErrConfig wraps every error of New.
	ErrConfig = errors.New("httptool: bad tool")
	// ErrStatus is the error of a call answered with a status other than
	// 2xx; its text (with the start of the body) is what the model is shown.
	ErrStatus = errors.New("httptool: status")
)

// Config declares one tool; its toml tags are the keys of a [[tools]]
// entry. Durations are written as strings in the file ("2s").
type Config struct {
	Name        string `toml:"name"`        // what the model calls it: [a-zA-Z0-9_-]{1,64}
	Description string `toml:"description"` // what it does, for the model
	// URL is the endpoint, http or https. {name} is replaced by the
	// argument name (which the schema must require), escaped for where it
	// stands; ${VAR} by the environment variable VAR.
	URL    string `toml:"url"`
	Method string `toml:"method"` // default GET
	// Headers are sent with every call; ${VAR} in a value is replaced by
	// the environment variable VAR (an API key).
	Headers map[string]string `toml:"headers"`
	// Parameters is the JSON Schema of the arguments, an object (the
	// subset internal/jsonschema.Parse reads). Empty: no arguments.
	Parameters string `toml:"parameters"`
	// Timeout bounds a call (default 10s); the model is told it timed out.
	Timeout time.Duration `toml:"timeout"`
	// MaxResponse is the most bytes of the response body given to the
	// model (default 16 KiB); a longer body is cut and marked so.
	MaxResponse int `toml:"max_response"`
	// Filler is what the agent says if the call has not returned after
	// FillerDelay (default 1.5s): "Let me look that up." Empty: nothing.
	Filler      string        `toml:"filler"`
	FillerDelay time.Duration `toml:"filler_delay"`
}

// Options are what New needs besides the Config.
type Options struct {
	// Client sends the requests (default: a client without timeout of its
	// own; Timeout bounds each call).
	Client *http.Client
	// LookupEnv resolves ${VAR} (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
}

var (
	toolName    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// Tool is a declared HTTP tool. It is safe for concurrent use.
type Tool struct {
	cfg     Config
	spec    agents.ToolSpec
	schema  *jsonschema.Schema
	url     []part // the URL template, environment resolved
	query   int    // index in url of the first part after '?', or len(url)
	headers http.Header
	client  *http.Client
}

// part is a piece of the URL template: literal text or an argument.
type part struct {
	text string
	arg  string
}

// New checks cfg, resolves its environment variables and returns the tool.
// Every problem is reported (joined) wrapped in ErrConfig.
func New(cfg Config, opts Options) (*Tool, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	cfg.Method = strings.ToUpper(cfg.Method)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = DefaultMaxResponse
	}
	if cfg.FillerDelay <= 0 {
		cfg.FillerDelay = DefaultFillerDelay
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !toolName.MatchString(cfg.Name) {
		bad("name %q: want [a-zA-Z0-9_-]{1,64}", cfg.Name)
	}
	switch cfg.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead:
	default:
		bad("method %q: want GET, POST, PUT, PATCH, DELETE or HEAD", cfg.Method)
	}
	params := cfg.Parameters
	if strings.TrimSpace(params) == "" {
		params = `{"type":"object"}`
	}
	schema, err := jsonschema.Parse([]byte(params))
	if err != nil {
		bad("parameters: %v", err)
	}
	t := &Tool{cfg: cfg, schema: schema, client: opts.Client, headers: http.Header{}}
	t.url, err = parseURL(cfg.URL, opts.LookupEnv)
	if err != nil {
		bad("url: %v", err)
	}
	t.query = slices.IndexFunc(t.url, func(p part) bool { return p.arg == "" && strings.Contains(p.text, "?") })
	if t.query < 0 {
		t.query = len(t.url)
	} else {
		t.query++ // the part holding '?' is literal; what follows it is the query
	}
	if schema != nil && err == nil {
		required := requiredScalars(schema.JSON())
		for _, p := range t.url {
			if p.arg != "" && !required[p.arg] {
				bad("url: {%s}: not a required string, integer, number or boolean parameter", p.arg)
			}
		}
	}
	for k, v := range cfg.Headers {
		if !headerToken.MatchString(k) {
			bad("headers: bad name %q", k)
			continue
		}
		val, err := expandEnv(v, opts.LookupEnv)
		if err != nil {
			bad("headers.%s: %v", k, err)
			continue
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			bad("headers.%s: value holds a line break", k)
			continue
		}
		t.headers.Set(k, val)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w %q: %w", ErrConfig, cfg.Name, errors.Join(errs...))
	}
	t.spec = agents.ToolSpec{Name: cfg.Name, Description: cfg.Description, Parameters: slices.Clone(schema.JSON())}
	return t, nil
}

// requiredScalars returns the required properties of an object schema
// whose type is a scalar.
func requiredScalars(schema []byte) map[string]bool {
	var s struct {
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(schema, &s)
	out := map[string]bool{}
	for _, r := range s.Required {
		switch s.Properties[r].Type {
		case "string", "integer", "number", "boolean":
			out[r] = true
		}
	}
	return out
}

// ErrEnv is wrapped by the error for a ${VAR} whose variable is not set.
var ErrEnv = errors.New("environment variable not set")

// expandEnv replaces each ${VAR} of s by its value.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s)
		}
		name := s[i+2 : i+j]
		if !envName.MatchString(name) {
			return "", fmt.Errorf("bad variable name %q", name)
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("%w: %s", ErrEnv, name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	argName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

// parseURL splits a URL template into literal text (environment resolved)
// and {arg} parts, and checks that the URL it makes is absolute http(s).
func parseURL(tmpl string, lookup func(string) (string, bool)) ([]part, error) {
	var parts []part
	var sample strings.Builder
	s := tmpl
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		if i > 0 && s[i-1] == '$' {
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf("unclosed ${ in %q", tmpl)
			}
			lit, err := expandEnv(s[:i+j+1], lookup)
			if err != nil {
				return nil, err
			}
			parts = append(parts, part{text: lit})
			sample.WriteString(lit)
			s = s[i+j+1:]
			continue
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in %q", tmpl)
		}
		name := s[i+1 : i+j]
		if !argName.MatchString(name) {
			return nil, fmt.Errorf("bad placeholder {%s}", name)
		}
		parts = append(parts, part{text: s[:i]}, part{arg: name})
		sample.WriteString(s[:i] + "x")
		s = s[i+j+1:]
	}
	if s != "" {
		parts = append(parts, part{text: s})
		sample.WriteString(s)
	}
	u, err := url.Parse(sample.String())
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q: want an absolute http or https URL", tmpl)
	}
	// Merge adjacent literals so that the query split sees whole text.
	var merged []part
	for _, p := range parts {
		if n := len(merged); n > 0 && p.arg == "" && merged[n-1].arg == "" {
			merged[n-1].text += p.text
			continue
		}
		if p.arg == "" && p.text == "" {
			continue
		}
		merged = append(merged, p)
	}
	return merged, nil
}

// Spec implements agents.Tool.
func (t *Tool) Spec() agents.ToolSpec { return t.spec }

// Timeout implements agents.ToolTimeouter: the tool bounds its own calls.
func (t *Tool) Timeout() time.Duration { return t.cfg.Timeout }

// Filler implements agents.ToolFiller.
func (t *Tool) Filler() (string, time.Duration) { return t.cfg.Filler, t.cfg.FillerDelay }

// Call implements agents.Tool. ctx is the turn context: barge-in cancels
// the request.
func (t *Tool) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	if err := t.schema.Validate(raw); err != nil {
		return "", fmt.Errorf("%w: %v", agents.ErrToolArgs, err)
	}
	args := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&args); err != nil {
		return "", fmt.Errorf("%w: %v", agents.ErrToolArgs, err)
	}
	var u strings.Builder
	for i, p := range t.url {
		if p.arg == "" {
			u.WriteString(p.text)
			continue
		}
		v := scalar(args[p.arg])
		delete(args, p.arg)
		if i >= t.query {
			u.WriteString(url.QueryEscape(v))
		} else {
			u.WriteString(url.PathEscape(v))
		}
	}
	target, err := url.Parse(u.String())
	if err != nil {
		return "", fmt.Errorf("%w: %v", agents.ErrToolArgs, err)
	}
	var body io.Reader
	switch t.cfg.Method {
	case http.MethodGet, http.MethodDelete, http.MethodHead:
		q := target.Query()
		for k, v := range args {
			if arr, ok := v.([]any); ok {
				for _, e := range arr {
					q.Add(k, scalar(e))
				}
				continue
			}
			q.Set(k, scalar(v))
		}
		target.RawQuery = q.Encode()
	default:
		b, err := json.Marshal(args)
		if err != nil {
			return "", fmt.Errorf("%w: %v", agents.ErrToolArgs, err)
		}
		body = bytes.NewReader(b)
	}

	ctx, cancel := context.WithTimeoutCause(ctx, t.cfg.Timeout, agents.ErrToolTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, t.cfg.Method, target.String(), body)
	if err != nil {
		return "", fmt.Errorf("httptool: %s: %w", t.cfg.Name, err)
	}
	req.Header = t.headers.Clone()
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), agents.ErrToolTimeout) {
			return "", fmt.Errorf("%w after %v", agents.ErrToolTimeout, t.cfg.Timeout)
		}
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("httptool: %s: %w", t.cfg.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(t.cfg.MaxResponse)+1))
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("httptool: %s: reading the response: %w", t.cfg.Name, err)
	}
	text := string(b)
	if len(b) > t.cfg.MaxResponse {
		text = strings.ToValidUTF8(string(b[:t.cfg.MaxResponse]), "") + " …(cut at " + strconv.Itoa(t.cfg.MaxResponse) + " bytes)"
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("%w %d: %s", ErrStatus, resp.StatusCode, excerpt(text, 500))
	}
	return text, nil
}

// scalar writes an argument value for a URL: strings as they are, numbers
// and booleans in their JSON form.
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// ExpandEnv replaces each ${VAR} of s by the value lookup gives VAR (as
// the tools' URLs and headers are), failing with ErrEnv for a variable
// that is not set. Other packages that take secrets from the environment
// the same way (agents/webhook) use it.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	return expandEnv(s, lookup)
}
