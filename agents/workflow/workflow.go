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
	"errors"
	"fmt"
	"log/slog"

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
