package workflow

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// PlannerConfig configures a Planner. The zero value works.
type PlannerConfig struct {
	// MaxSteps bounds the steps of one plan; later lines are dropped
	// (default DefaultMaxSteps).
	MaxSteps int
	// MaxReplans bounds the re-plans of one run (default
	// DefaultMaxReplans; negative: never re-plan).
	MaxReplans int
	// Synthesize makes the model write the answer from every step's result
	// (streamed); otherwise the answer is the last step's output.
	Synthesize bool
	// System, if set, replaces the opening of the planning prompt; the
	// list of workers and the plan format are always appended.
	System string
	// SynthesisSystem is the synthesis request's system prompt (default
	// DefaultSynthesisSystem).
	SynthesisSystem string
	Logger          *slog.Logger
}

// Defaults of PlannerConfig.
const (
	DefaultMaxSteps   = 8
	DefaultMaxReplans = 2
)

type planner struct {
	name    string
	model   agents.ChatModel
	workers workerSet
	cfg     PlannerConfig
	system  string
	log     *slog.Logger
}

// Planner asks model for a plan, then runs it step by step.
//
// The planning request has the planner's prompt (listing the workers as
// "- name: description" and asking for numbered "worker: task" lines) as
// System, and the input's conversation as Messages, so its last message is
// the user's. The plan is read with ParseAssignments.
//
// Step k runs its worker on the input's conversation, followed by the
// outputs of the steps done so far (user messages named after their
// workers, in order), followed by the step's task as the last user message.
//
// When a step fails, or the plan has no usable step, the planner re-plans
// (at most MaxReplans times): the request is the conversation, the previous
// plan as an assistant message, and a user message that starts with
// "Step N (worker: task) failed: <error>" (or "The plan has no step for a
// known worker.") followed by FormatResults of the steps done and a request
// for a new plan of the remaining work. Done steps are kept. When no
// re-plan is left the run fails with ErrStepFailed (or ErrBadPlan).
//
// The answer is the synthesis of every step's result (Synthesize, streamed
// from the model, see Synthesize) or the last step's output, emitted as one
// EventText from the Planner.
func Planner(name string, model agents.ChatModel, workers []Worker, cfg PlannerConfig) (agents.Runnable, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: planner %q has no model", ErrConfig, name)
	}
	ws, err := newWorkerSet("planner", name, workers)
	if err != nil {
		return nil, err
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	if cfg.MaxReplans == 0 {
		cfg.MaxReplans = DefaultMaxReplans
	}
	sys := cfg.System
	if sys == "" {
		sys = "You are a planner. Break the user's request into a short sequence of steps, each done by one of the workers below. Each step can use the results of the steps before it."
	}
	system := fmt.Sprintf("%s\n\nWorkers:\n%s\nWrite the plan as numbered lines, one step per line, in the form \"1. worker: task\", using only the workers listed. Write nothing else.", sys, ws.describe())
	return &planner{name: name, model: model, workers: ws, cfg: cfg, system: system, log: discardLogger(cfg.Logger)}, nil
}

func (p *planner) Name() string { return p.name }

func (p *planner) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, p.name, func(ctx context.Context, emit emitFunc) error {
		var done []BranchResult
		req := agents.Request{System: p.system, Messages: in.Messages}
		replans := 0
		for {
			text, err := agents.Generate(ctx, p.model, req)
			if err != nil {
				return fmt.Errorf("workflow: %s: planning: %w", p.name, err)
			}
			steps, skipped := ParseAssignments(text, p.workers.names)
			if len(steps) > p.cfg.MaxSteps {
				p.log.Warn("planner: plan too long, dropping steps", "planner", p.name, "steps", len(steps), "max", p.cfg.MaxSteps)
				steps = steps[:p.cfg.MaxSteps]
			}
			p.log.Debug("planner: plan", "planner", p.name, "steps", len(steps), "skipped_lines", skipped, "replan", replans)
			var failure string
			var stepErr error
			if len(steps) == 0 {
				failure = "The plan has no step for a known worker."
				stepErr = fmt.Errorf("%w: %s: %q", ErrBadPlan, p.name, text)
			}
			for i, st := range steps {
				w := p.workers.get(st.Worker).runnable()
				out, err := runMember(ctx, w, withOutputs(in, done, st.Task), false, emit)
				if err != nil {
					if errors.Is(err, errStopped) || ctx.Err() != nil {
						return err
					}
					failure = fmt.Sprintf("Step %d (%s: %s) failed: %v", i+1, st.Worker, st.Task, err)
					stepErr = fmt.Errorf("%w: %s: step %d (%s): %w", ErrStepFailed, p.name, i+1, st.Worker, err)
					break
				}
				done = append(done, BranchResult{Agent: st.Worker, Task: st.Task, Output: out})
			}
			if stepErr == nil {
				return p.answer(ctx, in, done, emit)
			}
			if p.cfg.MaxReplans < 0 || replans >= p.cfg.MaxReplans {
				return stepErr
			}
			replans++
			p.log.Info("planner: re-planning", "planner", p.name, "reason", failure, "replan", replans)
			msg := failure + "\n\nDone so far:\n" + strings.TrimPrefix(FormatResults(done), "Results:\n") +
				"\nWrite a new numbered plan for the remaining work only."
			req = agents.Request{System: p.system, Messages: appendMessages(in.Messages,
				agents.Message{Role: agents.RoleAssistant, Name: p.name, Content: text},
				agents.Message{Role: agents.RoleUser, Content: msg})}
		}
	})
}

func (p *planner) answer(ctx context.Context, in agents.Input, done []BranchResult, emit emitFunc) error {
	if p.cfg.Synthesize {
		if err := streamModel(ctx, p.model, synthesisRequest(p.cfg.SynthesisSystem, in, done), p.name, emit); err != nil {
			if errors.Is(err, errStopped) {
				return err
			}
			return fmt.Errorf("workflow: %s: synthesis: %w", p.name, err)
		}
		return nil
	}
	last := done[len(done)-1].Output
	if last != "" && !emit(agents.AgentEvent{Agent: p.name, Kind: agents.EventText, Text: last}) {
		return errStopped
	}
	return nil
}
