package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"time"

	"github.com/voiced-dev/voiced/internal/jsonschema"
)

// Tool is a function a model can call. Call receives the model's arguments
// (a JSON object) and returns the text the model is shown. Call runs under
// the turn context and must return promptly, with ctx's error, when ctx is
// done. Implementations are safe for concurrent use: an agent runs the
// calls of one step in parallel.
type Tool interface {
	Spec() ToolSpec
	Call(ctx context.Context, args json.RawMessage) (string, error)
}

// ToolTimeouter is implemented by tools that bound their own calls (as the
// tools of NewTool do when given WithToolTimeout); an LLMAgent does not
// apply its default ToolTimeout to a tool whose Timeout is positive.
type ToolTimeouter interface {
	Timeout() time.Duration
}

// ToolFiller is implemented by tools that can be slow (a remote call): if
// a call has not returned after delay, the agent running it says text as
// part of its answer (an EventText), so that a voice agent is not silent
// while it waits. An LLMAgent says at most one filler per model step.
type ToolFiller interface {
	Filler() (text string, delay time.Duration)
}

// Toolset is a set of tools that may change while an agent lives, such as
// the tools of an MCP server, which come and go with the server. An
// LLMAgent asks for the current tools at each model step; a tool named like
// one of the agent's own tools, or an earlier toolset's, is left out.
// Tools must be safe for concurrent use.
type Toolset interface {
	Tools() []Tool
}

var (
	// ErrToolSchema is returned by NewTool for an argument type it cannot
	// describe, or a bad name or tag.
	ErrToolSchema = errors.New("agents: tool schema")
	// ErrToolArgs wraps every argument validation failure; its text is fed
	// back to the model as the tool's result.
	ErrToolArgs = errors.New("invalid arguments")
	// ErrToolTimeout is the cause of the context a tool call runs under when
	// its timeout expires.
	ErrToolTimeout = errors.New("agents: tool timed out")
)

// ToolOption configures NewTool.
type ToolOption func(*toolOptions)

type toolOptions struct {
	timeout time.Duration
}

// WithToolTimeout bounds each call of the tool: its context is cancelled
// with cause ErrToolTimeout after d, and the model is told the tool timed
// out.
func WithToolTimeout(d time.Duration) ToolOption {
	return func(o *toolOptions) { o.timeout = d }
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// NewTool returns a tool whose arguments are the JSON form of A, a struct.
// The JSON Schema offered to the model is derived from A's exported fields
// and their json and jsonschema tags, as documented by the For function of
// this module's internal/jsonschema package: json tag names, required
// unless a pointer, omitempty or jsonschema:"optional", and the jsonschema
// options "required", "optional", "enum=a|b|c" and "description=..." (last,
// takes the rest of the tag). Types it cannot describe (maps, interfaces,
// channels, []byte, recursive types) are refused with ErrToolSchema.
//
// Call validates the arguments strictly against that schema before calling
// fn: a non-object, unknown fields, missing required fields, wrong types,
// fractional integers and values outside an enum are reported as an error
// wrapping ErrToolArgs that names the field, and fn is not called. The
// agent feeds that text back to the model, which can correct itself.
func NewTool[A any](name, description string, fn func(ctx context.Context, args A) (string, error), opts ...ToolOption) (Tool, error) {
	if !toolName.MatchString(name) {
		return nil, fmt.Errorf("%w: bad tool name %q (want [a-zA-Z0-9_-]{1,64})", ErrToolSchema, name)
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: tool %q has no function", ErrToolSchema, name)
	}
	schema, err := jsonschema.For(reflect.TypeFor[A]())
	if err != nil {
		return nil, fmt.Errorf("%w: tool %q: %v", ErrToolSchema, name, err)
	}
	var o toolOptions
	for _, opt := range opts {
		opt(&o)
	}
	return &funcTool[A]{
		spec:   ToolSpec{Name: name, Description: description, Parameters: slices.Clone(schema.JSON())},
		schema: schema,
		fn:     fn,
		opts:   o,
	}, nil
}

// MustTool is NewTool that panics on error, for tools declared at package
// level or in tests.
func MustTool[A any](name, description string, fn func(ctx context.Context, args A) (string, error), opts ...ToolOption) Tool {
	t, err := NewTool(name, description, fn, opts...)
	if err != nil {
		panic(err)
	}
	return t
}

type funcTool[A any] struct {
	spec   ToolSpec
	schema *jsonschema.Schema
	fn     func(context.Context, A) (string, error)
	opts   toolOptions
}

func (t *funcTool[A]) Spec() ToolSpec { return t.spec }

func (t *funcTool[A]) Timeout() time.Duration { return t.opts.timeout }

func (t *funcTool[A]) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}") // models send "" for tools without arguments
	}
	if err := t.schema.Validate(raw); err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolArgs, err) // the model is shown "field: reason"
	}
	var args A
	if err := json.Unmarshal(raw, &args); err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolArgs, err)
	}
	if t.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.opts.timeout, ErrToolTimeout)
		defer cancel()
	}
	out, err := t.fn(ctx, args)
	if err != nil && t.opts.timeout > 0 && errors.Is(context.Cause(ctx), ErrToolTimeout) {
		return "", fmt.Errorf("%w after %v", ErrToolTimeout, t.opts.timeout)
	}
	return out, err
}
