package workflow

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// errStopped reports that the consumer stopped iterating: nothing more may
// be yielded.
var errStopped = errors.New("workflow: consumer stopped")

// emitFunc hands an event to the consumer; false means stop.
type emitFunc func(agents.AgentEvent) bool

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
