// Package workflow composes agents.Runnables into deterministic workflow
// agents: Sequential, Parallel, Loop, Router, Planner, Graph and Supervisor.
// Each one is itself an agents.Runnable, so workflows nest.
//
// # Events
//
// A workflow's stream starts with EventAgentStarted for the workflow and,
// on success, ends with EventAgentFinished for it whose Text is the
// workflow's whole answer. In between, every member run is bracketed by an
// EventAgentStarted and an EventAgentFinished that the workflow emits for
// the member (the member's own started/finished events for itself are
// replaced by these, so every member looks the same whether it reports its
// lifecycle or not); the member's EventAgentFinished carries the member's
// complete output in Text. A member that fails gets no EventAgentFinished.
//
// Only the workflow's answer is EventText: intermediate output (earlier
// members of a Sequential, Parallel branches, Planner steps, Graph nodes,
// Supervisor workers, the Router's and Planner's own model calls) is not
// forwarded as EventText; it is visible only in the members'
// EventAgentFinished. In a voice session only the answer is spoken.
// Members' other events (tool calls and results, handoffs, nested agents'
// lifecycle) are forwarded unchanged, interleaved for concurrent members.
//
// # Passing outputs on
//
// When a member's output is passed to another member, it is appended to the
// conversation as a user message whose Name is the member that wrote it:
// agents.Message{Role: agents.RoleUser, Name: "writer", Content: output}.
// The original conversation (Input.Messages) always comes first and is
// never modified.
//
// # Cancellation
//
// Everything a workflow starts runs under the ctx given to Run: cancelling
// it (barge-in) cancels every member in flight, and Run ends with
// context.Cause(ctx). A consumer that stops iterating early also cancels
// the members. Run returns only after every goroutine it started has ended.
//
// All workflow agents are safe for concurrent use; they hold no per-run
// state.
package workflow

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"

	"github.com/voiced-dev/voiced/agents"
)

var (
	// ErrConfig is returned by constructors and Graph.Build for an invalid
	// workflow (no members, nil members, unknown or duplicate names).
	ErrConfig = errors.New("workflow: invalid configuration")
	// ErrCycle is returned by Graph.Build for a graph with a cycle.
	ErrCycle = errors.New("workflow: graph has a cycle")
	// ErrAllFailed is returned when every branch of a Parallel, or every
	// delegated task of a Supervisor, failed. It wraps the branches' errors.
	ErrAllFailed = errors.New("workflow: every branch failed")
	// ErrNoRoute is returned by a Router whose model named no route and
	// that has no fallback route.
	ErrNoRoute = errors.New("workflow: no route fits")
	// ErrBadPlan is returned by a Planner whose model wrote no usable plan,
	// re-planning included.
	ErrBadPlan = errors.New("workflow: no usable plan")
	// ErrStepFailed is returned by a Planner when a step failed and no
	// re-plan is left. It also wraps the step's error.
	ErrStepFailed = errors.New("workflow: step failed")
	// ErrBadBranch is returned by a Graph whose conditional edge chose a
	// node that is not one of its declared targets.
	ErrBadBranch = errors.New("workflow: conditional edge chose an undeclared node")
)

// errStopped reports that the consumer stopped iterating: nothing more may
// be yielded.
var errStopped = errors.New("workflow: consumer stopped")

// emitFunc hands an event to the consumer; false means stop.
type emitFunc func(agents.AgentEvent) bool

// BranchResult is the outcome of one member run whose output is combined
// with others (Parallel branches, Supervisor tasks, Planner steps).
type BranchResult struct {
	Agent  string // the member's name
	Task   string // what it was asked, when the workflow chose it; may be empty
	Output string // its output (partial when Err is set)
	Err    error  // nil on success
}

// FormatResults writes results the way synthesis requests show them: a
// "Results:" line, then one line per result, in order:
//
//	Results:
//	- weather (weather in Paris): Sunny, 21 degrees.
//	- clock: failed: connection refused
//
// The parenthesised task appears only when Task is set.
func FormatResults(results []BranchResult) string {
	var b strings.Builder
	b.WriteString("Results:\n")
	for _, r := range results {
		b.WriteString("- ")
		b.WriteString(r.Agent)
		if r.Task != "" {
			b.WriteString(" (")
			b.WriteString(r.Task)
			b.WriteString(")")
		}
		b.WriteString(": ")
		if r.Err != nil {
			b.WriteString("failed: ")
			b.WriteString(r.Err.Error())
		} else {
			b.WriteString(strings.TrimSpace(r.Output))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// DefaultSynthesisSystem is the system prompt of synthesis requests when
// none is configured.
const DefaultSynthesisSystem = "You combine the results of other agents into one short answer to the user's question, suitable to be spoken aloud. Use only the results given; say so if a part failed."

// synthesisRequest asks model for one answer from results: the
// conversation, then a user message holding FormatResults(results) and an
// instruction.
func synthesisRequest(system string, in agents.Input, results []BranchResult) agents.Request {
	if system == "" {
		system = DefaultSynthesisSystem
	}
	msg := FormatResults(results) + "\nAnswer the user's question from these results."
	return agents.Request{System: system, Messages: appendMessages(in.Messages, agents.Message{Role: agents.RoleUser, Content: msg})}
}

// streamModel emits the model's answer as EventText from agent.
func streamModel(ctx context.Context, model agents.ChatModel, req agents.Request, agent string, emit emitFunc) error {
	for ev, err := range model.Stream(ctx, req) {
		if err != nil {
			return err
		}
		if ev.Text == "" {
			continue
		}
		if !emit(agents.AgentEvent{Agent: agent, Kind: agents.EventText, Text: ev.Text}) {
			return errStopped
		}
	}
	return nil
}

// appendMessages returns a new slice: base then extra. It never writes to
// base's backing array, which concurrent members share.
func appendMessages(base []agents.Message, extra ...agents.Message) []agents.Message {
	out := make([]agents.Message, 0, len(base)+len(extra))
	out = append(out, base...)
	return append(out, extra...)
}

// outputMessage is how one member's output is shown to another.
func outputMessage(agent, output string) agents.Message {
	return agents.Message{Role: agents.RoleUser, Name: agent, Content: output}
}

// withOutputs returns in's conversation followed by the given outputs and,
// if task is not empty, a final user message holding task.
func withOutputs(in agents.Input, results []BranchResult, task string) agents.Input {
	extra := make([]agents.Message, 0, len(results)+1)
	for _, r := range results {
		if r.Err == nil {
			extra = append(extra, outputMessage(r.Agent, r.Output))
		}
	}
	if task != "" {
		extra = append(extra, agents.Message{Role: agents.RoleUser, Content: task})
	}
	return agents.Input{Messages: appendMessages(in.Messages, extra...)}
}

// stream is the frame of every workflow's Run: EventAgentStarted, body,
// EventAgentFinished with the answer (the text of every EventText yielded).
// body must call emit only on the goroutine it was called on, and must not
// call it again after it returned false.
func stream(ctx context.Context, name string, body func(ctx context.Context, emit emitFunc) error) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		var answer strings.Builder
		stopped := false
		emit := func(ev agents.AgentEvent) bool {
			if stopped {
				return false
			}
			if ev.Kind == agents.EventText {
				answer.WriteString(ev.Text)
			}
			if !yield(ev, nil) {
				stopped = true
				return false
			}
			return true
		}
		if !emit(agents.AgentEvent{Agent: name, Kind: agents.EventAgentStarted}) {
			return
		}
		err := body(ctx, emit)
		if stopped {
			return
		}
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			yield(agents.AgentEvent{}, err)
			return
		}
		emit(agents.AgentEvent{Agent: name, Kind: agents.EventAgentFinished, Text: answer.String()})
	}
}

// runMember runs r on in, reporting its events through emit between an
// EventAgentStarted and an EventAgentFinished (Text: the output) for r. r's
// own started/finished events for itself are dropped. r's text is forwarded
// only if speak is set. It returns r's output; errStopped if emit refused an
// event.
func runMember(ctx context.Context, r agents.Runnable, in agents.Input, speak bool, emit emitFunc) (string, error) {
	name := r.Name()
	if !emit(agents.AgentEvent{Agent: name, Kind: agents.EventAgentStarted}) {
		return "", errStopped
	}
	var out strings.Builder
	for ev, err := range r.Run(ctx, in) {
		if err != nil {
			return out.String(), err
		}
		switch ev.Kind {
		case agents.EventText:
			out.WriteString(ev.Text)
			if !speak {
				continue
			}
		case agents.EventAgentStarted, agents.EventAgentFinished:
			if ev.Agent == name {
				continue
			}
		}
		if !emit(ev) {
			return out.String(), errStopped
		}
	}
	if ctx.Err() != nil { // a member that ended quietly on cancellation
		return out.String(), context.Cause(ctx)
	}
	if !emit(agents.AgentEvent{Agent: name, Kind: agents.EventAgentFinished, Text: out.String()}) {
		return out.String(), errStopped
	}
	return out.String(), nil
}

// memberError wraps a member's error unless it is the run's cancellation.
func memberError(ctx context.Context, workflow, member string, err error) error {
	if errors.Is(err, errStopped) || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("workflow: %s: %s: %w", workflow, member, err)
}

// group runs members concurrently under a shared context. Their events and
// results are funnelled through one channel to the goroutine that called
// next, which is the only one that emits.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan groupMsg
	sem    chan struct{}
	wg     sync.WaitGroup
}

type groupResult struct {
	key int
	out string
	err error
}

type groupMsg struct {
	ev  agents.AgentEvent
	res *groupResult
}

// newGroup returns a group that runs at most limit members at once (0: no
// limit). The caller must call stop.
func newGroup(ctx context.Context, limit int) *group {
	ctx, cancel := context.WithCancel(ctx)
	g := &group{ctx: ctx, cancel: cancel, ch: make(chan groupMsg)}
	if limit > 0 {
		g.sem = make(chan struct{}, limit)
	}
	return g
}

// start runs r on in on a new goroutine; its result comes back from next
// with key.
func (g *group) start(key int, r agents.Runnable, in agents.Input) {
	g.wg.Go(func() {
		res := &groupResult{key: key}
		if g.sem != nil {
			select {
			case g.sem <- struct{}{}:
				defer func() { <-g.sem }()
			case <-g.ctx.Done():
				return
			}
		}
		res.out, res.err = runMember(g.ctx, r, in, false, func(ev agents.AgentEvent) bool {
			return g.send(groupMsg{ev: ev})
		})
		g.send(groupMsg{res: res})
	})
}

func (g *group) send(m groupMsg) bool {
	select {
	case g.ch <- m:
		return true
	case <-g.ctx.Done():
		return false
	}
}

// next forwards members' events to emit until one member ends, and returns
// its result. It fails with the context's cause when the run is cancelled
// and with errStopped when emit refuses.
func (g *group) next(emit emitFunc) (*groupResult, error) {
	for {
		select {
		case m := <-g.ch:
			if m.res != nil {
				return m.res, nil
			}
			if !emit(m.ev) {
				return nil, errStopped
			}
		case <-g.ctx.Done():
			return nil, context.Cause(g.ctx)
		}
	}
}

// stop cancels every member still running and waits for them to end.
func (g *group) stop() {
	g.cancel()
	g.wg.Wait()
}

func discardLogger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// checkMembers validates a member list.
func checkMembers(kind, name string, members []agents.Runnable) error {
	if len(members) == 0 {
		return fmt.Errorf("%w: %s %q has no members", ErrConfig, kind, name)
	}
	for i, m := range members {
		if m == nil {
			return fmt.Errorf("%w: %s %q: member %d is nil", ErrConfig, kind, name, i)
		}
	}
	return nil
}

// Worker is a member that a Planner or Supervisor delegates to by name.
type Worker struct {
	// Name is what the model calls the worker (default: Agent.Name()).
	Name string
	// Description tells the model what the worker is for.
	Description string
	Agent       agents.Runnable
}

// workerSet indexes workers by name.
type workerSet struct {
	list  []Worker
	names []string
}

func newWorkerSet(kind, name string, workers []Worker) (workerSet, error) {
	if len(workers) == 0 {
		return workerSet{}, fmt.Errorf("%w: %s %q has no workers", ErrConfig, kind, name)
	}
	ws := workerSet{}
	seen := map[string]bool{}
	for i, w := range workers {
		if w.Agent == nil {
			return workerSet{}, fmt.Errorf("%w: %s %q: worker %d has no agent", ErrConfig, kind, name, i)
		}
		if w.Name == "" {
			w.Name = w.Agent.Name()
		}
		key := strings.ToLower(w.Name)
		if seen[key] {
			return workerSet{}, fmt.Errorf("%w: %s %q: duplicate worker %q", ErrConfig, kind, name, w.Name)
		}
		if strings.ContainsAny(w.Name, ":\n") {
			return workerSet{}, fmt.Errorf("%w: %s %q: worker name %q holds ':' or a newline", ErrConfig, kind, name, w.Name)
		}
		seen[key] = true
		ws.list = append(ws.list, w)
		ws.names = append(ws.names, w.Name)
	}
	return ws, nil
}

func (ws workerSet) get(name string) Worker {
	for _, w := range ws.list {
		if w.Name == name {
			return w
		}
	}
	return Worker{}
}

// describe lists the workers for a prompt, one "- name: description" line
// each.
func (ws workerSet) describe() string {
	var b strings.Builder
	for _, w := range ws.list {
		b.WriteString("- ")
		b.WriteString(w.Name)
		if w.Description != "" {
			b.WriteString(": ")
			b.WriteString(w.Description)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// named renames a Runnable (a worker known by another name than its own).
type named struct {
	name string
	agents.Runnable
}

func (n named) Name() string { return n.name }

func (w Worker) runnable() agents.Runnable {
	if w.Name == w.Agent.Name() {
		return w.Agent
	}
	return named{name: w.Name, Runnable: w.Agent}
}
