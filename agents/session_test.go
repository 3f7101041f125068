package agents_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
)

// An LLM agent records in the session's state the tools that returned
// without error, and only those.
func TestSessionStateRecordsToolsThatRan(t *testing.T) {
	model, err := scripted.New(scripted.Config{Rules: []scripted.Rule{
		{AfterTool: ".*", Reply: "done"},
		{Match: "both", Calls: []scripted.Call{{Tool: "ok", Args: "{}"}, {Tool: "bad", Args: "{}"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ok := agents.MustTool("ok", "", func(context.Context, struct{}) (string, error) { return "fine", nil })
	bad := agents.MustTool("bad", "", func(context.Context, struct{}) (string, error) { return "", errors.New("no") })
	a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model, Tools: []agents.Tool{ok, bad}})
	if err != nil {
		t.Fatal(err)
	}
	st := agents.NewSessionState(map[string]string{"sip.to": "800"})
	ctx := agents.WithSession(context.Background(), agents.SessionInfo{ID: "s", State: st})
	if _, err := agents.Collect(ctx, a, agents.UserInput("both")); err != nil {
		t.Fatal(err)
	}
	if !st.ToolRan("ok") || st.ToolRan("bad") {
		t.Fatalf("ToolRan ok=%v bad=%v", st.ToolRan("ok"), st.ToolRan("bad"))
	}
	st.Set("dept", "billing")
	if md := st.Metadata(); md["sip.to"] != "800" || md["dept"] != "billing" {
		t.Fatalf("metadata %v", md)
	}
}

func TestSessionStateValuesAndClose(t *testing.T) {
	st := agents.NewSessionState(nil)
	type key struct{}
	made := 0
	for range 2 {
		if v := st.Value(key{}, func() any { made++; return made }); v != 1 {
			t.Fatalf("Value = %v", v)
		}
	}
	var order []string
	st.OnClose(func() { order = append(order, "first") })
	st.OnClose(func() { order = append(order, "second") })
	st.Close()
	st.Close()
	st.OnClose(func() { order = append(order, "late") })
	if !slices.Equal(order, []string{"second", "first", "late"}) {
		t.Fatalf("close order %v", order)
	}
	if v := st.Value(key{}, func() any { t.Fatal("made after Close"); return nil }); v != nil {
		t.Fatalf("Value after Close = %v", v)
	}
}

func TestJoinHooks(t *testing.T) {
	var got []string
	note := func(s string) { got = append(got, s) }
	veto := errors.New("veto")
	h := agents.JoinHooks(
		agents.Hooks{
			BeforeTool: func(context.Context, string, agents.ToolCall) error { note("1 before_tool"); return nil },
			OnHandoff:  func(_ context.Context, from, to string) { note("1 handoff " + from + ">" + to) },
		},
		agents.Hooks{},
		agents.Hooks{
			BeforeTool: func(context.Context, string, agents.ToolCall) error { note("3 before_tool"); return veto },
			BeforeRun:  func(context.Context, string, agents.Input) error { note("3 before_run"); return nil },
		},
		agents.Hooks{
			BeforeTool: func(context.Context, string, agents.ToolCall) error { note("4 before_tool"); return nil },
			AfterRun:   func(context.Context, string, error) { note("4 after_run") },
		},
	)
	ctx := context.Background()
	if err := h.BeforeTool(ctx, "a", agents.ToolCall{}); !errors.Is(err, veto) {
		t.Fatalf("BeforeTool = %v", err)
	}
	h.BeforeRun(ctx, "a", agents.Input{})
	h.AfterRun(ctx, "a", nil)
	h.OnHandoff(ctx, "a", "b")
	if h.AfterTool != nil {
		t.Fatal("AfterTool set though no hook has one")
	}
	want := "1 before_tool,3 before_tool,3 before_run,4 after_run,1 handoff a>b"
	if strings.Join(got, ",") != want {
		t.Fatalf("calls %s, want %s", strings.Join(got, ","), want)
	}
}
