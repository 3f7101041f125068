package declared_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/bolt"
	"github.com/voiced-dev/voiced/agents/durable/declared"
	"github.com/voiced-dev/voiced/agents/durable/durabletest"
)

// lookupTool is a fake tool that checks the arguments it is sent.
type lookupTool struct {
	mu   sync.Mutex
	args []string
}

func (t *lookupTool) Spec() agents.ToolSpec {
	return agents.ToolSpec{Name: "lookup_order", Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (t *lookupTool) Call(_ context.Context, args json.RawMessage) (string, error) {
	t.mu.Lock()
	t.args = append(t.args, string(args))
	t.mu.Unlock()
	var a struct {
		OrderID string `json:"order_id"`
		Qty     int    `json:"qty"`
	}
	if err := json.Unmarshal(args, &a); err != nil || a.OrderID == "" {
		return "", errors.New("bad args")
	}
	return `{"order_id":"` + a.OrderID + `","total_cents":1250,"items":["kettle","mug"]}`, nil
}

// echoAgent answers with the prompt it was given, upper-cased.
type echoAgent struct{}

func (echoAgent) Name() string { return "clerk" }
func (echoAgent) Run(_ context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		yield(agents.AgentEvent{Kind: agents.EventText, Text: strings.ToUpper(in.Text())}, nil)
	}
}

// refunds is an HTTP endpoint with side effects that drops duplicate
// requests by their Idempotency-Key, and fails the first call of each key
// with 503 to exercise retries.
type refunds struct {
	mu       sync.Mutex
	seen     map[string]int // key → calls
	bodies   []string
	failOnce bool
}

func (f *refunds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.EscapedPath() != "/refunds/o%2F42" || r.Header.Get("Authorization") != "Bearer s3cret" || key == "" {
		http.Error(w, "unexpected request "+r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization"), http.StatusBadRequest)
		return
	}
	f.seen[key]++
	if f.failOnce {
		f.failOnce = false
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	f.bodies = append(f.bodies, string(b))
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"refund_id":"rf_1","key":"`+key+`"}`)
}

func TestDeclaredWorkflow(t *testing.T) {
	durabletest.CheckGoroutines(t)
	ctx := context.Background()
	rf := &refunds{seen: map[string]int{}, failOnce: true}
	srv := httptest.NewServer(rf)
	defer srv.Close()

	cfg := declared.Config{
		Name:  "returns",
		Input: `{"type":"object","properties":{"order_id":{"type":"string"},"qty":{"type":"integer"}},"required":["order_id"]}`,
		Steps: []declared.Step{
			{Name: "lookup", Tool: "lookup_order", Args: map[string]any{"order_id": "{{input.order_id}}", "qty": "{{input.qty}}"}},
			{Name: "approval", Signal: "approval", Wait: time.Hour, Default: map[string]any{"approved": true, "by": "auto"}},
			{Name: "refund", URL: srv.URL + "/refunds/{{input.order_id}}", Headers: map[string]string{"Authorization": "Bearer ${REFUND_KEY}"},
				Body:    map[string]any{"amount_cents": "{{steps.lookup.total_cents}}", "note": "by {{steps.approval.by}} for {{steps.lookup.items.1}}"},
				Retries: 2, Backoff: time.Second},
			{Name: "summary", Agent: "clerk", Prompt: "refund {{steps.refund.refund_id}} for run {{run.id}}"},
			{Name: "tell", Say: "Your refund {{steps.refund.refund_id}} is on its way."},
		},
	}
	tool := &lookupTool{}
	wf, err := declared.Build(cfg, declared.Lookups{
		Tool:      func(n string) (agents.Tool, bool) { return tool, n == "lookup_order" },
		Agent:     func(n string) (agents.Runnable, bool) { return echoAgent{}, n == "clerk" },
		LookupEnv: func(k string) (string, bool) { return "s3cret", k == "REFUND_KEY" },
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(filepath.Join(t.TempDir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := durabletest.NewFakeClock()
	var notes durabletest.Notes
	e := durabletest.NewEngine(t, store, clk, notes.Add, wf)

	if _, err := e.Start(ctx, "returns", map[string]any{"qty": 1}); !errors.Is(err, durable.ErrInvalidInput) {
		t.Fatalf("Start without order_id = %v, want ErrInvalidInput", err)
	}
	start := clk.Now()
	id, err := e.Start(ctx, "returns", map[string]any{"order_id": "o/42", "qty": 2})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody approves: the wait's durable timer passes, the default holds.
	clk.WaitTimer(t, start.Add(time.Hour))
	clk.Advance(time.Hour)
	// The refund endpoint answers 503 once: the retry comes after 1s.
	clk.WaitTimer(t, clk.Now().Add(time.Second))
	clk.Advance(time.Second)
	out := durabletest.MustWait(t, e, id)
	if want := `"Your refund rf_1 is on its way."`; string(out) != want {
		t.Errorf("result = %s, want %s", out, want)
	}
	if got := tool.args; len(got) != 1 || got[0] != `{"order_id":"o/42","qty":2}` {
		t.Errorf("tool args = %q", got)
	}
	if len(rf.bodies) != 1 || rf.bodies[0] != `{"amount_cents":1250,"note":"by auto for mug"}` {
		t.Errorf("refund bodies = %q", rf.bodies)
	}
	if rf.seen[id+"/refund/1"] != 1 || rf.seen[id+"/refund/2"] != 1 || len(rf.seen) != 2 {
		t.Errorf("idempotency keys seen = %v, want attempts 1 and 2 once each", rf.seen)
	}
	info, err := e.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s := info.Steps[2]; s.Attempts != 2 || !strings.Contains(s.LastError, "") {
		t.Errorf("refund step = %+v, want 2 attempts", s)
	}
	if got, want := string(info.Steps[3].Output), `"REFUND RF_1 FOR RUN `+strings.ToUpper(id)+`"`; got != want {
		t.Errorf("agent step output = %s, want %s", got, want)
	}
	if got := notes.Got(); len(got) != 1 || got[0] != id+": Your refund rf_1 is on its way." {
		t.Errorf("notes = %q", got)
	}
}
