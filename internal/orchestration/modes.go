package orchestration

import (
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/workflow"
	"github.com/voiced-dev/voiced/internal/config"
)

// team is what a mode builds from: the enabled agents, with their
// handoffs, and the members the orchestration names.
type team struct {
	cfg    config.Orchestration
	log    *slog.Logger
	agents map[string]*agents.LLMAgent // the enabled agents, by name
	// runnable are the enabled agents as others run them (with their
	// context subscriptions), by name.
	runnable map[string]agents.Runnable
	tools    map[string]agents.Tool // the tools agents may name
	order    []string               // their names, in the file's order
	roles    map[string]string      // every agent's role, by name
	members  []string               // [orchestration] agents (default: order)
	runs     []agents.Runnable      // the members' agents
	model    agents.ChatModel       // router, supervisor and synthesis model
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
		if t.agents[h] == nil {
			t.log.Info("handoff target disabled", "agent", spec.Name, "target", h)
			continue
		}
		hspec, err := t.handoffSpec(h, spec.Handoff[h])
		if err != nil {
			return fmt.Errorf("agent %q: %w", spec.Name, err)
		}
		hs = append(hs, hspec)
	}
	if err := a.SetHandoffs(hs...); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// member returns the enabled agent named n.
func (t *team) member(n string) (agents.Runnable, error) {
	if a := t.runnable[n]; a != nil {
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
	"planner":       root(planner),
	"graph":         root(graph),
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
		hosted = append(hosted, t.runnable[n])
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
	return workflow.Supervisor("supervisor", t.model, t.workers(), workflow.SupervisorConfig{Parallel: t.cfg.Parallel, Logger: t.log})
}

// workers are the members as a planner's or supervisor's workers.
func (t *team) workers() []workflow.Worker {
	var workers []workflow.Worker
	for i, r := range t.runs {
		workers = append(workers, workflow.Worker{Name: t.members[i], Description: t.roles[t.members[i]], Agent: r})
	}
	return workers
}

// planner lets the model write a plan whose steps the members do, one
// after another, re-planning when a step fails.
func planner(t *team) (agents.Runnable, error) {
	p := t.cfg.Planner
	return workflow.Planner("planner", t.model, t.workers(), workflow.PlannerConfig{
		MaxSteps: p.MaxSteps, MaxReplans: p.MaxReplans, Synthesize: p.Synthesize, System: p.System, Logger: t.log,
	})
}

// graph runs the members as the nodes of the declared graph; the edges of
// a node that have a pattern form its condition.
func graph(t *team) (agents.Runnable, error) {
	g := workflow.NewGraph("graph")
	for i, r := range t.runs {
		g.AddNode(t.members[i], r)
	}
	type cond struct {
		re *regexp.Regexp
		to string
	}
	conds := map[string][]cond{}
	var order []string
	for _, e := range t.cfg.Graph.Edges {
		if e.When == "" {
			g.AddEdge(e.From, e.To)
			continue
		}
		re, err := regexp.Compile("(?i)" + e.When)
		if err != nil {
			return nil, fmt.Errorf("%w: graph edge %s -> %s: %v", ErrConfig, e.From, e.To, err)
		}
		if _, ok := conds[e.From]; !ok {
			order = append(order, e.From)
		}
		conds[e.From] = append(conds[e.From], cond{re, e.To})
	}
	for _, from := range order {
		cs := conds[from]
		var targets []string
		for _, c := range cs {
			targets = append(targets, c.to)
		}
		g.AddConditionalEdge(from, func(out string) string {
			for _, c := range cs {
				if c.re.MatchString(out) {
					return c.to
				}
			}
			return ""
		}, targets...)
	}
	return g.Build()
}
