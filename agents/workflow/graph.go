package workflow

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// Graph builds a workflow whose members are the nodes of a directed acyclic
// graph. Add nodes and edges, then call Build. A Graph is not safe for
// concurrent use; the Runnable that Build returns is. Errors in Add calls
// are reported by Build.
type Graph struct {
	name  string
	nodes []graphNode
	index map[string]int
	edges []graphEdge
	conds map[int]condEdge
	err   error
}

type graphNode struct {
	name string
	r    agents.Runnable
}

type graphEdge struct {
	from, to int
	cond     bool // chosen by the from node's conditional edge
}

type condEdge struct {
	route   func(output string) string
	targets []int
}

// NewGraph returns an empty graph.
func NewGraph(name string) *Graph {
	return &Graph{name: name, index: map[string]int{}, conds: map[int]condEdge{}}
}

func (g *Graph) fail(format string, args ...any) *Graph {
	if g.err == nil {
		g.err = fmt.Errorf("%w: graph %q: %s", ErrConfig, g.name, fmt.Sprintf(format, args...))
	}
	return g
}

// AddNode adds a node that runs r. Names are unique.
func (g *Graph) AddNode(name string, r agents.Runnable) *Graph {
	if name == "" || r == nil {
		return g.fail("node %q needs a name and a runnable", name)
	}
	if _, dup := g.index[name]; dup {
		return g.fail("duplicate node %q", name)
	}
	g.index[name] = len(g.nodes)
	g.nodes = append(g.nodes, graphNode{name: name, r: r})
	return g
}

// AddEdge makes to depend on from: to runs after from, and sees its output.
func (g *Graph) AddEdge(from, to string) *Graph {
	f, ok1 := g.index[from]
	t, ok2 := g.index[to]
	if !ok1 || !ok2 {
		return g.fail("edge %q -> %q: unknown node (add nodes first)", from, to)
	}
	return g.addEdge(f, t, false)
}

func (g *Graph) addEdge(f, t int, cond bool) *Graph {
	for _, e := range g.edges {
		if e.from == f && e.to == t {
			return g.fail("duplicate edge %q -> %q", g.nodes[f].name, g.nodes[t].name)
		}
	}
	g.edges = append(g.edges, graphEdge{from: f, to: t, cond: cond})
	return g
}

// AddConditionalEdge adds edges from from to each of targets, of which only
// the one that route chooses, from from's output, is taken; route may
// return "" to take none. targets lists every node route may return, so
// that Build can check the graph. A node has at most one conditional edge;
// its plain edges are always taken.
func (g *Graph) AddConditionalEdge(from string, route func(output string) string, targets ...string) *Graph {
	f, ok := g.index[from]
	if !ok {
		return g.fail("conditional edge from unknown node %q", from)
	}
	if route == nil || len(targets) == 0 {
		return g.fail("conditional edge from %q needs a route and its targets", from)
	}
	if _, dup := g.conds[f]; dup {
		return g.fail("node %q has two conditional edges", from)
	}
	ce := condEdge{route: route}
	for _, to := range targets {
		t, ok := g.index[to]
		if !ok {
			return g.fail("conditional edge %q -> %q: unknown node", from, to)
		}
		ce.targets = append(ce.targets, t)
		g.addEdge(f, t, true)
	}
	g.conds[f] = ce
	return g
}

// Build checks the graph (at least one node, known names, no cycle: a cycle
// is ErrCycle) and returns it as a Runnable. Later changes to g do not
// affect the Runnable.
//
// A run starts every node without incoming edges. When a node finishes,
// each of its edges is resolved as taken or not (plain edges are taken;
// of a conditional edge only the chosen target's); the edges of a node that
// is skipped are not taken. A node runs once all its incoming edges are
// resolved and at least one was taken, and is skipped if none was. Nodes
// whose dependencies are done run concurrently. A node's input is the
// graph's input conversation followed by the outputs of the nodes whose
// edges to it were taken, in the order the nodes were added, as user
// messages named after those nodes. The first node error ends the run and
// cancels the other nodes.
//
// The answer is the output of every node that ran and took none of its
// outgoing edges (the ends of the path taken), in the order the nodes were
// added, separated by a blank line, emitted as one EventText from the graph
// when the run ends. Nodes' own text is not forwarded.
func (g *Graph) Build() (agents.Runnable, error) {
	if g.err != nil {
		return nil, g.err
	}
	if len(g.nodes) == 0 {
		return nil, fmt.Errorf("%w: graph %q has no nodes", ErrConfig, g.name)
	}
	b := &builtGraph{
		name:  g.name,
		nodes: append([]graphNode(nil), g.nodes...),
		out:   make([][]graphEdge, len(g.nodes)),
		in:    make([]int, len(g.nodes)),
		conds: make(map[int]condEdge, len(g.conds)),
	}
	for _, e := range g.edges {
		b.out[e.from] = append(b.out[e.from], e)
		b.in[e.to]++
	}
	for k, v := range g.conds {
		b.conds[k] = v
	}
	// Kahn's algorithm: the nodes left over are on a cycle.
	indeg := append([]int(nil), b.in...)
	var queue []int
	for i, d := range indeg {
		if d == 0 {
			queue = append(queue, i)
		}
	}
	seen := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		seen++
		for _, e := range b.out[n] {
			if indeg[e.to]--; indeg[e.to] == 0 {
				queue = append(queue, e.to)
			}
		}
	}
	if seen < len(b.nodes) {
		var cyc []string
		for i, d := range indeg {
			if d > 0 {
				cyc = append(cyc, b.nodes[i].name)
			}
		}
		return nil, fmt.Errorf("%w: graph %q: nodes %s", ErrCycle, g.name, strings.Join(cyc, ", "))
	}
	return b, nil
}

type builtGraph struct {
	name  string
	nodes []graphNode
	out   [][]graphEdge // outgoing edges of each node
	in    []int         // number of incoming edges of each node
	conds map[int]condEdge
}

func (b *builtGraph) Name() string { return b.name }

type nodeState uint8

const (
	nodeWaiting nodeState = iota
	nodeRunning
	nodeDone
	nodeSkipped
)

func (b *builtGraph) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, b.name, func(ctx context.Context, emit emitFunc) error {
		n := len(b.nodes)
		state := make([]nodeState, n)
		pending := append([]int(nil), b.in...) // unresolved incoming edges
		fromTaken := make([][]bool, n)         // fromTaken[to][from]
		tookOut := make([]bool, n)             // the node took an outgoing edge
		outputs := make([]string, n)
		for i := range fromTaken {
			fromTaken[i] = make([]bool, n)
		}
		g := newGroup(ctx, 0)
		defer g.stop()
		running := 0

		start := func(i int) {
			state[i] = nodeRunning
			running++
			var deps []BranchResult
			for j := range n {
				if fromTaken[i][j] {
					deps = append(deps, BranchResult{Agent: b.nodes[j].name, Output: outputs[j]})
				}
			}
			g.start(i, named{name: b.nodes[i].name, Runnable: b.nodes[i].r}, withOutputs(in, deps, ""))
		}
		// resolve marks the edges of a finished (chosen: the conditional
		// target, -1 for none) or skipped node, and starts or skips what
		// became ready.
		var resolve func(from int, ran bool, chosen int)
		resolve = func(from int, ran bool, chosen int) {
			for _, e := range b.out[from] {
				taken := ran && (!e.cond || e.to == chosen)
				if taken {
					fromTaken[e.to][from] = true
					tookOut[from] = true
				}
				if pending[e.to]--; pending[e.to] > 0 {
					continue
				}
				anyTaken := false
				for _, t := range fromTaken[e.to] {
					anyTaken = anyTaken || t
				}
				if anyTaken {
					start(e.to)
				} else {
					state[e.to] = nodeSkipped
					resolve(e.to, false, -1)
				}
			}
		}
		for i := range n {
			if b.in[i] == 0 {
				start(i)
			}
		}
		for running > 0 {
			res, err := g.next(emit)
			if err != nil {
				return err
			}
			running--
			i := res.key
			if res.err != nil {
				return memberError(ctx, b.name, b.nodes[i].name, res.err)
			}
			state[i], outputs[i] = nodeDone, res.out
			chosen := -1
			if ce, ok := b.conds[i]; ok {
				next := ce.route(res.out)
				if next != "" {
					for _, t := range ce.targets {
						if b.nodes[t].name == next {
							chosen = t
						}
					}
					if chosen < 0 {
						return fmt.Errorf("%w: %s: node %s chose %q", ErrBadBranch, b.name, b.nodes[i].name, next)
					}
				}
			}
			resolve(i, true, chosen)
		}
		var parts []string
		for i := range n {
			if state[i] == nodeDone && !tookOut[i] {
				if t := strings.TrimSpace(outputs[i]); t != "" {
					parts = append(parts, t)
				}
			}
		}
		if len(parts) > 0 && !emit(agents.AgentEvent{Agent: b.name, Kind: agents.EventText, Text: strings.Join(parts, "\n\n")}) {
			return errStopped
		}
		return nil
	})
}
