// Package declared turns workflows declared in a configuration file
// ([[workflows]] in voiced.toml) into durable.Workflows: each step calls a
// tool (built in, declared in [[tools]], or an MCP server's), calls an HTTP
// endpoint, runs an agent on a prompt, sleeps on a durable timer, waits for
// a named signal, or says something to the caller. Steps read the run's
// input and earlier steps' outputs through placeholders (see the template
// syntax in docs/workflows.md): {{input.order_id}}, {{steps.lookup.total}},
// {{run.id}}.
//
// Each step is a durable step: checkpointed when it completes, retried with
// backoff when it fails (retries, backoff, max_backoff), bounded by a
// timeout. An HTTP step sends the step's idempotency key
// (durable.RunContext.IdempotencyKey) in an Idempotency-Key header, so that
// the endpoint can drop the duplicate of a call re-run after a crash.
package declared

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/jsonschema"
)

// ErrConfig wraps every error of Check and Build.
var ErrConfig = errors.New("declared: bad workflow")

// Config declares one workflow; its toml tags are the keys of a
// [[workflows]] entry. Durations are written as strings ("30s").
type Config struct {
	Name string `toml:"name"` // letters, digits, - and _; the start tool is start_<name>
	// Description tells a model what starting the workflow does (the
	// start tool's description).
	Description string `toml:"description"`
	// Input is the JSON Schema of the run's input (an object; the subset
	// internal/jsonschema reads). A run whose input does not match is
	// refused. Empty: any object.
	Input string `toml:"input"`
	// Timeout bounds a whole run, across restarts. 0: none.
	Timeout time.Duration `toml:"timeout"`
	Steps   []Step        `toml:"steps"`
}

// Step is one step of a workflow ([[workflows.steps]]). Exactly one of
// tool, url, agent, sleep, signal and say says what it does.
type Step struct {
	Name string `toml:"name"` // unique within the workflow

	// Tool calls a tool by name with Args (an object whose strings may
	// hold placeholders). With MCP, the tool is the named [[mcp]] server's.
	Tool string         `toml:"tool"`
	MCP  string         `toml:"mcp"`
	Args map[string]any `toml:"args"`

	// URL calls an HTTP endpoint (placeholders inside the URL are
	// percent-escaped; ${VAR} is replaced by the environment variable VAR). Method defaults to POST with a Body, else GET;
	// Body is sent as JSON. Header values may hold placeholders and
	// ${VAR}, replaced by the environment variable VAR.
	URL     string            `toml:"url"`
	Method  string            `toml:"method"`
	Headers map[string]string `toml:"headers"`
	Body    map[string]any    `toml:"body"`

	// Agent runs the named agent on Prompt (with placeholders); the
	// output is its answer's text.
	Agent  string `toml:"agent"`
	Prompt string `toml:"prompt"`

	// Sleep waits this long on a durable timer.
	Sleep time.Duration `toml:"sleep"`

	// Signal waits for the signal of that name; the output is its payload.
	// Wait bounds the wait (a durable timer; 0: no bound); when it passes,
	// the output is Default, or, without Default, the step fails.
	Signal  string        `toml:"signal"`
	Wait    time.Duration `toml:"wait"`
	Default any           `toml:"default"`

	// Say speaks this text (with placeholders) to the caller who started
	// the run, if still on the line; the output is the text.
	Say string `toml:"say"`

	// Timeout bounds one attempt (0: none); Retries is how many more
	// attempts a failed step gets (default 0), the first after Backoff
	// (default 1s), each next one twice as long, at most MaxBackoff
	// (default 1m).
	Timeout    time.Duration `toml:"timeout"`
	Retries    int           `toml:"retries"`
	Backoff    time.Duration `toml:"backoff"`
	MaxBackoff time.Duration `toml:"max_backoff"`
}

// Kind says what a step does: "tool", "http", "agent", "sleep", "signal"
// or "say"; "" when it names none or several.
func (s Step) Kind() string {
	var kinds []string
	if s.Tool != "" {
		kinds = append(kinds, "tool")
	}
	if s.URL != "" {
		kinds = append(kinds, "http")
	}
	if s.Agent != "" {
		kinds = append(kinds, "agent")
	}
	if s.Sleep != 0 {
		kinds = append(kinds, "sleep")
	}
	if s.Signal != "" {
		kinds = append(kinds, "signal")
	}
	if s.Say != "" {
		kinds = append(kinds, "say")
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Problem is one error Check found; Step is the step's index, -1 for the
// workflow's own keys.
type Problem struct {
	Step int
	Err  error
}

func (p Problem) Error() string { return p.Err.Error() }

// Check checks c without building it: names, that each step does one
// thing and has only the keys of its kind, the templates and the steps
// they name, the input schema, and that the environment variables header
// values name are set (lookupEnv; nil skips that). Which tools, MCP servers
// and agents exist is the caller's to check (Step.Tool, Step.MCP,
// Step.Agent).
func Check(c Config, lookupEnv func(string) (string, bool)) []Problem {
	var ps []Problem
	wf := func(format string, args ...any) {
		ps = append(ps, Problem{Step: -1, Err: fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)})
	}
	if !nameRE.MatchString(c.Name) {
		wf("name %q: want a letter, then letters, digits, - and _ (at most 64)", c.Name)
	}
	if c.Input != "" {
		if _, err := jsonschema.Parse([]byte(c.Input)); err != nil {
			wf("input: %v", err)
		}
	}
	if c.Timeout < 0 {
		wf("timeout %v: want > 0", c.Timeout)
	}
	if len(c.Steps) == 0 {
		wf("steps: none; declare [[workflows.steps]]")
	}
	earlier := map[string]bool{}
	for i, s := range c.Steps {
		for _, err := range checkStep(s, earlier, lookupEnv) {
			ps = append(ps, Problem{Step: i, Err: fmt.Errorf("%w: %w", ErrConfig, err)})
		}
		if earlier[s.Name] {
			ps = append(ps, Problem{Step: i, Err: fmt.Errorf("%w: name %q: duplicate", ErrConfig, s.Name)})
		}
		earlier[s.Name] = true
	}
	return ps
}

func checkStep(s Step, earlier map[string]bool, lookupEnv func(string) (string, bool)) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRE.MatchString(s.Name) {
		bad("name %q: want a letter, then letters, digits, - and _ (at most 64)", s.Name)
	}
	kind := s.Kind()
	if kind == "" {
		bad("set exactly one of tool, url, agent, sleep, signal, say")
	}
	only := func(key string, set bool, kinds ...string) {
		for _, k := range kinds {
			if k == kind {
				return
			}
		}
		if set && kind != "" {
			bad("%s: not a key of a %s step", key, kind)
		}
	}
	only("mcp", s.MCP != "", "tool")
	only("args", s.Args != nil, "tool")
	only("method", s.Method != "", "http")
	only("headers", s.Headers != nil, "http")
	only("body", s.Body != nil, "http")
	only("prompt", s.Prompt != "", "agent")
	only("wait", s.Wait != 0, "signal")
	only("default", s.Default != nil, "signal")
	tmpl := func(key, text string) {
		if _, err := parseTemplate(text, earlier); err != nil {
			bad("%s: %v", key, err)
		}
	}
	switch kind {
	case "tool":
		if s.Args != nil {
			if _, err := parseValue(map[string]any(s.Args), earlier); err != nil {
				bad("args.%v", err)
			}
		}
	case "http":
		tmpl("url", s.URL)
		u := s.URL
		if lookupEnv != nil {
			var err error
			if u, err = expandEnv(s.URL, lookupEnv); err != nil {
				bad("url: %v", err)
			}
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") && (lookupEnv != nil || !strings.HasPrefix(u, "${")) {
			bad("url %q: want http:// or https://", s.URL)
		}
		if m := s.Method; m != "" && !validMethod(m) {
			bad("method %q: want GET, POST, PUT, PATCH or DELETE", m)
		}
		for k, v := range s.Headers {
			tmpl("headers."+k, v)
			if lookupEnv != nil {
				if _, err := expandEnv(v, lookupEnv); err != nil {
					bad("headers.%s: %v", k, err)
				}
			}
		}
		if s.Body != nil {
			if _, err := parseValue(map[string]any(s.Body), earlier); err != nil {
				bad("body.%v", err)
			}
		}
	case "agent":
		if s.Prompt == "" {
			bad("prompt: required for an agent step")
		}
		tmpl("prompt", s.Prompt)
	case "sleep":
		if s.Sleep < 0 {
			bad("sleep %v: want > 0", s.Sleep)
		}
	case "signal":
		if !nameRE.MatchString(s.Signal) {
			bad("signal %q: want a letter, then letters, digits, - and _", s.Signal)
		}
		if s.Wait < 0 {
			bad("wait %v: want > 0", s.Wait)
		}
		if s.Default != nil && s.Wait == 0 {
			bad("default: only with wait (there is no default without a bound)")
		}
	case "say":
		tmpl("say", s.Say)
	}
	if s.Timeout < 0 || s.Backoff < 0 || s.MaxBackoff < 0 {
		bad("timeout, backoff, max_backoff: want > 0")
	}
	if s.Retries < 0 || s.Retries > 100 {
		bad("retries %d: want 0..100", s.Retries)
	}
	return errs
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces each ${VAR} in s by the variable's value; an unset
// variable is an error.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, error) {
	var errs []error
	out := envRE.ReplaceAllStringFunc(s, func(m string) string {
		name := envRE.FindStringSubmatch(m)[1]
		v, ok := lookupEnv(name)
		if !ok {
			errs = append(errs, fmt.Errorf("environment variable %s is not set", name))
		}
		return v
	})
	return out, errors.Join(errs...)
}

// Lookups are the names a workflow's steps are resolved against. Every
// field may be nil when no step needs it.
type Lookups struct {
	// Tool returns a tool by name (built-in or [[tools]]).
	Tool func(name string) (agents.Tool, bool)
	// Toolset returns an MCP server's tools by the server's name.
	Toolset func(name string) (agents.Toolset, bool)
	// Agent returns an agent by name. It is called when a step runs, so
	// it may be filled after Build (the agents are built after the tools
	// that start workflows).
	Agent func(name string) (agents.Runnable, bool)
	// Client sends the HTTP steps' requests (default: a client of its own,
	// without timeout; Step.Timeout bounds a call).
	Client *http.Client
	// LookupEnv reads the variables ${VAR} names (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
}
