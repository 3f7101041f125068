// Package orchestration turns the agents, models and orchestration mode
// declared in voiced.toml into the Runnables a session's agent stage hosts.
package orchestration

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/agents/workflow"
	"github.com/voiced-dev/voiced/internal/config"
)

// ErrConfig wraps every error of Build.
var ErrConfig = errors.New("orchestration: bad configuration")

// Options are what Build needs besides the configuration.
type Options struct {
	// Tools are the tools agents may name, by name.
	Tools map[string]agents.Tool
	// WrapModel, if set, wraps every model (telemetry).
	WrapModel agents.Middleware
	// WrapAgent, if set, wraps every hosted Runnable (telemetry).
	WrapAgent func(agents.Runnable) agents.Runnable
	Logger    *slog.Logger
}

// Result is what the agent stage hosts.
type Result struct {
	Agents []agents.Runnable
	Entry  string
	// Voices maps agent names to TTS voices.
	Voices map[string]string
	// Mode is the orchestration mode in force.
	Mode string
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
	res, err := b.buildAgents()
	if err != nil {
		return nil, err
	}
	if opts.WrapAgent != nil {
		for i, a := range res.Agents {
			res.Agents[i] = opts.WrapAgent(a)
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
		mws = append(mws, agents.WithCircuitBreaker(agents.BreakerConfig{Failures: r.BreakerFailures, Cooldown: time.Duration(r.BreakerCooldown)}))
	}
	if r.Retries > 0 {
		mws = append(mws, agents.WithRetry(agents.RetryPolicy{Max: r.Retries, Base: time.Duration(r.Backoff), Jitter: 0.2}))
	}
	if r.Timeout > 0 {
		mws = append(mws, agents.WithTimeout(time.Duration(r.Timeout)))
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

// newModel builds one provider's model; rules replace the scripted rules.
func newModel(name string, llm config.LLM, rules []config.Rule) (agents.ChatModel, error) {
	switch llm.Provider {
	case "scripted", "":
		m, err := scripted.New(scripted.Config{
			Rules:           rules,
			Fallback:        llm.Scripted.Fallback,
			ToolFallback:    llm.Scripted.ToolFallback,
			TokenDelay:      time.Duration(llm.Scripted.TokenDelay),
			FirstTokenDelay: time.Duration(llm.Scripted.FirstTokenDelay),
		})
		if err != nil {
			return nil, fmt.Errorf("%w: model %q: %v", ErrConfig, name, err)
		}
		return m, nil
	case "openai":
		o := llm.OpenAI
		var key string
		if o.APIKeyEnv != "" {
			if key = os.Getenv(o.APIKeyEnv); key == "" {
				return nil, fmt.Errorf("%w: model %q: environment variable %s is empty", ErrConfig, name, o.APIKeyEnv)
			}
		}
		m, err := openai.New(openai.Config{
			BaseURL: o.BaseURL, APIKey: key, Model: o.Model,
			Timeout: time.Duration(o.Timeout), ExtraHeaders: o.Headers,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: model %q: %v", ErrConfig, name, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: model %q: unknown provider %q", ErrConfig, name, llm.Provider)
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
	specs := cfg.Agents
	if len(specs) == 0 {
		// One agent from [agent] and [llm]: the simple configuration.
		specs = []config.AgentSpec{{Name: cfg.Agent.Name, System: cfg.Agent.System, Voice: cfg.TTS.Voice}}
	}
	llmAgents := map[string]*agents.LLMAgent{}
	var order []string
	for _, spec := range specs {
		if !spec.IsEnabled() {
			continue
		}
		model, err := b.modelFor(spec)
		if err != nil {
			return nil, err
		}
		var tools []agents.Tool
		for _, t := range spec.Tools {
			tool := b.opts.Tools[t]
			if tool == nil {
				return nil, fmt.Errorf("%w: agent %q: unknown tool %q", ErrConfig, spec.Name, t)
			}
			tools = append(tools, tool)
		}
		system := spec.System
		if system == "" && spec.Role != "" {
			system = "You are the " + spec.Role + "."
		}
		a, err := agents.NewLLMAgent(agents.LLMAgentConfig{
			Name: spec.Name, Instructions: system, Model: model, Tools: tools,
			MaxSteps: spec.MaxSteps, Logger: b.log,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		llmAgents[spec.Name] = a
		order = append(order, spec.Name)
		if spec.Voice != "" {
			res.Voices[spec.Name] = spec.Voice
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: no enabled agent", ErrConfig)
	}
	roles := map[string]string{}
	for _, spec := range specs {
		roles[spec.Name] = spec.Role
	}
	for _, spec := range specs {
		a := llmAgents[spec.Name]
		if a == nil {
			continue
		}
		var hs []agents.HandoffSpec
		for _, h := range spec.Handoffs {
			target := llmAgents[h]
			if target == nil {
				b.log.Info("handoff target disabled", "agent", spec.Name, "target", h)
				continue
			}
			desc := roles[h]
			if desc == "" {
				desc = "the " + h + " agent"
			}
			hs = append(hs, agents.HandoffSpec{Target: target, Description: "Transfer the conversation to " + desc + "."})
		}
		if err := a.SetHandoffs(hs...); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}

	o := cfg.Orchestration
	members := o.Agents
	if len(members) == 0 {
		members = order
	}
	member := func(n string) (agents.Runnable, error) {
		if a := llmAgents[n]; a != nil {
			return a, nil
		}
		return nil, fmt.Errorf("%w: agent %q is not enabled", ErrConfig, n)
	}
	var runs []agents.Runnable
	for _, n := range members {
		r, err := member(n)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	omodel := b.models["default"]
	if o.Model != "" {
		omodel = b.models[o.Model]
	}
	synth := o.Synthesize == nil || *o.Synthesize
	aggregate := workflow.JoinOutputs()
	if synth {
		aggregate = workflow.Synthesize(omodel, "")
	}
	workers := func() []workflow.Worker {
		var ws []workflow.Worker
		for i, r := range runs {
			ws = append(ws, workflow.Worker{Name: members[i], Description: roles[members[i]], Agent: r})
		}
		return ws
	}

	var root agents.Runnable
	var err error
	switch res.Mode {
	case "handoff":
		for _, n := range order {
			res.Agents = append(res.Agents, llmAgents[n])
		}
		res.Entry = o.Entry
		if res.Entry == "" {
			res.Entry = order[0]
		}
		if llmAgents[res.Entry] == nil {
			return nil, fmt.Errorf("%w: entry agent %q is not enabled", ErrConfig, res.Entry)
		}
	case "route":
		var routes []workflow.Route
		for i, r := range runs {
			routes = append(routes, workflow.Route{Name: members[i], Description: roles[members[i]], Target: r})
		}
		root, err = workflow.Router("router", omodel, workflow.RouterConfig{Fallback: members[0], Logger: b.log}, routes...)
	case "collaborative":
		root, err = workflow.Parallel("collaborative", aggregate, runs...)
	case "sequential":
		root, err = workflow.Sequential("sequential", runs...)
	case "loop":
		body := runs[0]
		if len(runs) > 1 {
			if body, err = workflow.Sequential("loop-body", runs...); err != nil {
				break
			}
		}
		var until func(int, string) bool
		if o.Until != "" {
			re := regexp.MustCompile("(?i)" + o.Until)
			until = func(_ int, out string) bool { return re.MatchString(out) }
		}
		root, err = workflow.Loop("loop", body, workflow.LoopConfig{MaxIterations: o.MaxIterations, Until: until})
	case "mixed":
		var stages []agents.Runnable
		for i, st := range o.Stages {
			var rs []agents.Runnable
			for _, n := range st {
				r, merr := member(n)
				if merr != nil {
					return nil, merr
				}
				rs = append(rs, r)
			}
			if len(rs) == 1 {
				stages = append(stages, rs[0])
				continue
			}
			p, perr := workflow.Parallel(fmt.Sprintf("stage-%d", i+1), aggregate, rs...)
			if perr != nil {
				return nil, fmt.Errorf("%w: %v", ErrConfig, perr)
			}
			stages = append(stages, p)
		}
		root, err = workflow.Sequential("mixed", stages...)
	case "supervisor":
		root, err = workflow.Supervisor("supervisor", omodel, workers(), workflow.SupervisorConfig{Parallel: o.Parallel, Logger: b.log})
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", ErrConfig, res.Mode)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, res.Mode, err)
	}
	if root != nil {
		res.Agents, res.Entry = []agents.Runnable{root}, root.Name()
	}
	if o.Timeout > 0 {
		for i, a := range res.Agents {
			res.Agents[i] = &timeout{Runnable: a, d: time.Duration(o.Timeout)}
		}
	}
	return res, nil
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
