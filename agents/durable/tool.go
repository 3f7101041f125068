package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/voiced-dev/voiced/agents"
)

// Tool lets a model start a workflow: its arguments object becomes the
// run's input. Create it with StartTool.
type Tool struct {
	engine      *Engine
	workflow    string
	description string
	schema      json.RawMessage
	// OnStart, if set, is called with the Call's context and the new run's
	// ID once the run is stored, for example to remember which session
	// should hear the run's notifications.
	OnStart func(ctx context.Context, runID string)
}

// StartTool returns a tool named "start_<workflow>" (characters other than
// letters, digits, '_' and '-' become '_') that starts the named workflow.
// Its parameters schema is the workflow's InputSchema, or any object if
// the workflow is not registered yet or has none.
func StartTool(e *Engine, workflow, description string) *Tool {
	schema := json.RawMessage(`{"type":"object"}`)
	e.mu.Lock()
	if wf, ok := e.workflows[workflow]; ok && wf.InputSchema != nil {
		schema = wf.InputSchema
	}
	e.mu.Unlock()
	return &Tool{engine: e, workflow: workflow, description: description, schema: schema}
}

// Spec describes the tool to a model.
func (t *Tool) Spec() agents.ToolSpec {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, "start_"+t.workflow)
	return agents.ToolSpec{Name: name, Description: t.description, Parameters: t.schema}
}

// Call starts a run with args (a JSON object; empty means {}) as input and
// returns, for the model, a JSON object with the run's ID. The run is not
// tied to ctx: it goes on after the turn ends or is interrupted.
func (t *Tool) Call(ctx context.Context, args json.RawMessage) (string, error) {
	if len(strings.TrimSpace(string(args))) == 0 {
		args = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil || obj == nil {
		return "", fmt.Errorf("%w: tool arguments must be a JSON object", ErrInvalidInput)
	}
	id, err := t.engine.Start(ctx, t.workflow, args)
	if err != nil {
		return "", err
	}
	if t.OnStart != nil {
		t.OnStart(ctx, id)
	}
	out, _ := json.Marshal(map[string]string{"run_id": id, "workflow": t.workflow, "status": string(StatusRunning)})
	return string(out), nil
}
