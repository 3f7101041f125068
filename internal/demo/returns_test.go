package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/bolt"
	"github.com/voiced-dev/voiced/agents/durable/durabletest"
	"github.com/voiced-dev/voiced/internal/demo"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// opener reopens one embedded store, as a restarted process would.
func opener(t *testing.T) func() durable.Store {
	dir := t.TempDir()
	var cur *bolt.Store
	t.Cleanup(func() {
		if cur != nil {
			cur.Close()
		}
	})
	return func() durable.Store {
		if cur != nil {
			cur.Close()
		}
		s, err := bolt.Open(dir)
		must(t, err)
		cur = s
		return s
	}
}

func TestReturnsApprovedBySignal(t *testing.T) {
	durabletest.CheckGoroutines(t)
	open := opener(t)
	clk := durabletest.NewFakeClock()
	var refunds []string
	var n durabletest.Notes
	wf := demo.Returns(demo.ReturnsConfig{AutoApprove: time.Hour, Refund: func(_ context.Context, key string, req demo.ReturnRequest) (string, error) {
		refunds = append(refunds, key)
		return "rf-" + req.OrderID, nil
	}})
	e := durabletest.NewEngine(t, open(), clk, n.Add, wf)
	id, err := e.Start(context.Background(), demo.ReturnsWorkflowName, demo.ReturnRequest{OrderID: "A17", AmountCents: 2599})
	must(t, err)
	clk.WaitTimer(t, clk.Now().Add(time.Hour))
	must(t, e.Signal(context.Background(), id, "approval", demo.Approval{Approved: true, By: "ann"}))
	var out demo.ReturnOutcome
	must(t, json.Unmarshal(durabletest.MustWait(t, e, id), &out))
	want := demo.ReturnOutcome{OrderID: "A17", Approved: true, RefundID: "rf-A17",
		Message: "Your return for order A17 is approved; your refund is on its way."}
	if out != want {
		t.Errorf("outcome = %+v, want %+v", out, want)
	}
	if !slices.Equal(refunds, []string{id + "/refund/1"}) {
		t.Errorf("refunds = %q", refunds)
	}
	if !slices.Equal(n.Got(), []string{id + ": " + want.Message}) {
		t.Errorf("notifications = %q", n.Got())
	}

	// A rejection refunds nothing; bad input fails at once.
	id, err = e.Start(context.Background(), demo.ReturnsWorkflowName, demo.ReturnRequest{OrderID: "B2", AmountCents: 100})
	must(t, err)
	must(t, e.Signal(context.Background(), id, "approval", demo.Approval{Approved: false, By: "bob"}))
	var rejected demo.ReturnOutcome
	must(t, json.Unmarshal(durabletest.MustWait(t, e, id), &rejected))
	if rejected.Approved || rejected.RefundID != "" || len(refunds) != 1 {
		t.Errorf("rejected outcome = %+v, refunds %q", rejected, refunds)
	}
	id, err = e.Start(context.Background(), demo.ReturnsWorkflowName, json.RawMessage(`{"order_id":"C3","amount_cents":0}`))
	must(t, err)
	if _, err := e.Wait(durabletest.WaitCtx(t), id); !errors.Is(err, durable.ErrRunFailed) || !strings.Contains(err.Error(), demo.ErrInvalidReturn.Error()) {
		t.Errorf("Wait(invalid) = %v", err)
	}
}

func TestReturnsAutoApproved(t *testing.T) {
	durabletest.CheckGoroutines(t)
	open := opener(t)
	clk := durabletest.NewFakeClock()
	var n durabletest.Notes
	e1 := durabletest.NewEngine(t, open(), clk, n.Add, demo.Returns(demo.ReturnsConfig{AutoApprove: 10 * time.Minute}))
	t0 := clk.Now()
	id, err := e1.Start(context.Background(), demo.ReturnsWorkflowName, demo.ReturnRequest{OrderID: "D4", AmountCents: 5})
	must(t, err)
	clk.WaitTimer(t, t0.Add(10*time.Minute))
	clk.Advance(7 * time.Minute)
	e1.Close()

	e2 := durabletest.NewEngine(t, open(), clk, n.Add, demo.Returns(demo.ReturnsConfig{AutoApprove: 10 * time.Minute}))
	_, err = e2.Resume(context.Background())
	must(t, err)
	clk.WaitTimer(t, t0.Add(10*time.Minute))
	clk.Advance(3 * time.Minute)
	var out demo.ReturnOutcome
	must(t, json.Unmarshal(durabletest.MustWait(t, e2, id), &out))
	if !out.Approved || !strings.HasPrefix(out.RefundID, "rf_") || len(n.Got()) != 1 {
		t.Errorf("outcome = %+v, notes %q", out, n.Got())
	}
	info, err := e2.Status(context.Background(), id)
	must(t, err)
	if s := info.Steps[1]; s.Name != "approve" || s.Attempts != 1 || s.Resumes != 1 {
		t.Errorf("approve step = %+v, want one attempt resumed once", s)
	}
}
