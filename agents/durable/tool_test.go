package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/bolt"
	"github.com/voiced-dev/voiced/agents/durable/durabletest"
)

func TestStartTool(t *testing.T) {
	durabletest.CheckGoroutines(t)
	ctx := context.Background()
	clk := durabletest.NewFakeClock()
	var n durabletest.Notes
	s, err := bolt.Open(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type greeting struct {
		Name string `json:"name"`
	}
	wf := durable.Workflow{
		Name:        "greet",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`),
		Steps: []durable.Step{{Name: "greet", Run: durable.Func(func(ctx context.Context, r *durable.RunContext) (string, error) {
			var g greeting
			if err := r.DecodeInput(&g); err != nil {
				return "", durable.Permanent(err)
			}
			if err := r.Sleep(ctx, time.Minute); err != nil {
				return "", err
			}
			r.Notify("Hello " + g.Name + ".")
			return "greeted", nil
		})}},
	}
	e := durabletest.NewEngine(t, s, clk, n.Add, wf)
	tool := durable.StartTool(e, "greet", "Greet someone in a minute.")
	var started []string
	tool.OnStart = func(_ context.Context, id string) { started = append(started, id) }
	spec := tool.Spec()
	if spec.Name != "start_greet" || spec.Description != "Greet someone in a minute." || string(spec.Parameters) != string(wf.InputSchema) {
		t.Errorf("spec = %+v", spec)
	}
	if s := durable.StartTool(e, "my flow!", "x").Spec(); s.Name != "start_my_flow_" || string(s.Parameters) != `{"type":"object"}` {
		t.Errorf("spec of an unregistered workflow = %+v", s)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{`, `null`} {
		if _, err := tool.Call(ctx, json.RawMessage(bad)); !errors.Is(err, durable.ErrInvalidInput) {
			t.Errorf("Call(%s) = %v, want ErrInvalidInput", bad, err)
		}
	}
	text, err := tool.Call(ctx, json.RawMessage(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RunID    string `json:"run_id"`
		Workflow string `json:"workflow"`
		Status   string `json:"status"`
	}
	if err := json.NewDecoder(strings.NewReader(text)).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Workflow != "greet" || got.Status != "running" || len(started) != 1 || started[0] == "" || got.RunID != started[0] {
		t.Fatalf("Call = %s (started %q)", text, started)
	}
	clk.WaitTimer(t, clk.Now().Add(time.Minute))
	clk.Advance(time.Minute)
	durabletest.MustWait(t, e, started[0])
	if notes := n.Got(); len(notes) != 1 || notes[0] != started[0]+": Hello Ada." {
		t.Errorf("notifications = %q", notes)
	}
}
