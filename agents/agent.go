package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

var (
	// ErrMaxSteps is returned by an LLMAgent's Run when the model still asks
	// for tools after MaxSteps steps.
	ErrMaxSteps = errors.New("agents: too many model steps")
	// ErrMaxHandoffs is returned when one run hands off more than
	// MaxHandoffDepth times (agents passing the conversation back and forth).
	ErrMaxHandoffs = errors.New("agents: too many handoffs")
	// ErrAgentConfig is returned by NewLLMAgent and SetHandoffs for an
	// invalid configuration.
	ErrAgentConfig = errors.New("agents: bad agent config")
	// ErrUnknownTool is the result of a call to a tool the agent does not
	// have (or a handoff that is disabled).
	ErrUnknownTool = errors.New("unknown tool")
	// ErrToolPanic is the result of a tool call that panicked.
	ErrToolPanic = errors.New("tool panicked")
)

// MaxHandoffDepth bounds the handoffs of one run.
const MaxHandoffDepth = 8

// DefaultMaxSteps is LLMAgentConfig.MaxSteps's default.
const DefaultMaxSteps = 8

// LLMAgentConfig configures an LLMAgent. Name and Model are required.
type LLMAgentConfig struct {
	Name         string
	Instructions string // the system prompt
	Model        ChatModel
	Tools        []Tool
	// Toolsets add tools that may change between model steps (MCP
	// servers').
	Toolsets []Toolset
	Handoffs []HandoffSpec
	// MaxSteps bounds the model calls of one run (default 8).
	MaxSteps int
	// ToolTimeout bounds each call of a tool that has no timeout of its own
	// (see ToolTimeouter); 0: no bound beyond the run's context.
	ToolTimeout time.Duration
	// MaxTokens and Temperature are passed on in each Request.
	MaxTokens   int
	Temperature *float64
	Hooks       Hooks
	Logger      *slog.Logger // default: discard
}

// LLMAgent is a Runnable that answers with a ChatModel, calling tools and
// handing off to other agents as the model asks. It is safe for concurrent
// use; each Run works on its own copy of the conversation.
type LLMAgent struct {
	cfg   LLMAgentConfig
	log   *slog.Logger
	tools map[string]Tool
	specs []ToolSpec

	mu       sync.RWMutex
	handoffs []HandoffSpec
}

// NewLLMAgent validates cfg and returns the agent. Tool names must be
// unique, including the handoff tools' names.
func NewLLMAgent(cfg LLMAgentConfig) (*LLMAgent, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("%w: agent has no name", ErrAgentConfig)
	}
	if cfg.Model == nil {
		return nil, fmt.Errorf("%w: agent %q has no model", ErrAgentConfig, cfg.Name)
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	a := &LLMAgent{cfg: cfg, log: cfg.Logger, tools: make(map[string]Tool, len(cfg.Tools))}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range cfg.Tools {
		if t == nil {
			return nil, fmt.Errorf("%w: agent %q: nil tool", ErrAgentConfig, cfg.Name)
		}
		s := t.Spec()
		if _, dup := a.tools[s.Name]; dup || s.Name == "" {
			return nil, fmt.Errorf("%w: agent %q: tool name %q empty or repeated", ErrAgentConfig, cfg.Name, s.Name)
		}
		a.tools[s.Name] = t
		a.specs = append(a.specs, s)
	}
	if err := a.SetHandoffs(cfg.Handoffs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Name implements Runnable.
func (a *LLMAgent) Name() string { return a.cfg.Name }

// SetHandoffs replaces the agent's handoffs, for agents that hand off to
// each other (build both, then link them). Runs already going on keep the
// handoffs they started with.
func (a *LLMAgent) SetHandoffs(hs ...HandoffSpec) error {
	seen := map[string]bool{}
	for _, h := range hs {
		if h.Target == nil {
			return fmt.Errorf("%w: agent %q: handoff without target", ErrAgentConfig, a.cfg.Name)
		}
		n := HandoffToolName(h.Target.Name())
		if _, clash := a.tools[n]; clash || seen[n] {
			return fmt.Errorf("%w: agent %q: handoff tool %q repeated", ErrAgentConfig, a.cfg.Name, n)
		}
		seen[n] = true
	}
	a.mu.Lock()
	a.handoffs = slices.Clone(hs)
	a.mu.Unlock()
	return nil
}

type handoffDepthKey struct{}

// errStopped ends a run whose consumer stopped iterating.
var errStopped = errors.New("agents: consumer stopped")

// Run implements Runnable. It emits EventAgentStarted, then for each model
// step the text deltas (EventText), an EventToolCall for each tool call (in
// the model's order) and an EventToolResult as each call finishes (the calls
// of one step run in parallel, so results come in completion order). Tool
// failures, invalid arguments, unknown tools and panics are not errors of
// the run: their text is fed back to the model. The run ends when the model
// answers without tool calls (EventAgentFinished), or with ErrMaxSteps.
//
// When the model calls a handoff tool, the other calls of that step run
// first, then EventHandoff is emitted and the target runs with the
// (filtered) conversation; its events are passed on as they come, and this
// agent's EventAgentFinished follows them.
//
// Cancelling ctx cancels the model stream and the tools in flight; Run waits
// for the tools to return and then ends with context.Cause(ctx). Stopping
// the iteration early cancels the same way.
func (a *LLMAgent) Run(ctx context.Context, in Input) iter.Seq2[AgentEvent, error] {
	return func(yield func(AgentEvent, error) bool) {
		err := a.run(ctx, in, yield)
		if h := a.cfg.Hooks.AfterRun; h != nil {
			reported := err
			if errors.Is(err, errStopped) {
				reported = nil
			}
			h(ctx, a.cfg.Name, reported)
		}
		if err != nil && !errors.Is(err, errStopped) {
			yield(AgentEvent{Agent: a.cfg.Name}, err)
		}
	}
}

func (a *LLMAgent) run(parent context.Context, in Input, yield func(AgentEvent, error) bool) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	name := a.cfg.Name
	emit := func(ev AgentEvent) bool {
		ev.Agent = name
		if !yield(ev, nil) {
			cancel(errStopped)
			return false
		}
		return true
	}
	if h := a.cfg.Hooks.BeforeRun; h != nil {
		if err := h(ctx, name, in); err != nil {
			return err
		}
	}
	if !emit(AgentEvent{Kind: EventAgentStarted}) {
		return errStopped
	}
	a.mu.RLock()
	handoffs := a.handoffs
	a.mu.RUnlock()

	msgs := slices.Clone(in.Messages)
	// spaced is false when the answer so far ends in a non-space: a later
	// step's text then starts with a space, so "...invoice." and "I found
	// it." do not run together into one sentence.
	spaced := true
	// say emits text of the answer, with a space between a step's text
	// (or a filler) and the text before it.
	say := func(out string) bool {
		if out == "" {
			return true
		}
		if !spaced && !unicode.IsSpace(rune(out[0])) {
			out = " " + out
		}
		spaced = unicode.IsSpace(rune(out[len(out)-1]))
		return emit(AgentEvent{Kind: EventText, Text: out})
	}
	for range a.cfg.MaxSteps {
		enabled := make(map[string]HandoffSpec, len(handoffs))
		stepTools, tools := a.currentTools()
		for _, h := range handoffs {
			if h.IsEnabled == nil || h.IsEnabled(ctx) {
				s := h.toolSpec()
				enabled[s.Name] = h
				tools = append(tools, s)
			}
		}
		req := Request{
			System:      a.cfg.Instructions,
			Messages:    slices.Clip(msgs),
			Tools:       tools,
			MaxTokens:   a.cfg.MaxTokens,
			Temperature: a.cfg.Temperature,
		}
		var text strings.Builder
		var calls []ToolCall
		for ev, err := range a.cfg.Model.Stream(ctx, req) {
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				return fmt.Errorf("agents: %s: %w", name, err)
			}
			if ev.Text != "" {
				first := text.Len() == 0
				text.WriteString(ev.Text)
				if !first {
					spaced = true // only a step's first text is spaced from what came before
				}
				if !say(ev.Text) {
					return errStopped
				}
			}
			if ev.ToolCall != nil {
				calls = append(calls, *ev.ToolCall)
			}
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		msgs = append(msgs, Message{Role: RoleAssistant, Name: name, Content: text.String(), ToolCalls: calls})
		if len(calls) == 0 {
			if !emit(AgentEvent{Kind: EventAgentFinished}) {
				return errStopped
			}
			return nil
		}

		// The first call to an enabled handoff is the transfer; the others
		// are tools.
		results := make([]ToolResult, len(calls))
		transfer := -1
		var work []int
		for i, c := range calls {
			if _, ok := enabled[c.Name]; ok {
				if transfer < 0 {
					transfer = i
				} else {
					results[i] = failed(c, errors.New("only one transfer at a time"))
				}
				continue
			}
			work = append(work, i)
		}
		if err := a.runTools(ctx, stepTools, calls, work, results, emit, say); err != nil {
			return err
		}
		var target HandoffSpec
		if transfer >= 0 {
			c := calls[transfer]
			target = enabled[c.Name]
			results[transfer] = ToolResult{CallID: c.ID, Name: c.Name, Content: TransferResult(target.Target.Name())}
			if target.OnHandoff != nil {
				if err := target.OnHandoff(ctx, name, target.Target.Name()); err != nil {
					a.log.DebugContext(ctx, "handoff refused", "agent", name, "to", target.Target.Name(), "err", err)
					results[transfer] = failed(c, err)
					transfer = -1
				}
			}
		}
		for _, r := range results {
			msgs = append(msgs, Message{Role: RoleTool, Name: r.Name, ToolCallID: r.CallID, Content: r.Content})
		}
		if transfer >= 0 {
			return a.handoff(ctx, target, calls[transfer].ID, Input{Messages: msgs}, yield, emit)
		}
	}
	return fmt.Errorf("%w: agent %s stopped after %d", ErrMaxSteps, name, a.cfg.MaxSteps)
}

func failed(c ToolCall, err error) ToolResult {
	return ToolResult{CallID: c.ID, Name: c.Name, Content: "error: " + err.Error(), Err: err}
}

// handoff runs h.Target in this run and passes its events on.
func (a *LLMAgent) handoff(ctx context.Context, h HandoffSpec, callID string, in Input, yield func(AgentEvent, error) bool, emit func(AgentEvent) bool) error {
	depth, _ := ctx.Value(handoffDepthKey{}).(int)
	if depth >= MaxHandoffDepth {
		return fmt.Errorf("%w: more than %d in one run", ErrMaxHandoffs, MaxHandoffDepth)
	}
	from, to := a.cfg.Name, h.Target.Name()
	if !emit(AgentEvent{Kind: EventHandoff, Handoff: &Handoff{From: from, To: to, CallID: callID}}) {
		return errStopped
	}
	if hook := a.cfg.Hooks.OnHandoff; hook != nil {
		hook(ctx, from, to)
	}
	if h.InputFilter != nil {
		in = h.InputFilter(in)
	}
	tctx := context.WithValue(ctx, handoffDepthKey{}, depth+1)
	for ev, err := range h.Target.Run(tctx, in) {
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if !yield(ev, nil) {
			return errStopped
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if !emit(AgentEvent{Kind: EventAgentFinished}) {
		return errStopped
	}
	return nil
}

// currentTools returns the tools of this step, by name, and their specs:
// the agent's own, then its toolsets' current ones.
func (a *LLMAgent) currentTools() (map[string]Tool, []ToolSpec) {
	if len(a.cfg.Toolsets) == 0 {
		return a.tools, slices.Clip(a.specs)
	}
	tools := make(map[string]Tool, len(a.tools))
	for n, t := range a.tools {
		tools[n] = t
	}
	specs := slices.Clone(a.specs)
	for _, ts := range a.cfg.Toolsets {
		for _, t := range ts.Tools() {
			s := t.Spec()
			if _, dup := tools[s.Name]; dup || s.Name == "" {
				continue
			}
			tools[s.Name] = t
			specs = append(specs, s)
		}
	}
	return tools, slices.Clip(specs)
}

// runTools runs calls[i] for each i in work, in parallel, filling results.
// It returns once every call has returned. If a call whose tool has a
// filler (ToolFiller) is still running after the filler's delay, say is
// given the filler's text (once per step).
func (a *LLMAgent) runTools(ctx context.Context, tools map[string]Tool, calls []ToolCall, work []int, results []ToolResult, emit func(AgentEvent) bool, say func(string) bool) error {
	if len(work) == 0 {
		return nil
	}
	for _, i := range work {
		c := calls[i]
		if !emit(AgentEvent{Kind: EventToolCall, ToolCall: &c}) {
			return errStopped
		}
	}
	filler, fillerCall := "", -1
	var fillerDelay time.Duration
	for _, i := range work {
		if f, ok := tools[calls[i].Name].(ToolFiller); ok {
			if text, d := f.Filler(); text != "" && (fillerCall < 0 || d < fillerDelay) {
				filler, fillerCall, fillerDelay = text, i, d
			}
		}
	}
	var fill <-chan time.Time
	if fillerCall >= 0 {
		t := time.NewTimer(fillerDelay)
		defer t.Stop()
		fill = t.C
	}
	done := make(chan int, len(work))
	var wg sync.WaitGroup
	for _, i := range work {
		wg.Go(func() {
			results[i] = a.callTool(ctx, tools, calls[i])
			done <- i
		})
	}
	stopped := false
	returned := make(map[int]bool, len(work))
	for len(returned) < len(work) {
		select {
		case i := <-done:
			returned[i] = true
			if stopped || ctx.Err() != nil {
				continue
			}
			r := results[i]
			if !emit(AgentEvent{Kind: EventToolResult, ToolResult: &r}) {
				stopped = true
			}
		case <-fill:
			fill = nil
			if !returned[fillerCall] && !stopped && ctx.Err() == nil && !say(filler) {
				stopped = true
			}
		}
	}
	wg.Wait()
	if stopped {
		return errStopped
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (a *LLMAgent) callTool(ctx context.Context, tools map[string]Tool, c ToolCall) (res ToolResult) {
	name := a.cfg.Name
	res = ToolResult{CallID: c.ID, Name: c.Name}
	out, err := func() (out string, err error) {
		t, ok := tools[c.Name]
		if !ok {
			return "", fmt.Errorf("%w %q", ErrUnknownTool, c.Name)
		}
		if h := a.cfg.Hooks.BeforeTool; h != nil {
			if err := h(ctx, name, c); err != nil {
				return "", err
			}
		}
		d := a.cfg.ToolTimeout
		if tt, ok := t.(ToolTimeouter); ok && tt.Timeout() > 0 {
			d = 0 // the tool bounds itself
		}
		tctx := ctx
		if d > 0 {
			var cancel context.CancelFunc
			tctx, cancel = context.WithTimeoutCause(ctx, d, ErrToolTimeout)
			defer cancel()
		}
		defer func() {
			if r := recover(); r != nil {
				a.log.ErrorContext(ctx, "tool panicked", "agent", name, "tool", c.Name, "panic", r)
				err = fmt.Errorf("%w: %v", ErrToolPanic, r)
			}
		}()
		out, err = t.Call(tctx, json.RawMessage(c.Arguments))
		if err != nil && ctx.Err() == nil && errors.Is(context.Cause(tctx), ErrToolTimeout) {
			err = fmt.Errorf("%w after %v", ErrToolTimeout, d)
		}
		return out, err
	}()
	if err != nil {
		res = failed(c, err)
	} else {
		res.Content = out
		if info, ok := SessionFromContext(ctx); ok && info.State != nil {
			info.State.NoteTool(c.Name)
		}
	}
	if h := a.cfg.Hooks.AfterTool; h != nil {
		h(ctx, name, res)
	}
	return res
}
