package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
)

// TestRunStep runs steps as an engine other than Engine does: the
// RunContext reports the call, Notify reaches the hook, a panic and a
// wait inside Run fail for good, and Timeout bounds the step.
func TestRunStep(t *testing.T) {
	var said []string
	call := durable.StepCall{
		RunID: "r1", Workflow: "w", Step: "s", Attempt: 2,
		Input:   json.RawMessage(`{"order":"A1"}`),
		Outputs: map[string]json.RawMessage{"lookup": json.RawMessage(`{"total":42}`)},
		Notify:  func(run, msg string) { said = append(said, run+": "+msg) },
	}
	out, err := durable.RunStep(context.Background(), durable.Step{Name: "s", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (string, error) {
		var in struct{ Order string }
		var lk struct{ Total int }
		if err := r.DecodeInput(&in); err != nil {
			return "", err
		}
		if err := r.DecodeOutput("lookup", &lk); err != nil {
			return "", err
		}
		if _, ok := r.Output("missing"); ok {
			return "", errors.New("an output of a step that did not run")
		}
		r.Notify("hello")
		return strings.Join([]string{r.RunID(), r.Workflow(), r.Step(), r.IdempotencyKey(), in.Order, strconv.Itoa(lk.Total)}, " "), nil
	})}, call)
	if err != nil || string(out) != `"r1 w s r1/s/2 A1 42"` {
		t.Errorf("RunStep = %s, %v", out, err)
	}
	if len(said) != 1 || said[0] != "r1: hello" {
		t.Errorf("said %q", said)
	}

	out, err = durable.RunStep(context.Background(), durable.Step{Name: "nil", Run: func(context.Context, *durable.RunContext) (json.RawMessage, error) {
		return nil, nil
	}}, call)
	if err != nil || string(out) != "null" {
		t.Errorf("a nil output = %s, %v; want null", out, err)
	}
	_, err = durable.RunStep(context.Background(), durable.Step{Name: "p", Run: func(context.Context, *durable.RunContext) (json.RawMessage, error) {
		panic("boom")
	}}, call)
	if !durable.IsPermanent(err) || !strings.Contains(err.Error(), "panicked: boom") {
		t.Errorf("a panic: %v, want a permanent error", err)
	}
	_, err = durable.RunStep(context.Background(), durable.Step{Name: "w", Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		return r.WaitSignal(ctx, "go")
	}}, call)
	if !durable.IsPermanent(err) || !errors.Is(err, durable.ErrWaitInStep) {
		t.Errorf("a wait inside Run: %v, want permanent ErrWaitInStep", err)
	}
	_, err = durable.RunStep(context.Background(), durable.Step{Name: "z", Run: func(ctx context.Context, r *durable.RunContext) (json.RawMessage, error) {
		return nil, r.Sleep(ctx, time.Second)
	}}, call)
	if !errors.Is(err, durable.ErrWaitInStep) {
		t.Errorf("a Sleep inside Run: %v, want ErrWaitInStep", err)
	}
	synctest.Test(t, func(t *testing.T) {
		_, err := durable.RunStep(context.Background(), durable.Step{Name: "slow", Timeout: time.Second, Run: func(ctx context.Context, _ *durable.RunContext) (json.RawMessage, error) {
			<-ctx.Done()
			return nil, context.Cause(ctx)
		}}, call)
		if !errors.Is(err, durable.ErrStepTimeout) || durable.IsPermanent(err) {
			t.Errorf("a step past its timeout: %v, want a retryable ErrStepTimeout", err)
		}
	})
}

// TestWaitSteps: CheckWorkflow gives Wait steps their Run and refuses
// ill-formed ones.
func TestWaitSteps(t *testing.T) {
	run := func(context.Context, *durable.RunContext) (json.RawMessage, error) { return nil, nil }
	bad := []durable.Step{
		{Name: "a", Wait: &durable.Wait{}},
		{Name: "a", Wait: &durable.Wait{Sleep: time.Second, Signal: "go"}},
		{Name: "a", Wait: &durable.Wait{Sleep: time.Second, Timeout: time.Second}},
		{Name: "a", Wait: &durable.Wait{Signal: "go", Timeout: -1}},
		{Name: "a", Wait: &durable.Wait{Sleep: time.Second}, Run: run},
	}
	for _, s := range bad {
		if _, err := durable.CheckWorkflow(durable.Workflow{Name: "w", Steps: []durable.Step{s}}); !errors.Is(err, durable.ErrInvalidWorkflow) {
			t.Errorf("step %+v: %v, want ErrInvalidWorkflow", *s.Wait, err)
		}
	}
	wf, err := durable.CheckWorkflow(durable.Workflow{Name: "w", Steps: []durable.Step{
		{Name: "nap", Wait: &durable.Wait{Sleep: time.Second}},
		{Name: "go", Wait: &durable.Wait{Signal: "go", Timeout: time.Minute, Default: json.RawMessage(`"auto"`)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if wf.Steps[0].Run == nil || wf.Steps[1].Run == nil || wf.Steps[1].Wait.Signal != "go" {
		t.Errorf("checked steps = %+v", wf.Steps)
	}
}
