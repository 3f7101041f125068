package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/voiced-dev/voiced/agents"
)

// ErrData is reported (in a reply's Error) for a request whose Data an
// agent cannot read.
var ErrData = errors.New("bus: unsupported event data")

// Agent makes r answer the events published on the in topic pattern, one
// at a time, under a context cancelled by the returned stop function or by
// Close. An event's Data is the input: a string (one user message), an
// agents.Input or a []agents.Message. The answer (its text, as a string
// Data) is published:
//   - on out, if out is not empty, keeping the request's correlation ID and
//     ReplyTo, so the next agent of a chain can answer the original
//     requester;
//   - otherwise as a Reply to the request (see Bus.Reply), so the last
//     agent of a chain answers a Request.
//
// A failed run is published the same way, with Error set and no Data; a
// request that already carries an Error is passed on without running r.
// Answers are published with the Block policy's wait bounded by the same
// context.
func Agent(b *Bus, r agents.Runnable, in, out string, opts SubscribeOptions) (stop func(), err error) {
	if r == nil {
		return nil, fmt.Errorf("bus: agent: nil runnable")
	}
	return b.Subscribe(in, func(ctx context.Context, ev Event) {
		answer := Event{CorrelationID: correlation(ev), ReplyTo: ev.ReplyTo}
		input, err := inputOf(ev.Data)
		if ev.Error != "" { // an upstream agent failed: pass it on
			err = errors.New(ev.Error)
		} else if err == nil {
			var text string
			text, err = agents.Collect(ctx, r, input)
			answer.Data = text
		}
		if ctx.Err() != nil {
			return // stopped: nobody is waiting for a cut-off answer
		}
		if err != nil {
			answer.Data = nil
			answer.Error = err.Error()
			if ev.Error == "" {
				answer.Error = fmt.Sprintf("%s: %v", r.Name(), err)
			}
			b.log.Warn("bus: agent failed", "agent", r.Name(), "topic", ev.Topic, "correlation", answer.CorrelationID, "err", err)
		}
		if out != "" {
			err = b.Publish(ctx, out, answer)
		} else {
			err = b.Reply(ctx, ev, answer)
		}
		if err != nil && !errors.Is(err, ErrClosed) {
			b.log.Warn("bus: agent could not publish its answer", "agent", r.Name(), "err", err)
		}
	}, opts)
}

func inputOf(data any) (agents.Input, error) {
	switch d := data.(type) {
	case string:
		return agents.UserInput(d), nil
	case agents.Input:
		return d, nil
	case []agents.Message:
		return agents.Input{Messages: d}, nil
	}
	return agents.Input{}, fmt.Errorf("%w: %T", ErrData, data)
}
