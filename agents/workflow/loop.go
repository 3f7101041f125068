package workflow

import (
	"context"
	"fmt"
	"iter"

	"github.com/voiced-dev/voiced/agents"
)

// LoopConfig configures a Loop. The zero value runs the body
// DefaultMaxIterations times.
type LoopConfig struct {
	// MaxIterations bounds the runs of the body (default
	// DefaultMaxIterations).
	MaxIterations int
	// Until, if set, is asked after each run of the body, with the number
	// of runs so far (from 1) and that run's output; true ends the loop.
	Until func(iteration int, output string) bool
}

// DefaultMaxIterations is LoopConfig.MaxIterations' default.
const DefaultMaxIterations = 3

type loop struct {
	name string
	body agents.Runnable
	cfg  LoopConfig
}

// Loop runs body repeatedly: the first run gets the input; each later run
// gets the input's conversation followed by the previous run's output as a
// user message named after body. It stops when cfg.Until says so or after
// cfg.MaxIterations runs. The answer is the last run's output, emitted as
// one EventText from the Loop once the loop ends (which run is the last is
// known only then). A run's error ends the loop.
func Loop(name string, body agents.Runnable, cfg LoopConfig) (agents.Runnable, error) {
	if body == nil {
		return nil, fmt.Errorf("%w: loop %q has no body", ErrConfig, name)
	}
	if cfg.MaxIterations < 0 {
		return nil, fmt.Errorf("%w: loop %q: negative MaxIterations", ErrConfig, name)
	}
	if cfg.MaxIterations == 0 {
		cfg.MaxIterations = DefaultMaxIterations
	}
	return &loop{name: name, body: body, cfg: cfg}, nil
}

func (l *loop) Name() string { return l.name }

func (l *loop) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, l.name, func(ctx context.Context, emit emitFunc) error {
		cur := in
		var out string
		for i := 1; i <= l.cfg.MaxIterations; i++ {
			var err error
			out, err = runMember(ctx, l.body, cur, false, emit)
			if err != nil {
				return memberError(ctx, l.name, l.body.Name(), err)
			}
			if l.cfg.Until != nil && l.cfg.Until(i, out) {
				break
			}
			cur = agents.Input{Messages: appendMessages(in.Messages, outputMessage(l.body.Name(), out))}
		}
		if out != "" && !emit(agents.AgentEvent{Agent: l.name, Kind: agents.EventText, Text: out}) {
			return errStopped
		}
		return nil
	})
}
