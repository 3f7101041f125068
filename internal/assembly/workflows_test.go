package assembly

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/temporal/temporaltest"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/demo"
)

// TestWorkflowsExample runs examples/workflows.toml's refund workflow as
// an agent would: start_refund from a session, signal_workflow to approve
// it, workflow_status to follow it; the billing endpoint is a local server
// that checks what it is sent, and the session hears the end.
func TestWorkflowsExample(t *testing.T) {
	testWorkflowsExample(t, config.Durable{Path: t.TempDir()})
}

// TestWorkflowsExampleTemporal is TestWorkflowsExample with
// [durable] engine = "temporal", on a Temporal dev server.
func TestWorkflowsExampleTemporal(t *testing.T) {
	addr := temporaltest.Own(t)
	testWorkflowsExample(t, config.Durable{Engine: "temporal", TemporalAddress: addr, TemporalTaskQueue: "voiced-" + durable.NewRunID()[4:]})
}

func testWorkflowsExample(t *testing.T, dcfg config.Durable) {
	cfg, err := config.Load("../../examples/workflows.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTools(cfg); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies, keys []string
	billing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/v1/refunds/1001" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("billing got %s %s %v", r.Method, r.URL, r.Header)
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		bodies = append(bodies, string(b))
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		io.WriteString(w, `{"refund_id":"rf_77","status":"paid"}`)
	}))
	defer billing.Close()
	st := &cfg.Workflows[0].Steps[2]
	st.URL = strings.Replace(st.URL, "https://billing.example.com", billing.URL, 1)

	d, err := openDurable(dcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tools := demo.Tools(nil)
	if err := d.register(cfg, tools, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.setAgents(cfg, map[string]agents.Runnable{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.engine.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	heard := make(chan string, 1)
	done := make(chan struct{})
	defer close(done)
	ctx := agents.WithSession(context.Background(), agents.SessionInfo{ID: "s1", Say: func(s string) { heard <- s }, Done: done})

	if _, err := tools["start_refund"].Call(ctx, json.RawMessage(`{"invoice_id":"1001"}`)); err == nil || !strings.Contains(err.Error(), "amount_cents") {
		t.Fatalf("start_refund without amount_cents = %v, want a schema error", err)
	}
	out, err := tools["start_refund"].Call(ctx, json.RawMessage(`{"invoice_id":"1001","amount_cents":4900}`))
	if err != nil {
		t.Fatal(err)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || started.RunID == "" {
		t.Fatalf("start_refund = %s, %v", out, err)
	}
	status := func() map[string]any {
		out, err := tools["workflow_status"].Call(ctx, json.RawMessage(`{"run_id":"`+started.RunID+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal([]byte(out), &m)
		return m
	}
	if s := status(); s["status"] != "running" || s["workflow"] != "refund" {
		t.Errorf("status = %v", s)
	}
	if _, err := tools["signal_workflow"].Call(ctx, json.RawMessage(`{"run_id":"`+started.RunID+`","signal":"approval","payload":{"approved":true,"by":"dana"}}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case said := <-heard:
		if said != "Your refund rf_77 for invoice 1001 is on its way." {
			t.Errorf("said %q", said)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing said; status %v", status())
	}
	if _, err := d.engine.Wait(ctx, started.RunID); err != nil {
		t.Fatal(err)
	}
	if s := status(); s["status"] != "completed" || s["result"] != "Your refund rf_77 for invoice 1001 is on its way." {
		t.Errorf("status = %v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `"amount_cents":4900`) || !strings.Contains(bodies[0], `"approved_by":"dana"`) ||
		!strings.Contains(bodies[0], `"note":"Invoice 1001: 49 dollars`) || keys[0] != started.RunID+"/refund/1" {
		t.Errorf("billing got %q with keys %q", bodies, keys)
	}
	if _, err := tools["signal_workflow"].Call(ctx, json.RawMessage(`{"run_id":"`+started.RunID+`","signal":"approval"}`)); err == nil {
		t.Error("signal_workflow to a finished run: no error")
	}
}
