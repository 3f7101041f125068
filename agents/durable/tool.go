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
	engine      Backend
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
func StartTool(e Backend, workflow, description string) *Tool {
	schema := json.RawMessage(`{"type":"object"}`)
	if wf, ok := e.Workflow(workflow); ok && wf.InputSchema != nil {
		schema = wf.InputSchema
	}
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

// Names of the control tools.
const (
	SignalToolName = "signal_workflow"
	StatusToolName = "workflow_status"
	CancelToolName = "cancel_workflow"
)

// ControlTools returns the tools that let a model act on runs it knows the
// ID of: signal_workflow (send a named signal with a payload),
// workflow_status (the run's status, current step, result or error) and
// cancel_workflow. Their failures (an unknown or finished run) are
// returned as errors, which an agent shows the model.
func ControlTools(e Backend) []agents.Tool {
	return []agents.Tool{
		&controlTool{
			spec: agents.ToolSpec{
				Name:        SignalToolName,
				Description: "Send a named signal, with an optional JSON payload, to a running workflow.",
				Parameters:  json.RawMessage(`{"type":"object","properties":{"run_id":{"type":"string","description":"the run's ID"},"signal":{"type":"string","description":"the signal's name"},"payload":{"description":"the signal's data"}},"required":["run_id","signal"],"additionalProperties":false}`),
			},
			call: func(ctx context.Context, a controlArgs) (any, error) {
				if a.Signal == "" {
					return nil, fmt.Errorf("%w: signal: required", agents.ErrToolArgs)
				}
				p := a.Payload
				if len(p) == 0 {
					p = json.RawMessage("null")
				}
				if err := e.Signal(ctx, a.RunID, a.Signal, p); err != nil {
					return nil, err
				}
				return map[string]string{"run_id": a.RunID, "signal": a.Signal, "status": "sent"}, nil
			},
		},
		&controlTool{
			spec: agents.ToolSpec{
				Name:        StatusToolName,
				Description: "Tell the status of a workflow run: running (and at which step), completed (with its result), failed, timed out or cancelled.",
				Parameters:  runIDSchema,
			},
			call: func(ctx context.Context, a controlArgs) (any, error) {
				info, err := e.Status(ctx, a.RunID)
				if err != nil {
					return nil, err
				}
				out := map[string]any{"run_id": info.ID, "workflow": info.Workflow, "status": info.Status}
				if info.Step != "" {
					out["step"] = info.Step
				}
				if info.Result != nil {
					out["result"] = info.Result
				}
				if info.Error != "" {
					out["error"] = info.Error
				}
				return out, nil
			},
		},
		&controlTool{
			spec: agents.ToolSpec{
				Name:        CancelToolName,
				Description: "Cancel a running workflow run.",
				Parameters:  runIDSchema,
			},
			call: func(ctx context.Context, a controlArgs) (any, error) {
				if err := e.Cancel(ctx, a.RunID); err != nil {
					return nil, err
				}
				return map[string]string{"run_id": a.RunID, "status": string(StatusCancelled)}, nil
			},
		},
	}
}

var runIDSchema = json.RawMessage(`{"type":"object","properties":{"run_id":{"type":"string","description":"the run's ID"}},"required":["run_id"],"additionalProperties":false}`)

type controlArgs struct {
	RunID   string          `json:"run_id"`
	Signal  string          `json:"signal"`
	Payload json.RawMessage `json:"payload"`
}

type controlTool struct {
	spec agents.ToolSpec
	call func(ctx context.Context, a controlArgs) (any, error)
}

func (t *controlTool) Spec() agents.ToolSpec { return t.spec }

func (t *controlTool) Call(ctx context.Context, args json.RawMessage) (string, error) {
	var a controlArgs
	if err := decodeStrict(args, &a); err != nil || a.RunID == "" {
		return "", fmt.Errorf("%w: want {\"run_id\": \"...\"}", agents.ErrToolArgs)
	}
	v, err := t.call(ctx, a)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	return string(b), err
}
