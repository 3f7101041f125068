// Package orchestration turns the agents, models and orchestration mode
// declared in voiced.toml into the Runnables a session's agent stage hosts.
package orchestration

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/webhook"
	"github.com/voiced-dev/voiced/internal/config"
)

// ErrConfig wraps every error of Build.
var ErrConfig = errors.New("orchestration: bad configuration")

// Options are what Build needs besides the configuration.
type Options struct {
	// Tools are the tools agents may name, by name.
	Tools map[string]agents.Tool
	// Toolsets are the MCP servers agents may name (mcp = [...]), by name.
	Toolsets map[string]agents.Toolset
	// WrapModel, if set, wraps every model (telemetry).
	WrapModel agents.Middleware
	// WrapAgent, if set, wraps every hosted Runnable (telemetry).
	WrapAgent func(agents.Runnable) agents.Runnable
	Logger    *slog.Logger
}

// Result is what the agent stage hosts.
type Result struct {
	// Close sends what the audit hooks have queued and stops them; call
	// it once no session runs. Never nil.
	Close func() error

	Agents []agents.Runnable
	Entry  string
	// Voices maps agent names to TTS voices.
	Voices map[string]string
	// Mode is the orchestration mode in force.
	Mode string
	// Members are the enabled agents by name, each on its own (outside the
	// mode's composition): what a workflow's agent step runs.
	Members map[string]agents.Runnable
}

// Build makes the models, the agents and the orchestration of cfg. The
// Runnables are safe for concurrent use: one Result serves every session.
func Build(cfg config.Config, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &builder{cfg: cfg, opts: opts, log: log, models: map[string]agents.ChatModel{}}
	if err := b.buildModels(); err != nil {
		return nil, err
	}
	hs, err := hooks(cfg, log)
	if err != nil {
		return nil, err
	}
	b.hooks = hs
	res, err := b.buildAgents()
	if err != nil {
		closeHooks(hs)
		return nil, err
	}
	res.Close = func() error { return closeHooks(hs) }
	if opts.WrapAgent != nil {
		for i, a := range res.Agents {
			res.Agents[i] = opts.WrapAgent(a)
		}
		for name, a := range res.Members {
			res.Members[name] = opts.WrapAgent(a)
		}
	}
	return res, nil
}

type builder struct {
	cfg    config.Config
	opts   Options
	log    *slog.Logger
	models map[string]agents.ChatModel // by name, resilience applied
	llms   map[string]config.LLM       // their configuration
	hooks  []*webhook.Hook             // [[hooks]]
	hub    *hub                        // the agents' event bus, per session
}

func (b *builder) buildModels() error {
	b.llms = map[string]config.LLM{"default": b.cfg.LLM}
	for _, m := range b.cfg.Models {
		if m.Provider == "" {
			m.Provider = "scripted"
		}
		b.llms[m.Name] = m.LLM
	}
	base := map[string]agents.ChatModel{}
	for name, llm := range b.llms {
		m, err := newModel(name, llm, llm.Scripted.Rules)
		if err != nil {
			return err
		}
		base[name] = m
	}
	for name, llm := range b.llms {
		m, err := b.resilient(name, base[name], llm.Resilience, base)
		if err != nil {
			return err
		}
		b.models[name] = m
	}
	return nil
}

// resilient wraps m with the configured middleware.
func (b *builder) resilient(name string, m agents.ChatModel, r config.Resilience, base map[string]agents.ChatModel) (agents.ChatModel, error) {
	var mws []agents.Middleware
	if b.opts.WrapModel != nil {
		mws = append(mws, b.opts.WrapModel)
	}
	if r.BreakerFailures > 0 {
		mws = append(mws, agents.WithCircuitBreaker(agents.BreakerConfig{Failures: r.BreakerFailures, Cooldown: r.BreakerCooldown}))
	}
	if r.Retries > 0 {
		mws = append(mws, agents.WithRetry(agents.RetryPolicy{Max: r.Retries, Base: r.Backoff, Jitter: 0.2}))
	}
	if r.Timeout > 0 {
		mws = append(mws, agents.WithTimeout(r.Timeout))
	}
	m = agents.Chain(m, mws...)
	if len(r.Failover) > 0 {
		var backups []agents.ChatModel
		for _, f := range r.Failover {
			bm := base[f]
			if bm == nil {
				return nil, fmt.Errorf("%w: model %q: failover to unknown model %q", ErrConfig, name, f)
			}
			backups = append(backups, bm)
		}
		m = agents.WithFailover(backups...)(m)
	}
	return m, nil
}

// modelFor returns the model of an agent: its own scripted rules, if any,
// make a scripted model of its own.
func (b *builder) modelFor(spec config.AgentSpec) (agents.ChatModel, error) {
	name := spec.Model
	if name == "" {
		name = "default"
	}
	m, llm := b.models[name], b.llms[name]
	if m == nil {
		return nil, fmt.Errorf("%w: agent %q: unknown model %q", ErrConfig, spec.Name, name)
	}
	if len(spec.Rules) == 0 || (llm.Provider != "scripted" && llm.Provider != "") {
		return m, nil
	}
	own, err := newModel(name+"/"+spec.Name, llm, spec.Rules)
	if err != nil {
		return nil, err
	}
	return b.resilient(name+"/"+spec.Name, own, llm.Resilience, b.models)
}

func (b *builder) buildAgents() (*Result, error) {
	cfg := b.cfg
	res := &Result{Voices: map[string]string{}, Mode: cfg.Orchestration.Mode}
	if res.Mode == "" {
		res.Mode = "handoff"
	}
	mode := modes[res.Mode]
	if mode == nil {
		return nil, fmt.Errorf("%w: unknown mode %q (known: %s)", ErrConfig, res.Mode, strings.Join(Modes(), ", "))
	}
	specs := cfg.Agents
	if len(specs) == 0 {
		// One agent from [agent] and [llm]: the simple configuration.
		specs = []config.AgentSpec{{Name: cfg.Agent.Name, System: cfg.Agent.System, Voice: cfg.TTS.Voice}}
	}
	t := &team{cfg: cfg.Orchestration, log: b.log, agents: map[string]*agents.LLMAgent{}, roles: map[string]string{},
		runnable: map[string]agents.Runnable{}, tools: b.opts.Tools}
	b.hub = &hub{log: b.log, runnable: func(n string) agents.Runnable { return t.runnable[n] }}
	for _, spec := range specs {
		if !spec.IsEnabled() {
			continue
		}
		for _, s := range spec.Subscribe {
			b.hub.subs = append(b.hub.subs, subscription{agent: spec.Name, Subscription: s})
		}
	}
	for _, spec := range specs {
		t.roles[spec.Name] = spec.Role
		if !spec.IsEnabled() {
			continue
		}
		a, err := b.newAgent(spec)
		if err != nil {
			return nil, err
		}
		t.agents[spec.Name] = a
		t.runnable[spec.Name] = a
		if slices.ContainsFunc(spec.Subscribe, func(s config.Subscription) bool { return s.Action != config.ActionBackground }) {
			t.runnable[spec.Name] = &subscriber{Runnable: a, hub: b.hub}
		}
		t.order = append(t.order, spec.Name)
		if v := cfg.AgentVoice(spec, cfg.TTS.Provider); v != "" {
			res.Voices[spec.Name] = v
		}
	}
	if len(t.order) == 0 {
		return nil, fmt.Errorf("%w: no enabled agent", ErrConfig)
	}
	for _, spec := range specs {
		if err := t.setHandoffs(spec); err != nil {
			return nil, err
		}
	}
	t.members = t.cfg.Agents
	if len(t.members) == 0 {
		t.members = t.order
	}
	for _, n := range t.members {
		r, err := t.member(n)
		if err != nil {
			return nil, err
		}
		t.runs = append(t.runs, r)
	}
	t.model = b.models["default"]
	if t.cfg.Model != "" {
		t.model = b.models[t.cfg.Model]
	}

	hosted, entry, err := mode(t)
	if err != nil {
		if !errors.Is(err, ErrConfig) {
			err = fmt.Errorf("%w: %s: %v", ErrConfig, res.Mode, err)
		}
		return nil, err
	}
	res.Agents, res.Entry = hosted, entry
	res.Members = map[string]agents.Runnable{}
	for name, a := range t.agents {
		res.Members[name] = a
	}
	if d := t.cfg.Timeout; d > 0 {
		for i, a := range res.Agents {
			res.Agents[i] = &timeout{Runnable: a, d: d}
		}
	}
	return res, nil
}

// newAgent makes the LLM agent of spec, without its handoffs.
func (b *builder) newAgent(spec config.AgentSpec) (*agents.LLMAgent, error) {
	model, err := b.modelFor(spec)
	if err != nil {
		return nil, err
	}
	var tools []agents.Tool
	for _, name := range spec.Tools {
		tool := b.opts.Tools[name]
		if tool == nil {
			return nil, fmt.Errorf("%w: agent %q: unknown tool %q", ErrConfig, spec.Name, name)
		}
		tools = append(tools, tool)
	}
	var toolsets []agents.Toolset
	for _, name := range spec.MCP {
		ts := b.opts.Toolsets[name]
		if ts == nil {
			return nil, fmt.Errorf("%w: agent %q: unknown MCP server %q", ErrConfig, spec.Name, name)
		}
		toolsets = append(toolsets, ts)
	}
	if len(spec.Publishes) > 0 {
		tools = append(tools, b.hub.publishTool(spec.Name, spec.Publishes))
	}
	var hs []agents.Hooks
	for _, h := range b.hooks {
		hs = append(hs, h.Hooks(spec.Name))
	}
	system := spec.System
	if system == "" && spec.Role != "" {
		system = "You are the " + spec.Role + "."
	}
	a, err := agents.NewLLMAgent(agents.LLMAgentConfig{
		Name: spec.Name, Instructions: system, Model: model, Tools: tools, Toolsets: toolsets,
		MaxSteps: spec.MaxSteps, Logger: b.log, Hooks: agents.JoinHooks(hs...),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return a, nil
}

// ErrAnswerTimeout ends an answer that took longer than the orchestration's
// timeout.
var ErrAnswerTimeout = errors.New("orchestration: answer timed out")

// timeout bounds each run of a Runnable.
type timeout struct {
	agents.Runnable
	d time.Duration
}

func (t *timeout) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		ctx, cancel := context.WithTimeoutCause(ctx, t.d, ErrAnswerTimeout)
		defer cancel()
		for ev, err := range t.Runnable.Run(ctx, in) {
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}
