package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// TestE2EWorkflowsExample runs examples/workflows.toml on a real server: a
// typed request starts the refund workflow from the conversation and the
// caller hears it finish; the same workflow is started, started again
// (idempotently), signalled and read over the /workflows API. The billing
// endpoint is a local server that checks what it is sent.
func TestE2EWorkflowsExample(t *testing.T) {
	cfg, err := config.Load("../examples/workflows.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Durable.Path = t.TempDir()
	var mu sync.Mutex
	keys := map[string]int{}
	billing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/v1/refunds/1001" || !strings.Contains(string(b), `"amount_cents":`) {
			t.Errorf("billing got %s %s %s", r.Method, r.URL, b)
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		io.WriteString(w, `{"refund_id":"rf_e2e"}`)
	}))
	defer billing.Close()
	wf := &cfg.Workflows[0]
	wf.Steps[2].URL = strings.Replace(wf.Steps[2].URL, "https://billing.example.com", billing.URL, 1)
	// The API's copy waits for its signal without a bound; the
	// conversation's approves by itself at once.
	manual := *wf
	manual.Name = "refund_manual"
	manual.Steps = append([]config.WorkflowStep(nil), wf.Steps...)
	manual.Steps[1].Wait, manual.Steps[1].Default = 0, nil
	wf.Steps[1].Wait = time.Millisecond
	cfg.Workflows = append(cfg.Workflows, manual)
	srv := testenv.Start(t, cfg, nil)

	// From the conversation: the caller hears the end.
	c := dial(t, srv.WebSocket(), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	since := time.Now()
	c.sendJSON(map[string]string{"type": "text", "text": "I was charged twice on invoice 1001"})
	said := func() string {
		var s []string
		evs, _ := c.snapshot()
		for _, e := range evs {
			if e.Type == "bot_text" && !e.At.Before(since) {
				s = append(s, e.Text)
			}
		}
		return strings.Join(s, " ")
	}
	if !c.silenceUntil(30*time.Second, func() bool { return strings.Contains(said(), "Your refund rf_e2e for invoice 1001 is on its way.") }) {
		evs, _ := c.snapshot()
		t.Fatalf("the workflow never spoke; said %q; events %s", said(), types(evs))
	}
	if call, ok := c.first("tool_call", since); !ok || call.Name != "start_refund" {
		t.Fatalf("tool_call %+v", call)
	}

	// Over HTTP.
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	start := `{"workflow":"refund_manual","id":"inv-1001","input":{"invoice_id":"1001","amount_cents":4900}}`
	if code, m := post("/workflows", start); code != 201 || m["id"] != "inv-1001" {
		t.Fatalf("POST /workflows = %d %v", code, m)
	}
	if code, m := post("/workflows", start); code != 200 || m["id"] != "inv-1001" {
		t.Fatalf("POST /workflows again = %d %v", code, m)
	}
	if code, m := post("/workflows", `{"workflow":"refund_manual","id":"inv-1001","input":{"invoice_id":"1001","amount_cents":1}}`); code != 409 {
		t.Fatalf("POST /workflows with another input = %d %v", code, m)
	}
	if code, m := post("/workflows/inv-1001/signal", `{"signal":"approval","payload":{"approved":true,"by":"dana"}}`); code != 202 {
		t.Fatalf("signal = %d %v", code, m)
	}
	var run map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/workflows/inv-1001")
		if err != nil {
			t.Fatal(err)
		}
		run = nil
		json.NewDecoder(resp.Body).Decode(&run)
		resp.Body.Close()
		if run["status"] != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run["status"] != "completed" || run["result"] != "Your refund rf_e2e for invoice 1001 is on its way." {
		t.Fatalf("run = %v", run)
	}
	steps := run["steps"].([]any)
	if out := steps[1].(map[string]any)["output"].(map[string]any); out["by"] != "dana" {
		t.Errorf("approval output = %v, want dana's signal", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys["inv-1001/refund/1"] != 1 {
		t.Errorf("billing idempotency keys = %v, want one per run", keys)
	}
}
