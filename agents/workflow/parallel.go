package workflow

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// Aggregator combines a Parallel's branch results, in member order, into
// the answer, streamed as text deltas. Failed branches are included with
// Err set; at least one branch succeeded. in is the Parallel's input.
type Aggregator func(ctx context.Context, in agents.Input, results []BranchResult) iter.Seq2[string, error]

// JoinOutputs is the default Aggregator: the successful branches' outputs,
// trimmed, in member order, separated by a blank line. Failed branches are
// left out.
func JoinOutputs() Aggregator {
	return func(_ context.Context, _ agents.Input, results []BranchResult) iter.Seq2[string, error] {
		return func(yield func(string, error) bool) {
			var parts []string
			for _, r := range results {
				if r.Err == nil && strings.TrimSpace(r.Output) != "" {
					parts = append(parts, strings.TrimSpace(r.Output))
				}
			}
			yield(strings.Join(parts, "\n\n"), nil)
		}
	}
}

// Synthesize returns an Aggregator that asks model for one answer: the
// request holds system (DefaultSynthesisSystem if empty), the input's
// conversation, then a user message holding FormatResults(results) and an
// instruction to answer from them. The model's answer is streamed.
func Synthesize(model agents.ChatModel, system string) Aggregator {
	return func(ctx context.Context, in agents.Input, results []BranchResult) iter.Seq2[string, error] {
		return func(yield func(string, error) bool) {
			for ev, err := range model.Stream(ctx, synthesisRequest(system, in, results)) {
				if err != nil {
					yield("", fmt.Errorf("workflow: synthesis: %w", err))
					return
				}
				if ev.Text != "" && !yield(ev.Text, nil) {
					return
				}
			}
		}
	}
}

type parallel struct {
	name      string
	aggregate Aggregator
	members   []agents.Runnable
}

// Parallel runs every member concurrently on the same input and combines
// their outputs with aggregate (JoinOutputs if nil). A failed branch is
// recorded in its BranchResult and the others go on; if every branch fails
// the run fails with ErrAllFailed. Branches' text is not forwarded as
// EventText; the aggregate is the answer, emitted as EventText from the
// Parallel.
func Parallel(name string, aggregate Aggregator, members ...agents.Runnable) (agents.Runnable, error) {
	if err := checkMembers("parallel", name, members); err != nil {
		return nil, err
	}
	if aggregate == nil {
		aggregate = JoinOutputs()
	}
	return &parallel{name: name, aggregate: aggregate, members: append([]agents.Runnable(nil), members...)}, nil
}

func (p *parallel) Name() string { return p.name }

func (p *parallel) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, p.name, func(ctx context.Context, emit emitFunc) error {
		results := make([]BranchResult, len(p.members))
		for i, m := range p.members {
			results[i].Agent = m.Name()
		}
		if err := fanOut(ctx, 0, emit, len(p.members), func(i int) (agents.Runnable, agents.Input) {
			return p.members[i], in
		}, results); err != nil {
			return err
		}
		if err := allFailed(p.name, results); err != nil {
			return err
		}
		for text, err := range p.aggregate(ctx, in, results) {
			if err != nil {
				return err
			}
			if text != "" && !emit(agents.AgentEvent{Agent: p.name, Kind: agents.EventText, Text: text}) {
				return errStopped
			}
		}
		return nil
	})
}

// fanOut runs n members concurrently (at most limit at once, 0: all) and
// fills results[i].Output and .Err. It fails only when the run is cancelled
// or the consumer stops.
func fanOut(ctx context.Context, limit int, emit emitFunc, n int, member func(i int) (agents.Runnable, agents.Input), results []BranchResult) error {
	g := newGroup(ctx, limit)
	defer g.stop()
	for i := range n {
		r, rin := member(i)
		g.start(i, r, rin)
	}
	for range n {
		res, err := g.next(emit)
		if err != nil {
			return err
		}
		results[res.key].Output, results[res.key].Err = res.out, res.err
	}
	return nil
}

// allFailed returns ErrAllFailed, wrapping every branch's error, when no
// branch succeeded.
func allFailed(name string, results []BranchResult) error {
	var errs []error
	for _, r := range results {
		if r.Err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.Agent, r.Err))
	}
	return fmt.Errorf("%w: %s: %w", ErrAllFailed, name, errors.Join(errs...))
}
