package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
	"github.com/voiced-dev/voiced/pipeline"
)

// startConfigured runs voiced with cfg and extra tools on loopback and
// returns its WebSocket URL.
func startConfigured(t *testing.T, cfg config.Config, tools ...agents.Tool) string {
	return testenv.Start(t, cfg, nil, tools...).WebSocket()
}

// TestE2ECustomerSupportHandoff types a billing complaint to the
// customer-support example: triage hands off to billing, billing looks up
// the invoice and answers out loud.
func TestE2ECustomerSupportHandoff(t *testing.T) {
	cfg, err := config.Load("../examples/customer-support.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, startConfigured(t, cfg), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	since := time.Now()
	c.sendJSON(map[string]string{"type": "text", "text": "I was charged twice on my invoice"})
	spoken := func() string {
		var said []string
		evs, _ := c.snapshot()
		for _, e := range evs {
			if e.Type == "bot_text" && !e.At.Before(since) {
				said = append(said, e.Text)
			}
		}
		return strings.Join(said, " ")
	}
	if !c.silenceUntil(20*time.Second, func() bool {
		_, audible := c.firstAudible(since)
		return audible && strings.Contains(spoken(), "Anything else")
	}) {
		evs, _ := c.snapshot()
		t.Fatalf("no spoken answer; events %s", types(evs))
	}
	h, ok := c.first("handoff", since)
	if !ok || h.From != "triage" || h.To != "billing" {
		t.Fatalf("handoff event %+v (found %v)", h, ok)
	}
	call, ok := c.first("tool_call", since)
	if !ok || call.Name != "lookup_invoice" || call.Agent != "billing" {
		t.Fatalf("tool_call event %+v", call)
	}
	answer := spoken()
	if !strings.Contains(answer, "Invoice 1001") || !strings.Contains(answer, "refund") {
		t.Fatalf("billing said %q", answer)
	}
	if _, ok := c.firstAudible(h.At); !ok {
		t.Fatal("no audible answer after the handoff")
	}
	t.Logf("billing answered: %q", answer)
}

// blockingTool blocks until its context ends and records why.
type blockingTool struct {
	mu      sync.Mutex
	started chan struct{}
	causes  []error
}

func (b *blockingTool) Spec() agents.ToolSpec {
	return agents.ToolSpec{Name: "check_status", Description: "Check the order status (slow).", Parameters: []byte(`{"type":"object","properties":{},"additionalProperties":false}`)}
}

func (b *blockingTool) Call(ctx context.Context, _ json.RawMessage) (string, error) {
	close(b.started)
	<-ctx.Done()
	b.mu.Lock()
	b.causes = append(b.causes, context.Cause(ctx))
	b.mu.Unlock()
	return "", context.Cause(ctx)
}

// TestE2EBargeInCancelsTool speaks over an agent while its tool runs: the
// tool's context is cancelled with the interruption.
func TestE2EBargeInCancelsTool(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[[agents]]
name = "orders"
tools = ["check_status"]
  [[agents.rules]]
  after_tool = '.*'
  reply = "Done."
  [[agents.rules]]
  match = 'status'
  reply = "Let me check."
  tool = "check_status"
  [[agents.rules]]
  match = '.*'
  reply = "Okay, never mind then."
`))
	if err != nil {
		t.Fatal(err)
	}
	tool := &blockingTool{started: make(chan struct{})}
	c := dial(t, startConfigured(t, cfg, tool), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	c.sendJSON(map[string]string{"type": "text", "text": "what is the status of my order"})
	select {
	case <-tool.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the tool was never called")
	}
	c.silence(300 * time.Millisecond)
	barge := time.Now()
	c.stream(speech(t, "never mind"))
	if !c.silenceUntil(10*time.Second, func() bool {
		tool.mu.Lock()
		defer tool.mu.Unlock()
		return len(tool.causes) > 0
	}) {
		t.Fatal("the tool was not cancelled by the barge-in")
	}
	tool.mu.Lock()
	cause := tool.causes[0]
	tool.mu.Unlock()
	if !errors.Is(cause, pipeline.ErrInterrupted) {
		t.Fatalf("tool cancelled with %v, want pipeline.ErrInterrupted", cause)
	}
	if !c.silenceUntil(10*time.Second, func() bool { return c.count("bot_stopped_speaking", barge) > 0 }) {
		t.Fatal("no answer after the barge-in")
	}
	if _, ok := c.first("user_started_speaking", barge); !ok {
		t.Fatal("no user_started_speaking for the barge-in")
	}
}

// TestE2EReturnsWorkflow starts the returns example's durable workflow from
// a typed request; when the workflow approves the return it speaks to the
// session.
func TestE2EReturnsWorkflow(t *testing.T) {
	cfg, err := config.Load("../examples/returns.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Durable.Path = t.TempDir()
	cfg.Durable.AutoApprove = time.Second
	c := dial(t, startConfigured(t, cfg), 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	since := time.Now()
	c.sendJSON(map[string]string{"type": "text", "text": "I want to return order 1234"})
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
	if !c.silenceUntil(30*time.Second, func() bool { return strings.Contains(said(), "order 1234 is approved") }) {
		evs, _ := c.snapshot()
		t.Fatalf("the workflow never spoke; said %q; events %s", said(), types(evs))
	}
	if call, ok := c.first("tool_call", since); !ok || call.Name != "start_returns" {
		t.Fatalf("tool_call %+v", call)
	}
	t.Logf("said: %q", said())
}

// TestE2EMetricsEndpoint answers one typed turn and reads /metrics: the
// Prometheus text has the turn's latency and the session.
func TestE2EMetricsEndpoint(t *testing.T) {
	url := startConfigured(t, config.Default())
	c := dial(t, url, 16000)
	if !c.silenceUntil(5*time.Second, func() bool { _, ok := c.first("ready", time.Time{}); return ok }) {
		t.Fatal("no ready event")
	}
	since := time.Now()
	c.sendJSON(map[string]string{"type": "text", "text": "hello"})
	if !c.silenceUntil(10*time.Second, func() bool { return c.count("metrics", since) > 0 }) {
		t.Fatal("no metrics event")
	}
	resp, err := http.Get("http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/ws") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{"voiced_latency_voice_to_voice_seconds_count 1", "voiced_sessions_total", `voiced_sessions_active{voiced_transport="websocket"} 1`, `gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat"`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}
