package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/voiced-dev/voiced/agents/webhook"
)

// This file holds the settings that reach the agents library's
// orchestration features: the planner and graph modes, handoff conditions,
// input filters and actions, event-bus topics between agents, and audit
// hooks. docs/agents.md describes what they do.

// PlannerMode is [orchestration.planner], for mode "planner": the model
// (orchestration.model) writes a plan of steps, each done by a member.
type PlannerMode struct {
	MaxSteps   int    `toml:"max_steps"`   // steps kept of a plan (default 8)
	MaxReplans int    `toml:"max_replans"` // re-plans after a failed step (default 2; -1: none)
	Synthesize bool   `toml:"synthesize"`  // the model writes the answer from every step's result
	System     string `toml:"system"`      // replaces the opening of the planning prompt
}

// GraphMode is [orchestration.graph], for mode "graph": the members are
// the nodes of a directed acyclic graph.
type GraphMode struct {
	Edges []GraphEdge `toml:"edges"`
}

// GraphEdge is one [[orchestration.graph.edges]]: To runs after From and
// is given its output. The edges of one node that have When form its
// condition: the first (in the file's order) whose pattern matches the
// node's output is taken, and none if none matches.
type GraphEdge struct {
	From string `toml:"from"`
	To   string `toml:"to"`
	When string `toml:"when"` // regular expression, case-insensitive
}

// AgentWiring is the part of an [[agents]] entry that reaches the
// library's handoff options and event bus.
type AgentWiring struct {
	// Handoff configures the handoffs to some of the targets in handoffs:
	// [agents.handoff.TARGET].
	Handoff map[string]HandoffOptions `toml:"handoff"`
	// Publishes are the topics the agent may publish on: it gets the tool
	// publish_event.
	Publishes []string `toml:"publishes"`
	// Subscribe are the topics the agent reacts to.
	Subscribe []Subscription `toml:"subscribe"`
}

// HandoffOptions is [agents.handoff.TARGET].
type HandoffOptions struct {
	// Description tells the model when to transfer (default from the
	// target's role).
	Description string `toml:"description"`
	// AfterTools: the handoff is offered only once each of these tools
	// has returned without error in this session.
	AfterTools []string `toml:"after_tools"`
	// WhenMetadata: the handoff is offered only when each named session
	// metadata value matches its pattern (regular expression,
	// case-insensitive); a missing value matches nothing.
	WhenMetadata map[string]string `toml:"when_metadata"`
	// LastMessages gives the target only the last N messages before the
	// transfer (0: all). The transfer call and its result are kept.
	LastMessages int `toml:"last_messages"`
	// DropToolMessages leaves tool calls and results out of what the
	// target is given (the transfer's included).
	DropToolMessages bool `toml:"drop_tool_messages"`
	// SetMetadata sets session metadata when the transfer happens.
	SetMetadata map[string]string `toml:"set_metadata"`
	// CallTool is a tool (built-in or [[tools]]) called before the
	// transfer with ToolArgs (JSON object, default {}); if it fails there
	// is no transfer and the model is told why.
	CallTool string `toml:"call_tool"`
	ToolArgs string `toml:"tool_args"`
}

// Subscription is one [[agents.subscribe]].
type Subscription struct {
	// Topic is a topic, "prefix.*" or "*".
	Topic string `toml:"topic"`
	// Action: "context" (default) adds the event to what the agent is
	// given the next time it runs in the session; "background" runs the
	// agent on the event at once, beside the conversation.
	Action string `toml:"action"`
	// Speak, for background: say the agent's answer once the answer in
	// progress is over (default true).
	Speak *bool `toml:"speak"`
}

// Subscription actions.
const (
	ActionContext    = "context"
	ActionBackground = "background"
)

// Speaks reports whether a background subscription's answer is spoken.
func (s Subscription) Speaks() bool { return s.Speak == nil || *s.Speak }

// Hook is an entry of [[hooks]] (see agents/webhook.Config).
type Hook = webhook.Config

var topicName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// validateWiring checks this file's settings; errors name their line in
// file when there is one.
func (c Config) validateWiring(file []byte) []error {
	var errs []error
	loc := locate(file)
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", path, loc.at(path), fmt.Sprintf(format, args...)))
	}
	agentNames := map[string]bool{}
	for _, a := range c.Agents {
		agentNames[a.Name] = true
	}
	for i, a := range c.Agents {
		where := fmt.Sprintf("agents[%d]", i)
		for _, target := range slices.Sorted(maps.Keys(a.Handoff)) {
			h := a.Handoff[target]
			hw := where + ".handoff." + target
			if !slices.Contains(a.Handoffs, target) {
				bad(hw, "%q is not in this agent's handoffs", target)
			}
			for _, t := range h.AfterTools {
				if t == "" {
					bad(hw+".after_tools", "empty tool name")
				}
			}
			for _, k := range slices.Sorted(maps.Keys(h.WhenMetadata)) {
				if k == "" {
					bad(hw+".when_metadata", "empty key")
				}
				if _, err := regexp.Compile(h.WhenMetadata[k]); err != nil {
					bad(hw+".when_metadata", "%s: %v", k, err)
				}
			}
			if h.LastMessages < 0 {
				bad(hw+".last_messages", "%d: want >= 0", h.LastMessages)
			}
			for k := range h.SetMetadata {
				if k == "" {
					bad(hw+".set_metadata", "empty key")
				}
			}
			if h.ToolArgs != "" {
				if h.CallTool == "" {
					bad(hw+".tool_args", "without call_tool")
				}
				var obj map[string]any
				if err := json.Unmarshal([]byte(h.ToolArgs), &obj); err != nil {
					bad(hw+".tool_args", "want a JSON object: %v", err)
				}
			}
		}
		for j, t := range a.Publishes {
			if !topicName.MatchString(t) {
				bad(fmt.Sprintf("%s.publishes", where), "topic %q: want dot-separated words without wildcards (orders.placed)", t)
			}
			if slices.Index(a.Publishes, t) != j {
				bad(fmt.Sprintf("%s.publishes", where), "topic %q repeated", t)
			}
		}
		for j, s := range a.Subscribe {
			sw := fmt.Sprintf("%s.subscribe[%d]", where, j)
			p := strings.TrimSuffix(s.Topic, ".*")
			if s.Topic != "*" && !topicName.MatchString(p) {
				bad(sw+".topic", "%q: want a topic, \"prefix.*\" or \"*\"", s.Topic)
			}
			switch s.Action {
			case "", ActionContext:
				if s.Speak != nil {
					bad(sw+".speak", "only for action \"background\"")
				}
			case ActionBackground:
			default:
				bad(sw+".action", "%q: want \"context\" or \"background\"", s.Action)
			}
		}
	}

	o := c.Orchestration
	if o.Mode != "planner" && o.Planner != (PlannerMode{}) {
		bad("orchestration.planner", "set, but orchestration.mode is %q", o.Mode)
	}
	if o.Planner.MaxSteps < 0 {
		bad("orchestration.planner.max_steps", "%d: want >= 0", o.Planner.MaxSteps)
	}
	if o.Planner.MaxReplans < -1 {
		bad("orchestration.planner.max_replans", "%d: want -1 (never) or more", o.Planner.MaxReplans)
	}
	if o.Mode != "graph" && len(o.Graph.Edges) > 0 {
		bad("orchestration.graph", "set, but orchestration.mode is %q", o.Mode)
	}
	if o.Mode == "graph" {
		errs = append(errs, c.validateGraph(loc, agentNames)...)
	}

	for i, h := range c.Hooks {
		where := fmt.Sprintf("hooks[%d]", i)
		if err := webhook.Check(h, os.LookupEnv); err != nil {
			bad(where, "%v", err)
		}
		for _, n := range h.Agents {
			if !agentNames[n] && n != c.Agent.Name {
				bad(where+".agents", "unknown agent %q", n)
			}
		}
	}
	return errs
}

// validateGraph checks the graph's edges: known member nodes, patterns,
// and no cycle.
func (c Config) validateGraph(loc locations, agentNames map[string]bool) []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", path, loc.at(path), fmt.Sprintf(format, args...)))
	}
	o := c.Orchestration
	members := o.Agents
	if len(members) == 0 {
		for _, a := range c.Agents {
			if a.IsEnabled() {
				members = append(members, a.Name)
			}
		}
	}
	node := func(path, n string) {
		if n == "" {
			bad(path, "required")
		} else if !slices.Contains(members, n) {
			bad(path, "%q is not a member (orchestration.agents, or every enabled agent)", n)
		}
	}
	next := map[string][]string{}
	for i, e := range o.Graph.Edges {
		where := fmt.Sprintf("orchestration.graph.edges[%d]", i)
		node(where+".from", e.From)
		node(where+".to", e.To)
		if e.When != "" {
			if _, err := regexp.Compile(e.When); err != nil {
				bad(where+".when", "%v", err)
			}
		}
		for _, prev := range o.Graph.Edges[:i] {
			if prev.From == e.From && prev.To == e.To {
				bad(where, "edge %s -> %s repeated", e.From, e.To)
			}
		}
		next[e.From] = append(next[e.From], e.To)
	}
	// Depth-first search for a cycle.
	state := map[string]int{} // 1: on the path, 2: done
	var path []string
	var visit func(n string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			bad("orchestration.graph.edges", "cycle %s -> %s", strings.Join(path[i:], " -> "), n)
			return true
		case 2:
			return false
		}
		state[n] = 1
		path = append(path, n)
		for _, m := range next[n] {
			if visit(m) {
				return true
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return false
	}
	for _, n := range members {
		if visit(n) {
			break
		}
	}
	return errs
}
