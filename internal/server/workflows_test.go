package server

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/bolt"
	"github.com/voiced-dev/voiced/agents/durable/declared"
	"github.com/voiced-dev/voiced/internal/config"
)

// workflowServer returns a server whose workflow API runs on a real engine
// with one declared workflow: wait for "go", then say what came with it.
func workflowServer(t *testing.T) (*Server, *durable.Engine) {
	t.Helper()
	s := newTest(t, func(c *config.Config) { c.Server.MaxBodyBytes = 512 })
	store, err := bolt.Open(filepath.Join(t.TempDir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e, err := durable.New(store, durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.Register(greetWorkflow(t)); err != nil {
		t.Fatal(err)
	}
	return s, e
}

// greetWorkflow: wait for "go", then say what came with it.
func greetWorkflow(t *testing.T) durable.Workflow {
	t.Helper()
	wf, err := declared.Build(declared.Config{
		Name:  "greet",
		Input: `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`,
		Steps: []declared.Step{
			{Name: "wait", Signal: "go"},
			{Name: "hello", Say: "Hello {{input.name}}, {{steps.wait.word}}"},
		},
	}, declared.Lookups{})
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func decodeRun(t *testing.T, w interface{ Body() string }) run {
	t.Helper()
	var r run
	if err := json.Unmarshal([]byte(w.Body()), &r); err != nil {
		t.Fatalf("body %q: %v", w.Body(), err)
	}
	return r
}

type recorded struct {
	code int
	body string
}

func (r recorded) Body() string { return r.body }

func TestWorkflowAPI(t *testing.T) {
	s, e := workflowServer(t)
	testWorkflowAPI(t, s, e)
}

// testWorkflowAPI drives the workflow API of s, which e is to serve once
// loaded; e has the greet workflow and runs it.
func testWorkflowAPI(t *testing.T, s *Server, e durable.Backend) {
	h := s.Handler()
	call := func(method, target, body string) recorded {
		t.Helper()
		w := do(t, h, method, target, map[string]string{"Content-Type": "application/json"}, body)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, target, ct)
		}
		return recorded{w.Code, w.Body.String()}
	}
	if r := call("GET", "/workflows/x", ""); r.code != http.StatusServiceUnavailable {
		t.Errorf("before Load: %d %s", r.code, r.body)
	}
	s.loaded.Store(true)
	if r := call("GET", "/workflows/x", ""); r.code != http.StatusNotFound || !strings.Contains(r.body, "declare [[workflows]]") {
		t.Errorf("without workflows: %d %s", r.code, r.body)
	}
	s.setWorkflows(e)

	start := `{"workflow":"greet","id":"greet-1","input":{"name":"Ada"}}`
	r := call("POST", "/workflows", start)
	if r.code != http.StatusCreated {
		t.Fatalf("POST = %d %s", r.code, r.body)
	}
	if v := decodeRun(t, r); v.ID != "greet-1" || v.Status != durable.StatusRunning || v.Workflow != "greet" {
		t.Errorf("POST = %+v", v)
	}
	if r := call("POST", "/workflows", `{"id":"greet-1","input":{"name":"Ada"},"workflow":"greet"}`); r.code != http.StatusOK || decodeRun(t, r).ID != "greet-1" {
		t.Errorf("POST again = %d %s, want 200 and the same run", r.code, r.body)
	}
	for _, tc := range []struct {
		method, target, body string
		code                 int
		want                 string
	}{
		{"POST", "/workflows", `{"workflow":"greet","id":"greet-1","input":{"name":"Bob"}}`, 409, "run ID in use"},
		{"POST", "/workflows", `{"workflow":"nope","input":{}}`, 404, `unknown workflow: \"nope\"`},
		{"POST", "/workflows", `{"workflow":"greet","input":{}}`, 400, "name"},
		{"POST", "/workflows", `{"workflow":"greet","id":"a b","input":{"name":"x"}}`, 400, "invalid run ID"},
		{"POST", "/workflows", `{"workflow":"greet","inputs":{}}`, 400, `unknown field \"inputs\"`},
		{"POST", "/workflows", `{"workflow":`, 400, "want a JSON object"},
		{"POST", "/workflows", `{"workflow":"greet","input":{"name":"` + strings.Repeat("x", 600) + `"}}`, 413, "max_body_bytes"},
		{"POST", "/workflows", `{}`, 400, "workflow: required"},
		{"GET", "/workflows/nope", "", 404, "run not found"},
		{"POST", "/workflows/nope/signal", `{"signal":"go"}`, 404, "run not found"},
		{"POST", "/workflows/greet-1/signal", `{}`, 400, "signal: required"},
		{"DELETE", "/workflows/nope", "", 404, "run not found"},
	} {
		r := call(tc.method, tc.target, tc.body)
		if r.code != tc.code || !strings.Contains(r.body, tc.want) || !strings.HasPrefix(r.body, `{"error":`) {
			t.Errorf("%s %s %.40s = %d %s, want %d with %q", tc.method, tc.target, tc.body, r.code, r.body, tc.code, tc.want)
		}
	}
	// An engine may take a moment to report the step a new run is at.
	for limit := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		v := decodeRun(t, call("GET", "/workflows/greet-1", ""))
		if v.Step == "" && v.Status == durable.StatusRunning && time.Now().Before(limit) {
			continue
		}
		if v.Status != durable.StatusRunning || v.Step != "wait" || string(v.Input) != `{"name":"Ada"}` {
			t.Errorf("GET = %+v", v)
		}
		break
	}
	if r := call("POST", "/workflows/greet-1/signal", `{"signal":"go","payload":{"word":"welcome"}}`); r.code != http.StatusAccepted {
		t.Fatalf("signal = %d %s", r.code, r.body)
	}
	if _, err := e.Wait(context.Background(), "greet-1"); err != nil {
		t.Fatal(err)
	}
	v := decodeRun(t, call("GET", "/workflows/greet-1", ""))
	if v.Status != durable.StatusCompleted || string(v.Result) != `"Hello Ada, welcome"` || len(v.Steps) != 2 || !v.Steps[0].Completed || string(v.Steps[0].Output) != `{"word":"welcome"}` {
		t.Errorf("GET after the signal = %+v", v)
	}
	if r := call("DELETE", "/workflows/greet-1", ""); r.code != http.StatusConflict || !strings.Contains(r.body, "already finished") {
		t.Errorf("DELETE of a finished run = %d %s", r.code, r.body)
	}
	if r := call("POST", "/workflows/greet-1/signal", `{"signal":"go"}`); r.code != http.StatusConflict {
		t.Errorf("signal to a finished run = %d %s", r.code, r.body)
	}

	// Without an ID, each start is a new run; DELETE cancels it.
	r = call("POST", "/workflows", `{"workflow":"greet","input":{"name":"Bo"}}`)
	id := decodeRun(t, r).ID
	if r.code != http.StatusCreated || !strings.HasPrefix(id, "run_") {
		t.Fatalf("POST without id = %d %s", r.code, r.body)
	}
	if r := call("DELETE", "/workflows/"+id, ""); r.code != http.StatusOK || decodeRun(t, r).Status != durable.StatusCancelled {
		t.Errorf("DELETE = %d %s", r.code, r.body)
	}
	if v := decodeRun(t, call("GET", "/workflows/"+id, "")); v.Status != durable.StatusCancelled {
		t.Errorf("GET after DELETE = %+v", v)
	}
}
