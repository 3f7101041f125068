// Package orchestration turns the agents, models and orchestration mode
// declared in voiced.toml into the Runnables a session's agent stage hosts.
package orchestration

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
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

// modelProviders are the language models by the name [llm] provider (or a
// [[models]] entry's) gives them. Each row makes a model from its section;
// rules replace the scripted model's rules. To add a provider, put its
// settings in config.LLM (a field named after it, decoded from
// [llm.NAME]) and add a row here.
var modelProviders = map[string]func(llm config.LLM, rules []config.Rule) (agents.ChatModel, error){
	"scripted": func(llm config.LLM, rules []config.Rule) (agents.ChatModel, error) {
		c := llm.Scripted
		c.Rules = rules
		m, err := scripted.New(c)
		if err != nil {
			return nil, err
		}
		return m, nil
	},
	"openai": func(llm config.LLM, _ []config.Rule) (agents.ChatModel, error) {
		c := llm.OpenAI.Config
		if env := llm.OpenAI.APIKeyEnv; env != "" {
			if c.APIKey = os.Getenv(env); c.APIKey == "" {
				return nil, fmt.Errorf("environment variable %s is empty", env)
			}
		}
		m, err := openai.New(c)
		if err != nil {
			return nil, err
		}
		return m, nil
	},
}

// ModelProviders returns the names of the language model providers, sorted.
func ModelProviders() []string { return slices.Sorted(maps.Keys(modelProviders)) }

// newModel builds one provider's model; rules replace the scripted rules.
func newModel(name string, llm config.LLM, rules []config.Rule) (agents.ChatModel, error) {
	provider := llm.Provider
	if provider == "" {
		provider = "scripted"
	}
	build := modelProviders[provider]
	if build == nil {
		return nil, fmt.Errorf("%w: model %q: unknown provider %q (known: %s)", ErrConfig, name, provider, strings.Join(ModelProviders(), ", "))
	}
	m, err := build(llm, rules)
	if err != nil {
		return nil, fmt.Errorf("%w: model %q: %v", ErrConfig, name, err)
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
	t := &team{cfg: cfg.Orchestration, log: b.log, agents: map[string]*agents.LLMAgent{}, roles: map[string]string{}}
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
		t.order = append(t.order, spec.Name)
		if spec.Voice != "" {
			res.Voices[spec.Name] = spec.Voice
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
	return a, nil
}

// team is what a mode builds from: the enabled agents, with their
// handoffs, and the members the orchestration names.
type team struct {
	cfg     config.Orchestration
	log     *slog.Logger
	agents  map[string]*agents.LLMAgent // the enabled agents, by name
	order   []string                    // their names, in the file's order
	roles   map[string]string           // every agent's role, by name
	members []string                    // [orchestration] agents (default: order)
	runs    []agents.Runnable           // the members' agents
	model   agents.ChatModel            // router, supervisor and synthesis model
}

// setHandoffs gives spec's agent, if enabled, its handoffs to the enabled
// targets.
func (t *team) setHandoffs(spec config.AgentSpec) error {
	a := t.agents[spec.Name]
	if a == nil {
		return nil
	}
	var hs []agents.HandoffSpec
	for _, h := range spec.Handoffs {
		target := t.agents[h]
		if target == nil {
			t.log.Info("handoff target disabled", "agent", spec.Name, "target", h)
			continue
		}
		desc := t.roles[h]
		if desc == "" {
			desc = "the " + h + " agent"
		}
		hs = append(hs, agents.HandoffSpec{Target: target, Description: "Transfer the conversation to " + desc + "."})
	}
	if err := a.SetHandoffs(hs...); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// member returns the enabled agent named n.
func (t *team) member(n string) (agents.Runnable, error) {
	if a := t.agents[n]; a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("%w: agent %q is not enabled", ErrConfig, n)
}

// aggregate combines parallel results: with the model unless synthesize
// is false, else joined.
func (t *team) aggregate() workflow.Aggregator {
	if t.cfg.Synthesize == nil || *t.cfg.Synthesize {
		return workflow.Synthesize(t.model, "")
	}
	return workflow.JoinOutputs()
}

// A mode makes the agents the stage hosts and names the entry one.
type mode func(t *team) (hosted []agents.Runnable, entry string, err error)

// modes are the orchestration modes by the name [orchestration] mode
// gives them. Every mode but handoff hosts one workflow agent that runs
// the members.
var modes = map[string]mode{
	"handoff":       handoff,
	"route":         root(route),
	"collaborative": root(collaborative),
	"sequential":    root(sequential),
	"loop":          root(loop),
	"mixed":         root(mixed),
	"supervisor":    root(supervisor),
}

// Modes returns the names of the orchestration modes, sorted.
func Modes() []string { return slices.Sorted(maps.Keys(modes)) }

// root makes a mode that hosts the one agent build makes.
func root(build func(t *team) (agents.Runnable, error)) mode {
	return func(t *team) ([]agents.Runnable, string, error) {
		r, err := build(t)
		if err != nil {
			return nil, "", err
		}
		return []agents.Runnable{r}, r.Name(), nil
	}
}

// handoff hosts every enabled agent; the conversation starts with the
// entry agent (default: the first) and moves by handoffs.
func handoff(t *team) ([]agents.Runnable, string, error) {
	var hosted []agents.Runnable
	for _, n := range t.order {
		hosted = append(hosted, t.agents[n])
	}
	entry := t.cfg.Entry
	if entry == "" {
		entry = t.order[0]
	}
	if t.agents[entry] == nil {
		return nil, "", fmt.Errorf("%w: entry agent %q is not enabled", ErrConfig, entry)
	}
	return hosted, entry, nil
}

// route lets the model pick the member that answers (default: the first).
func route(t *team) (agents.Runnable, error) {
	var routes []workflow.Route
	for i, r := range t.runs {
		routes = append(routes, workflow.Route{Name: t.members[i], Description: t.roles[t.members[i]], Target: r})
	}
	return workflow.Router("router", t.model, workflow.RouterConfig{Fallback: t.members[0], Logger: t.log}, routes...)
}

// collaborative runs the members in parallel and aggregates their answers.
func collaborative(t *team) (agents.Runnable, error) {
	return workflow.Parallel("collaborative", t.aggregate(), t.runs...)
}

// sequential runs the members one after another, each on the previous
// one's output.
func sequential(t *team) (agents.Runnable, error) {
	return workflow.Sequential("sequential", t.runs...)
}

// loop runs the members in sequence, up to max_iterations times or until
// the output matches until.
func loop(t *team) (agents.Runnable, error) {
	body := t.runs[0]
	if len(t.runs) > 1 {
		var err error
		if body, err = workflow.Sequential("loop-body", t.runs...); err != nil {
			return nil, err
		}
	}
	var until func(int, string) bool
	if t.cfg.Until != "" {
		re, err := regexp.Compile("(?i)" + t.cfg.Until)
		if err != nil {
			return nil, err
		}
		until = func(_ int, out string) bool { return re.MatchString(out) }
	}
	return workflow.Loop("loop", body, workflow.LoopConfig{MaxIterations: t.cfg.MaxIterations, Until: until})
}

// mixed runs stages in sequence; the agents of a stage run in parallel.
func mixed(t *team) (agents.Runnable, error) {
	var stages []agents.Runnable
	for i, st := range t.cfg.Stages {
		var rs []agents.Runnable
		for _, n := range st {
			r, err := t.member(n)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		if len(rs) == 1 {
			stages = append(stages, rs[0])
			continue
		}
		p, err := workflow.Parallel(fmt.Sprintf("stage-%d", i+1), t.aggregate(), rs...)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		stages = append(stages, p)
	}
	return workflow.Sequential("mixed", stages...)
}

// supervisor lets the model split the request among the members, as
// workers, and write the answer from their results.
func supervisor(t *team) (agents.Runnable, error) {
	var workers []workflow.Worker
	for i, r := range t.runs {
		workers = append(workers, workflow.Worker{Name: t.members[i], Description: t.roles[t.members[i]], Agent: r})
	}
	return workflow.Supervisor("supervisor", t.model, workers, workflow.SupervisorConfig{Parallel: t.cfg.Parallel, Logger: t.log})
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
