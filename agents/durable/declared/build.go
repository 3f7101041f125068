package declared

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/internal/jsonschema"
)

// MaxResponse is the most bytes of an HTTP step's response body kept as
// its output; a longer body fails the step.
const MaxResponse = 1 << 20

// ErrStep wraps the errors of steps that ran and failed.
var ErrStep = errors.New("declared: step failed")

// Build checks c (Check, plus the tools and MCP servers it names, against
// lk) and returns it as a durable.Workflow.
func Build(c Config, lk Lookups) (durable.Workflow, error) {
	if lk.LookupEnv == nil {
		lk.LookupEnv = os.LookupEnv
	}
	if lk.Client == nil {
		lk.Client = &http.Client{}
	}
	var errs []error
	for _, p := range Check(c, lk.LookupEnv) {
		if p.Step >= 0 {
			errs = append(errs, fmt.Errorf("workflows %s: steps[%d]: %w", c.Name, p.Step, p.Err))
		} else {
			errs = append(errs, fmt.Errorf("workflows %s: %w", c.Name, p.Err))
		}
	}
	if len(errs) > 0 {
		return durable.Workflow{}, errors.Join(errs...)
	}
	wf := durable.Workflow{Name: c.Name, Timeout: c.Timeout}
	if c.Input != "" {
		schema, err := jsonschema.Parse([]byte(c.Input))
		if err != nil {
			return wf, fmt.Errorf("%w: %s: input: %w", ErrConfig, c.Name, err)
		}
		wf.InputSchema = schema.JSON()
		wf.CheckInput = func(in json.RawMessage) error { return schema.Validate(in) }
	}
	earlier := map[string]bool{}
	for i, s := range c.Steps {
		run, err := buildStep(s, earlier, lk)
		if err != nil {
			return durable.Workflow{}, fmt.Errorf("%w: workflows %s: steps[%d] (%s): %w", ErrConfig, c.Name, i, s.Name, err)
		}
		earlier[s.Name] = true
		st := durable.Step{
			Name:    s.Name,
			Timeout: s.Timeout,
			Retry:   durable.RetryPolicy{MaxAttempts: s.Retries + 1, Backoff: s.Backoff, MaxBackoff: s.MaxBackoff},
		}
		switch s.Kind() {
		case "sleep":
			st.Wait = &durable.Wait{Sleep: s.Sleep}
		case "signal":
			st.Wait = &durable.Wait{Signal: s.Signal, Timeout: s.Wait}
			if s.Default != nil {
				b, err := json.Marshal(s.Default)
				if err != nil {
					return durable.Workflow{}, fmt.Errorf("%w: workflows %s: steps[%d] (%s): default: %w", ErrConfig, c.Name, i, s.Name, err)
				}
				st.Wait.Default = b
			}
		default:
			st.Run = run
		}
		wf.Steps = append(wf.Steps, st)
	}
	return wf, nil
}

type stepFunc = func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error)

func buildStep(s Step, earlier map[string]bool, lk Lookups) (stepFunc, error) {
	switch s.Kind() {
	case "tool":
		return toolStep(s, earlier, lk)
	case "http":
		return httpStep(s, earlier, lk)
	case "agent":
		prompt, err := parseTemplate(s.Prompt, earlier)
		if err != nil {
			return nil, err
		}
		if lk.Agent == nil {
			return nil, fmt.Errorf("agent %q: no agents here", s.Agent)
		}
		return func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
			a, ok := lk.Agent(s.Agent)
			if !ok {
				return nil, durable.Permanent(fmt.Errorf("%w: agent %q is not running here", ErrStep, s.Agent))
			}
			text, err := prompt.string(r, nil)
			if err != nil {
				return nil, durable.Permanent(err)
			}
			answer, err := agents.Collect(ctx, a, agents.UserInput(text))
			if err != nil {
				return nil, fmt.Errorf("%w: agent %s: %w", ErrStep, s.Agent, err)
			}
			return json.Marshal(answer)
		}, nil
	case "sleep", "signal":
		return nil, nil // a durable.Wait step
	case "say":
		t, err := parseTemplate(s.Say, earlier)
		if err != nil {
			return nil, err
		}
		return func(_ context.Context, r *durable.RunContext) (json.RawMessage, error) {
			text, err := t.string(r, nil)
			if err != nil {
				return nil, durable.Permanent(err)
			}
			r.Notify(text)
			return json.Marshal(text)
		}, nil
	}
	return nil, errors.New("set exactly one of tool, url, agent, sleep, signal, say")
}

func toolStep(s Step, earlier map[string]bool, lk Lookups) (stepFunc, error) {
	args := func(scope) (any, error) { return map[string]any{}, nil }
	if s.Args != nil {
		f, err := parseValue(map[string]any(s.Args), earlier)
		if err != nil {
			return nil, err
		}
		args = f
	}
	var find func() (agents.Tool, error)
	if s.MCP != "" {
		if lk.Toolset == nil {
			return nil, fmt.Errorf("mcp %q: unknown MCP server", s.MCP)
		}
		set, ok := lk.Toolset(s.MCP)
		if !ok {
			return nil, fmt.Errorf("mcp %q: unknown MCP server", s.MCP)
		}
		find = func() (agents.Tool, error) {
			for _, t := range set.Tools() {
				if t.Spec().Name == s.Tool {
					return t, nil
				}
			}
			// The server may be restarting: worth a retry.
			return nil, fmt.Errorf("%w: MCP server %s offers no tool %q now", ErrStep, s.MCP, s.Tool)
		}
	} else {
		if lk.Tool == nil {
			return nil, fmt.Errorf("tool %q: unknown tool", s.Tool)
		}
		t, ok := lk.Tool(s.Tool)
		if !ok {
			return nil, fmt.Errorf("tool %q: unknown tool", s.Tool)
		}
		find = func() (agents.Tool, error) { return t, nil }
	}
	return func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		t, err := find()
		if err != nil {
			return nil, err
		}
		v, err := args(r)
		if err != nil {
			return nil, durable.Permanent(err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, durable.Permanent(err)
		}
		out, err := t.Call(ctx, b)
		if err != nil {
			if errors.Is(err, agents.ErrToolArgs) {
				return nil, durable.Permanent(fmt.Errorf("%w: tool %s: %w", ErrStep, s.Tool, err))
			}
			return nil, fmt.Errorf("%w: tool %s: %w", ErrStep, s.Tool, err)
		}
		return asJSON([]byte(out)), nil
	}, nil
}

// asJSON returns b if it is JSON, else b as a JSON string.
func asJSON(b []byte) json.RawMessage {
	if t := bytes.TrimSpace(b); len(t) > 0 && json.Valid(t) {
		return t
	}
	s, _ := json.Marshal(string(b))
	return s
}

// escapeURL percent-escapes every byte of s but the unreserved ones
// (RFC 3986 section 2.3), so that a value is safe anywhere in a URL.
func escapeURL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func httpStep(s Step, earlier map[string]bool, lk Lookups) (stepFunc, error) {
	raw, err := expandEnv(s.URL, lk.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u, err := parseTemplate(raw, earlier)
	if err != nil {
		return nil, err
	}
	method := s.Method
	if method == "" {
		method = http.MethodGet
		if s.Body != nil {
			method = http.MethodPost
		}
	}
	headers := map[string]*template{}
	for k, v := range s.Headers {
		v, err := expandEnv(v, lk.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("headers.%s: %w", k, err)
		}
		if headers[k], err = parseTemplate(v, earlier); err != nil {
			return nil, err
		}
	}
	var body func(scope) (any, error)
	if s.Body != nil {
		if body, err = parseValue(map[string]any(s.Body), earlier); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		target, err := u.string(r, escapeURL)
		if err != nil {
			return nil, durable.Permanent(err)
		}
		var rd io.Reader
		if body != nil {
			v, err := body(r)
			if err != nil {
				return nil, durable.Permanent(err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				return nil, durable.Permanent(err)
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return nil, durable.Permanent(fmt.Errorf("%w: %w", ErrStep, err))
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Idempotency-Key", r.IdempotencyKey())
		for k, t := range headers {
			v, err := t.string(r, nil)
			if err != nil {
				return nil, durable.Permanent(err)
			}
			req.Header.Set(k, v)
		}
		resp, err := lk.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: %w", ErrStep, method, req.URL.Redacted(), err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: read: %w", ErrStep, method, req.URL.Redacted(), err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			err := fmt.Errorf("%w: %s %s: status %d: %.200s", ErrStep, method, req.URL.Redacted(), resp.StatusCode, b)
			if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				return nil, err
			}
			return nil, durable.Permanent(err)
		}
		if len(b) > MaxResponse {
			return nil, durable.Permanent(fmt.Errorf("%w: %s %s: response over %d bytes", ErrStep, method, req.URL.Redacted(), MaxResponse))
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return json.RawMessage("null"), nil
		}
		return asJSON(b), nil
	}, nil
}
