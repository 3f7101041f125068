// Package mcp gives agents the tools of Model Context Protocol servers
// (https://modelcontextprotocol.io), reached over stdio (a command this
// package starts) or streamable HTTP, through the official Go SDK
// (github.com/modelcontextprotocol/go-sdk).
//
// A Server is an agents.Toolset: an LLMAgent asks it for the server's
// current tools at each model step. The tool list is fetched on connection
// and again whenever the server sends notifications/tools/list_changed.
// When the connection ends (the process died, the HTTP server went away),
// the tools are withdrawn at once, so the model is no longer offered them
// and a call in flight fails with a result the model reads; the Server
// reconnects (restarting the command) with a backoff that doubles up to
// MaxBackoff, and the tools come back with it. The conversation goes on
// throughout.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/jsonschema"
)

// Defaults of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultMaxResult   = 16 << 10
	DefaultFillerDelay = 1500 * time.Millisecond
	firstBackoff       = 200 * time.Millisecond
	// stableAfter is how long a connection must last for the backoff to
	// start again from its first step.
	stableAfter = 10 * time.Second
)

var (
	// ErrConfig wraps every error of Check and Start.
	ErrConfig = errors.New("mcp: bad server")
	// ErrUnavailable is the result of a call to a tool whose server is not
	// connected (it died and has not come back yet).
	ErrUnavailable = errors.New("mcp: server unavailable")
	// ErrToolError wraps the text of a result the server marked isError.
	ErrToolError = errors.New("mcp: tool error")
)

// Config declares one server; its toml tags are the keys of an [[mcp]]
// entry. Exactly one of Command and URL is set.
type Config struct {
	// Name is how agents list the server (mcp = ["name"]) and how logs
	// name it.
	Name string `toml:"name"`
	// Command and Args start a server that speaks over stdin and stdout.
	// It gets PATH, HOME, LANG and TMPDIR from voiced's environment, and
	// Env; ${VAR} in an Env value is replaced by voiced's variable VAR.
	Command string            `toml:"command"`
	Args    []string          `toml:"args"`
	Env     map[string]string `toml:"env"`
	Dir     string            `toml:"dir"` // working directory
	// URL is a streamable HTTP endpoint; Headers are sent with every
	// request (${VAR} in a value is replaced by the variable VAR).
	URL     string            `toml:"url"`
	Headers map[string]string `toml:"headers"`
	// Tools, if set, offers only these of the server's tools.
	Tools []string `toml:"tools"`
	// Timeout bounds a tool call (default 30s).
	Timeout time.Duration `toml:"timeout"`
	// MaxResult is the most bytes of a result given to the model (default
	// 16 KiB).
	MaxResult int `toml:"max_result"`
	// Filler is what the agent says if a call of this server's tools has
	// not returned after FillerDelay (default 1.5s).
	Filler      string        `toml:"filler"`
	FillerDelay time.Duration `toml:"filler_delay"`
	// MaxBackoff caps the wait between reconnections (default 30s).
	MaxBackoff time.Duration `toml:"max_backoff"`
}

// Options are what Start needs besides the Config.
type Options struct {
	Logger *slog.Logger // default: discard
	// LookupEnv resolves ${VAR} (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// HTTPClient carries streamable HTTP (default http.DefaultClient's
	// transport, with Headers added).
	HTTPClient *http.Client
}

var (
	serverName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	toolName    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// Check validates cfg and resolves its ${VAR}s without starting anything;
// every problem is reported (joined), wrapped in ErrConfig.
func Check(cfg Config, lookup func(string) (string, bool)) error {
	_, _, err := resolve(cfg, lookup)
	return err
}

// resolve checks cfg and returns its environment and headers resolved.
func resolve(cfg Config, lookup func(string) (string, bool)) (env []string, headers http.Header, err error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !serverName.MatchString(cfg.Name) {
		bad("name %q: use letters, digits, - and _", cfg.Name)
	}
	switch {
	case cfg.Command == "" && cfg.URL == "":
		bad("command or url: one is required")
	case cfg.Command != "" && cfg.URL != "":
		bad("command and url: set only one")
	case cfg.URL != "":
		u, perr := url.Parse(cfg.URL)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("url %q: want an absolute http or https URL", cfg.URL)
		}
		if len(cfg.Env) > 0 || len(cfg.Args) > 0 || cfg.Dir != "" {
			bad("env, args and dir are for command servers")
		}
	default:
		if len(cfg.Headers) > 0 {
			bad("headers are for url servers")
		}
		if _, lerr := exec.LookPath(cfg.Command); lerr != nil && !strings.Contains(cfg.Command, "/") {
			bad("command %q: not found in PATH", cfg.Command)
		}
	}
	for _, k := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range cfg.Env {
		if !envName.MatchString(k) {
			bad("env: bad name %q", k)
			continue
		}
		val, eerr := expandEnv(v, lookup)
		if eerr != nil {
			bad("env.%s: %v", k, eerr)
			continue
		}
		env = append(env, k+"="+val)
	}
	headers = http.Header{}
	for k, v := range cfg.Headers {
		if !headerToken.MatchString(k) {
			bad("headers: bad name %q", k)
			continue
		}
		val, herr := expandEnv(v, lookup)
		if herr != nil {
			bad("headers.%s: %v", k, herr)
			continue
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			bad("headers.%s: value holds a line break", k)
			continue
		}
		headers.Set(k, val)
	}
	for _, t := range cfg.Tools {
		if !toolName.MatchString(t) {
			bad("tools: bad tool name %q", t)
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%w %q: %w", ErrConfig, cfg.Name, errors.Join(errs...))
	}
	return env, headers, nil
}

// ErrEnv is wrapped by the error for a ${VAR} whose variable is not set.
var ErrEnv = errors.New("environment variable not set")

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

// Server keeps a connection to one MCP server and its current tools. Its
// methods are safe for concurrent use. Close stops it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	env     []string
	headers http.Header
	client  *http.Client

	tools   atomic.Pointer[[]agents.Tool]
	session atomic.Pointer[sdk.ClientSession]
	refresh chan struct{} // list_changed, coalesced

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the tools change
	cmd     *exec.Cmd     // the running command, for tests

	cancel context.CancelFunc
	done   chan struct{}
}

// Start checks cfg and starts keeping a connection to the server, in a
// goroutine that Close stops. It waits for the first connection until ctx
// is done: a server that is not up by then is not an error (its tools
// appear when it comes up), so that voiced serves without it.
func Start(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	env, headers, err := resolve(cfg, opts.LookupEnv)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxResult <= 0 {
		cfg.MaxResult = DefaultMaxResult
	}
	if cfg.FillerDelay <= 0 {
		cfg.FillerDelay = DefaultFillerDelay
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	if len(headers) > 0 {
		base := client.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c := *client
		c.Transport = headerTransport{base: base, headers: headers}
		client = &c
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: log.With("mcp", cfg.Name), env: env, headers: headers, client: client,
		refresh: make(chan struct{}, 1), changed: make(chan struct{}),
		cancel: cancel, done: make(chan struct{}),
	}
	s.tools.Store(&[]agents.Tool{})
	first := make(chan struct{})
	go s.run(runCtx, sync.OnceFunc(func() { close(first) }))
	select {
	case <-first:
	case <-ctx.Done():
		s.log.Warn("mcp server not connected yet; its tools will appear when it is", "err", context.Cause(ctx))
	}
	return s, nil
}

// Name is the server's configured name.
func (s *Server) Name() string { return s.cfg.Name }

// Tools implements agents.Toolset: the tools of the server as last listed,
// none while it is not connected.
func (s *Server) Tools() []agents.Tool { return *s.tools.Load() }

// Changed returns a channel that is closed the next time the tools change
// (listed, refreshed or withdrawn).
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) setTools(ts []agents.Tool) {
	s.tools.Store(&ts)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Close stops the server (a command is asked to exit, then killed) and
// waits for its goroutine. It is idempotent.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run keeps the connection: connect, list, refresh on list_changed, and
// reconnect with backoff when the connection ends, until ctx is done.
func (s *Server) run(ctx context.Context, ready func()) {
	defer close(s.done)
	backoff := firstBackoff
	for {
		began := time.Now()
		err := s.serve(ctx, ready)
		ready() // the first attempt is over, connected or not
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > stableAfter {
			backoff = firstBackoff
		}
		s.log.Warn("mcp server connection ended; tools withdrawn, reconnecting", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// serve runs one connection until it ends, calling ready once the tools
// are listed.
func (s *Server) serve(ctx context.Context, ready func()) error {
	client := sdk.NewClient(&sdk.Implementation{Name: "voiced", Version: "1"}, &sdk.ClientOptions{
		Logger: s.log,
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case s.refresh <- struct{}{}:
			default:
			}
		},
	})
	var transport sdk.Transport
	if s.cfg.Command != "" {
		cmd := exec.Command(s.cfg.Command, s.cfg.Args...)
		cmd.Env = s.env
		cmd.Dir = s.cfg.Dir
		cmd.Stderr = logWriter{s.log}
		transport = &sdk.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
		s.mu.Lock()
		s.cmd = cmd
		s.mu.Unlock()
	} else {
		// Two reconnection tries of the SDK, not five: a server that is gone
		// has its tools withdrawn within seconds, and this loop reconnects.
		transport = &sdk.StreamableClientTransport{Endpoint: s.cfg.URL, HTTPClient: s.client, MaxRetries: 2}
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	cs, err := client.Connect(cctx, transport, nil)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	ended := make(chan struct{})
	go func() { _ = cs.Wait(); close(ended) }()
	defer func() {
		s.session.Store(nil)
		s.setTools(nil)
		_ = cs.Close()
		<-ended
	}()
	s.session.Store(cs)
	for {
		if err := s.list(ctx, cs); err != nil {
			return err
		}
		ready()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ended:
			return errors.New("connection closed")
		case <-s.refresh:
			s.log.Info("mcp tool list changed")
		}
	}
}

// list fetches the server's tools and publishes them.
func (s *Server) list(ctx context.Context, cs *sdk.ClientSession) error {
	lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var ts []agents.Tool
	for t, err := range cs.Tools(lctx, nil) {
		if err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		if len(s.cfg.Tools) > 0 && !slices.Contains(s.cfg.Tools, t.Name) {
			continue
		}
		if !toolName.MatchString(t.Name) {
			s.log.Warn("mcp tool left out: its name is not [a-zA-Z0-9_-]{1,64}", "tool", t.Name)
			continue
		}
		params, err := json.Marshal(t.InputSchema)
		if err != nil || t.InputSchema == nil {
			params = []byte(`{"type":"object"}`)
		}
		mt := &tool{s: s, spec: agents.ToolSpec{Name: t.Name, Description: t.Description, Parameters: params}}
		// Arguments are checked before the call when the schema is in the
		// subset voiced validates; otherwise the server checks them.
		if sch, err := jsonschema.Parse(params); err == nil {
			mt.schema = sch
		}
		ts = append(ts, mt)
	}
	s.setTools(ts)
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Spec().Name
	}
	s.log.Info("mcp tools listed", "tools", names)
	return nil
}

// tool is one tool of a Server.
type tool struct {
	s      *Server
	spec   agents.ToolSpec
	schema *jsonschema.Schema // nil: not validated here
}

func (t *tool) Spec() agents.ToolSpec           { return t.spec }
func (t *tool) Timeout() time.Duration          { return t.s.cfg.Timeout }
func (t *tool) Filler() (string, time.Duration) { return t.s.cfg.Filler, t.s.cfg.FillerDelay }

// Call implements agents.Tool: tools/call on the server's current
// connection, under ctx (the turn context) bounded by the timeout.
func (t *tool) Call(ctx context.Context, args json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	if t.schema != nil {
		if err := t.schema.Validate(args); err != nil {
			return "", fmt.Errorf("%w: %v", agents.ErrToolArgs, err)
		}
	}
	cs := t.s.session.Load()
	if cs == nil {
		return "", fmt.Errorf("%w: %s", ErrUnavailable, t.s.cfg.Name)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, t.s.cfg.Timeout, agents.ErrToolTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: t.spec.Name, Arguments: args})
	if err != nil {
		if errors.Is(context.Cause(ctx), agents.ErrToolTimeout) {
			return "", fmt.Errorf("%w after %v", agents.ErrToolTimeout, t.s.cfg.Timeout)
		}
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("mcp: %s: %s: %w", t.s.cfg.Name, t.spec.Name, err)
	}
	text := resultText(res, t.s.cfg.MaxResult)
	if res.IsError {
		return "", fmt.Errorf("%w: %s", ErrToolError, text)
	}
	return text, nil
}

// resultText writes a tool result for the model: its text contents, a
// note for other contents, or the structured content; cut to max bytes.
func resultText(res *sdk.CallToolResult, max int) string {
	var parts []string
	for _, c := range res.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			parts = append(parts, c.Text)
		case *sdk.ImageContent:
			parts = append(parts, "[image "+c.MIMEType+"]")
		case *sdk.AudioContent:
			parts = append(parts, "[audio "+c.MIMEType+"]")
		case *sdk.ResourceLink:
			parts = append(parts, "[resource "+c.URI+"]")
		case *sdk.EmbeddedResource:
			if c.Resource != nil && c.Resource.Text != "" {
				parts = append(parts, c.Resource.Text)
			} else if c.Resource != nil {
				parts = append(parts, "[resource "+c.Resource.URI+"]")
			}
		}
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		parts = append(parts, string(b))
	}
	text := strings.Join(parts, "\n")
	if len(text) > max {
		text = strings.ToValidUTF8(text[:max], "") + fmt.Sprintf(" …(cut at %d bytes)", max)
	}
	return text
}

// headerTransport adds headers to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers http.Header
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// logWriter logs a command's stderr at debug level.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Debug("mcp server stderr", "text", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
