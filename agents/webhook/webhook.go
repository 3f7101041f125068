// Package webhook makes agents.Hooks that report an agent's run to an HTTP
// endpoint, for audit: the [[hooks]] a configuration file declares.
//
// Each event is one JSON POST (see Payload). The events are:
//
//   - before_agent: a run starts (with the conversation it is given);
//   - after_agent: a run ended (with its error, if any);
//   - before_tool: a tool is about to be called (with its arguments);
//   - after_tool: a tool call returned (with its result or error);
//   - handoff: the conversation passed from one agent to another.
//
// Before-events are sent while the agent waits, so that the endpoint can
// refuse: a 2xx answer whose body is a JSON object with "allow": false
// vetoes the run or the tool call ("reason" says why; for a tool it is the
// result the model reads). A before-event that cannot be delivered (a
// network error, a timeout, a status other than 2xx) is logged and the
// agent goes on, unless FailClosed is set: then it is a veto too.
//
// After-events and handoffs are queued and sent in order by one goroutine
// per Hook, so a slow endpoint never delays an answer; when the queue is
// full the event is dropped and logged. Failures are logged, never fatal.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/httptool"
)

// The events a hook can be sent.
const (
	BeforeAgent = "before_agent"
	AfterAgent  = "after_agent"
	BeforeTool  = "before_tool"
	AfterTool   = "after_tool"
	Handoff     = "handoff"
)

// Events lists every event, in the order of a run.
var Events = []string{BeforeAgent, BeforeTool, AfterTool, Handoff, AfterAgent}

// Defaults of Config.
const (
	DefaultTimeout = 2 * time.Second
	// QueueLength bounds the after-events waiting to be sent.
	QueueLength = 256
)

var (
	// ErrConfig wraps every error of New and Check.
	ErrConfig = errors.New("webhook: bad hook")
	// ErrVetoed is wrapped by the error a before-event's veto gives the
	// agent.
	ErrVetoed = errors.New("refused by audit hook")
)

// Config declares one hook; its toml tags are the keys of a [[hooks]]
// entry.
type Config struct {
	// URL is the endpoint, http or https; ${VAR} is replaced by the
	// environment variable VAR.
	URL string `toml:"url"`
	// Events are the events sent (default: all of Events).
	Events []string `toml:"events"`
	// Agents limits the hook to these agents' runs (default: every agent).
	Agents []string `toml:"agents"`
	// Headers are sent with every request; ${VAR} in a value is replaced
	// by the environment variable VAR (a token).
	Headers map[string]string `toml:"headers"`
	// Timeout bounds each request (default 2s).
	Timeout time.Duration `toml:"timeout"`
	// FailClosed makes a before-event that cannot be delivered a veto.
	FailClosed bool `toml:"fail_closed"`
}

// Options are what New needs besides the Config.
type Options struct {
	Client    *http.Client                // default: a new client; Timeout bounds each request
	LookupEnv func(string) (string, bool) // default os.LookupEnv
	Logger    *slog.Logger                // default: discard
}

// Message is a conversation message in a Payload.
type Message struct {
	Role       string `json:"role"`
	Name       string `json:"name,omitempty"`
	Content    string `json:"content"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	ToolCalls  []Tool `json:"tool_calls,omitempty"`
}

// Tool is a tool call in a Payload. Arguments is the model's JSON object
// (a JSON string if the model wrote invalid JSON).
type Tool struct {
	Name      string          `json:"name"`
	CallID    string          `json:"call_id,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Result is a tool call's outcome in a Payload.
type Result struct {
	Content string `json:"content"`
	Error   string `json:"error,omitempty"`
}

// Payload is the JSON body of every request.
type Payload struct {
	Event string `json:"event"`
	// Seq numbers the events of one Hook from 1, in the order they
	// happened (queued after-events may arrive after a later
	// before-event).
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Session string    `json:"session,omitempty"`
	// Metadata is the session's metadata at the time (agents.SessionState).
	Metadata map[string]string `json:"metadata,omitempty"`
	Agent    string            `json:"agent"`
	Messages []Message         `json:"messages,omitempty"` // before_agent
	Tool     *Tool             `json:"tool,omitempty"`     // before_tool, after_tool
	Result   *Result           `json:"result,omitempty"`   // after_tool
	Error    string            `json:"error,omitempty"`    // after_agent
	From     string            `json:"from,omitempty"`     // handoff
	To       string            `json:"to,omitempty"`       // handoff
}

// verdict is what a before-event's endpoint may answer.
type verdict struct {
	Allow  *bool  `json:"allow"`
	Reason string `json:"reason"`
}

// Hook sends one endpoint the events of the agents it applies to. It is
// safe for concurrent use. Close stops it.
type Hook struct {
	cfg     Config
	url     string
	headers http.Header
	events  map[string]bool
	client  *http.Client
	log     *slog.Logger
	seq     atomic.Uint64

	mu     sync.Mutex
	closed bool
	queue  chan Payload
	done   chan struct{}
}

var headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Check reports every problem of cfg, as New would, resolving ${VAR} with
// lookup.
func Check(cfg Config, lookup func(string) (string, bool)) error {
	_, _, _, err := check(cfg, lookup)
	return err
}

func check(cfg Config, lookup func(string) (string, bool)) (string, http.Header, map[string]bool, error) {
	var errs []error
	u, err := httptool.ExpandEnv(cfg.URL, lookup)
	if err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	} else if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want an absolute http or https URL", cfg.URL))
	}
	events := map[string]bool{}
	for _, e := range cfg.Events {
		if !slices.Contains(Events, e) {
			errs = append(errs, fmt.Errorf("events: unknown event %q (known: %s)", e, strings.Join(Events, ", ")))
		}
		events[e] = true
	}
	if len(cfg.Events) == 0 {
		for _, e := range Events {
			events[e] = true
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: want > 0", cfg.Timeout))
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		if !headerToken.MatchString(k) {
			errs = append(errs, fmt.Errorf("headers: bad name %q", k))
			continue
		}
		val, err := httptool.ExpandEnv(v, lookup)
		if err != nil {
			errs = append(errs, fmt.Errorf("headers.%s: %w", k, err))
			continue
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			errs = append(errs, fmt.Errorf("headers.%s: value holds a line break", k))
			continue
		}
		h.Set(k, val)
	}
	if len(errs) > 0 {
		return "", nil, nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return u, h, events, nil
}

// New checks cfg, resolves its environment variables and starts the
// goroutine that sends the after-events.
func New(cfg Config, opts Options) (*Hook, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	u, h, events, err := check(cfg, opts.LookupEnv)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Hook{
		cfg: cfg, url: u, headers: h, events: events, client: opts.Client,
		log:   opts.Logger.With("hook", u),
		queue: make(chan Payload, QueueLength), done: make(chan struct{}),
	}
	go k.send()
	return k, nil
}

// send delivers the queued after-events, in order, until Close.
func (k *Hook) send() {
	defer close(k.done)
	for p := range k.queue {
		if err := k.post(context.Background(), p, nil); err != nil {
			k.log.Warn("audit hook failed", "event", p.Event, "agent", p.Agent, "err", err)
		}
	}
}

// Close stops queueing after-events and waits until those queued are sent
// or ctx is done (then the rest are dropped: the request in flight ends
// within Timeout). It is idempotent.
func (k *Hook) Close(ctx context.Context) error {
	k.mu.Lock()
	if !k.closed {
		k.closed = true
		close(k.queue)
	}
	k.mu.Unlock()
	select {
	case <-k.done:
		return nil
	case <-ctx.Done():
		for range k.queue { // drop the rest
		}
		<-k.done
		return context.Cause(ctx)
	}
}

// Hooks returns the agents.Hooks that send the configured events of the
// agent named agent, or the zero Hooks if the hook does not apply to it.
func (k *Hook) Hooks(agent string) agents.Hooks {
	var h agents.Hooks
	if len(k.cfg.Agents) > 0 && !slices.Contains(k.cfg.Agents, agent) {
		return h
	}
	if k.events[BeforeAgent] {
		h.BeforeRun = func(ctx context.Context, name string, in agents.Input) error {
			p := k.payload(ctx, BeforeAgent, name)
			for _, m := range in.Messages {
				p.Messages = append(p.Messages, message(m))
			}
			return k.before(ctx, p)
		}
	}
	if k.events[AfterAgent] {
		h.AfterRun = func(ctx context.Context, name string, err error) {
			p := k.payload(ctx, AfterAgent, name)
			if err != nil {
				p.Error = err.Error()
			}
			k.enqueue(p)
		}
	}
	if k.events[BeforeTool] {
		h.BeforeTool = func(ctx context.Context, name string, c agents.ToolCall) error {
			p := k.payload(ctx, BeforeTool, name)
			p.Tool = tool(c)
			return k.before(ctx, p)
		}
	}
	if k.events[AfterTool] {
		h.AfterTool = func(ctx context.Context, name string, r agents.ToolResult) {
			p := k.payload(ctx, AfterTool, name)
			p.Tool = &Tool{Name: r.Name, CallID: r.CallID}
			p.Result = &Result{Content: r.Content}
			if r.Err != nil {
				p.Result.Error = r.Err.Error()
			}
			k.enqueue(p)
		}
	}
	if k.events[Handoff] {
		h.OnHandoff = func(ctx context.Context, from, to string) {
			p := k.payload(ctx, Handoff, from)
			p.From, p.To = from, to
			k.enqueue(p)
		}
	}
	return h
}

func (k *Hook) payload(ctx context.Context, event, agent string) Payload {
	p := Payload{Event: event, Seq: k.seq.Add(1), Time: time.Now().UTC(), Agent: agent}
	if info, ok := agents.SessionFromContext(ctx); ok {
		p.Session = info.ID
		if info.State != nil {
			p.Metadata = info.State.Metadata()
		}
	}
	return p
}

func message(m agents.Message) Message {
	out := Message{Role: string(m.Role), Name: m.Name, Content: m.Content, ToolCallID: m.ToolCallID}
	for _, c := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, *tool(c))
	}
	return out
}

func tool(c agents.ToolCall) *Tool {
	t := &Tool{Name: c.Name, CallID: c.ID}
	if args := strings.TrimSpace(c.Arguments); args != "" {
		if json.Valid([]byte(args)) {
			t.Arguments = json.RawMessage(args)
		} else {
			t.Arguments, _ = json.Marshal(args)
		}
	}
	return t
}

// enqueue queues an after-event, or drops it when the queue is full or the
// hook is closed.
func (k *Hook) enqueue(p Payload) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	select {
	case k.queue <- p:
	default:
		k.log.Warn("audit hook queue full, event dropped", "event", p.Event, "agent", p.Agent)
	}
}

// before sends a before-event and returns the veto, if any.
func (k *Hook) before(ctx context.Context, p Payload) error {
	var v verdict
	err := k.post(ctx, p, &v)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		k.log.Warn("audit hook failed", "event", p.Event, "agent", p.Agent, "fail_closed", k.cfg.FailClosed, "err", err)
		if k.cfg.FailClosed {
			return fmt.Errorf("%w: the audit hook could not be reached", ErrVetoed)
		}
		return nil
	}
	if v.Allow != nil && !*v.Allow {
		if v.Reason == "" {
			return ErrVetoed
		}
		return fmt.Errorf("%w: %s", ErrVetoed, v.Reason)
	}
	return nil
}

// post sends p; v, if not nil, receives a JSON object answer (other
// answers are ignored).
func (k *Hook) post(ctx context.Context, p Payload, v *verdict) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = k.headers.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if v != nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		_ = json.Unmarshal(b, v) // an answer that is not a verdict allows
	}
	return nil
}
