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

// SupervisorConfig configures a Supervisor. The zero value delegates in
// sequence.
type SupervisorConfig struct {
	// Parallel runs the sub-tasks concurrently; otherwise one after
	// another, each seeing the earlier sub-tasks' outputs.
	Parallel bool
	// MaxWorkers bounds the sub-tasks running at once in Parallel mode
	// (0: all of them).
	MaxWorkers int
	// MaxTasks bounds the sub-tasks of one run; later ones are dropped
	// (default DefaultMaxTasks).
	MaxTasks int
	// System, if set, replaces the opening of the decomposition prompt;
	// the list of workers and the answer format are always appended.
	System string
	// SynthesisSystem is the synthesis request's system prompt (default
	// DefaultSynthesisSystem).
	SynthesisSystem string
	Logger          *slog.Logger
}

// DefaultMaxTasks is SupervisorConfig.MaxTasks' default.
const DefaultMaxTasks = 8

type supervisor struct {
	name    string
	model   agents.ChatModel
	workers workerSet
	cfg     SupervisorConfig
	system  string
	log     *slog.Logger
}

// Supervisor has model decompose the user's request into sub-tasks for
// named workers, delegates them, and has model synthesize one answer from
// the workers' results.
//
// The decomposition request has the supervisor's prompt (listing the
// workers as "- name: description" and asking for "worker: task" lines) as
// System and the input's conversation as Messages, so its last message is
// the user's question. The answer is read with ParseAssignments. If it
// holds no assignment, the model chose to answer by itself: its reply is
// the answer.
//
// Each sub-task runs its worker on the input's conversation followed by the
// task as the last user message (in sequential mode, the earlier sub-tasks'
// outputs come between them, as user messages named after their workers).
// A failed sub-task is recorded and the others go on; if all fail the run
// fails with ErrAllFailed.
//
// The synthesis request is the conversation followed by a user message
// holding FormatResults of the sub-tasks in the order they were assigned
// (so it contains "Results:" and each worker's output); its answer is
// streamed as EventText from the Supervisor.
func Supervisor(name string, model agents.ChatModel, workers []Worker, cfg SupervisorConfig) (agents.Runnable, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: supervisor %q has no model", ErrConfig, name)
	}
	ws, err := newWorkerSet("supervisor", name, workers)
	if err != nil {
		return nil, err
	}
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = DefaultMaxTasks
	}
	if cfg.MaxWorkers < 0 {
		return nil, fmt.Errorf("%w: supervisor %q: negative MaxWorkers", ErrConfig, name)
	}
	sys := cfg.System
	if sys == "" {
		sys = "You are a supervisor. Split the user's request into independent sub-tasks, each for one of the workers below. If no worker is needed, answer the user directly instead."
	}
	system := fmt.Sprintf("%s\n\nWorkers:\n%s\nWrite one sub-task per line in the form \"worker: task\", using only the workers listed, and nothing else.", sys, ws.describe())
	return &supervisor{name: name, model: model, workers: ws, cfg: cfg, system: system, log: discardLogger(cfg.Logger)}, nil
}

func (s *supervisor) Name() string { return s.name }

func (s *supervisor) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return stream(ctx, s.name, func(ctx context.Context, emit emitFunc) error {
		text, err := agents.Generate(ctx, s.model, agents.Request{System: s.system, Messages: in.Messages})
		if err != nil {
			return fmt.Errorf("workflow: %s: decomposition: %w", s.name, err)
		}
		tasks, skipped := ParseAssignments(text, s.workers.names)
		if len(tasks) == 0 {
			s.log.Debug("supervisor: no sub-task, answering directly", "supervisor", s.name)
			if t := strings.TrimSpace(text); t != "" && !emit(agents.AgentEvent{Agent: s.name, Kind: agents.EventText, Text: t}) {
				return errStopped
			}
			return nil
		}
		if len(tasks) > s.cfg.MaxTasks {
			s.log.Warn("supervisor: too many sub-tasks, dropping some", "supervisor", s.name, "tasks", len(tasks), "max", s.cfg.MaxTasks)
			tasks = tasks[:s.cfg.MaxTasks]
		}
		s.log.Debug("supervisor: delegating", "supervisor", s.name, "tasks", len(tasks), "skipped_lines", skipped, "parallel", s.cfg.Parallel)

		results := make([]BranchResult, len(tasks))
		for i, t := range tasks {
			results[i] = BranchResult{Agent: t.Worker, Task: t.Task}
		}
		if s.cfg.Parallel {
			err = fanOut(ctx, s.cfg.MaxWorkers, emit, len(tasks), func(i int) (agents.Runnable, agents.Input) {
				return s.workers.get(tasks[i].Worker).runnable(), withOutputs(in, nil, tasks[i].Task)
			}, results)
			if err != nil {
				return err
			}
		} else {
			for i, t := range tasks {
				var prev []BranchResult
				for _, r := range results[:i] {
					if r.Err == nil {
						prev = append(prev, r)
					}
				}
				out, err := runMember(ctx, s.workers.get(t.Worker).runnable(), withOutputs(in, prev, t.Task), false, emit)
				if err != nil && (errors.Is(err, errStopped) || ctx.Err() != nil) {
					return err
				}
				results[i].Output, results[i].Err = out, err
			}
		}
		for _, r := range results {
			if r.Err != nil {
				s.log.Warn("supervisor: sub-task failed", "supervisor", s.name, "worker", r.Agent, "err", r.Err)
			}
		}
		if err := allFailed(s.name, results); err != nil {
			return err
		}
		if err := streamModel(ctx, s.model, synthesisRequest(s.cfg.SynthesisSystem, in, results), s.name, emit); err != nil {
			if errors.Is(err, errStopped) {
				return err
			}
			return fmt.Errorf("workflow: %s: synthesis: %w", s.name, err)
		}
		return nil
	})
}
