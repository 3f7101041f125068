package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/scripted"
)

// recorder passes requests on to a model and keeps a deep copy of each.
type recorder struct {
	m    agents.ChatModel
	mu   sync.Mutex
	reqs []agents.Request
}

func (r *recorder) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	c := req
	c.Messages = nil
	for _, m := range req.Messages {
		m.ToolCalls = slices.Clone(m.ToolCalls)
		c.Messages = append(c.Messages, m)
	}
	c.Tools = slices.Clone(req.Tools)
	r.mu.Lock()
	r.reqs = append(r.reqs, c)
	r.mu.Unlock()
	return r.m.Stream(ctx, req)
}

func (r *recorder) requests() []agents.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// stepsModel answers its n-th call with steps[n] (the last one again once
// they run out).
func stepsModel(steps ...[]agents.Event) agents.ChatModel {
	var mu sync.Mutex
	n := 0
	return agents.ModelFunc(func(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
		mu.Lock()
		evs := steps[min(n, len(steps)-1)]
		n++
		mu.Unlock()
		return func(yield func(agents.Event, error) bool) {
			for _, ev := range evs {
				if !yield(ev, nil) {
					return
				}
			}
		}
	})
}

func callEv(id, name, args string) agents.Event {
	return agents.Event{ToolCall: &agents.ToolCall{ID: id, Name: name, Arguments: args}}
}

// trace runs r and describes its events one per line; consecutive text
// deltas of one agent are joined.
func trace(ctx context.Context, r agents.Runnable, in agents.Input) ([]string, error) {
	var lines []string
	textOf := ""
	for ev, err := range r.Run(ctx, in) {
		if err != nil {
			for i := range lines {
				lines[i] = strings.TrimSpace(lines[i])
			}
			return lines, err
		}
		var line string
		switch ev.Kind {
		case agents.EventText:
			if textOf == ev.Agent && len(lines) > 0 {
				lines[len(lines)-1] += ev.Text
				continue
			}
			line = ev.Text
		case agents.EventToolCall:
			line = ev.ToolCall.Name + " " + ev.ToolCall.Arguments
		case agents.EventToolResult:
			line = ev.ToolResult.Name + " = " + ev.ToolResult.Content
		case agents.EventHandoff:
			line = ev.Handoff.From + " -> " + ev.Handoff.To
		}
		textOf = ""
		if ev.Kind == agents.EventText {
			textOf = ev.Agent
		}
		lines = append(lines, ev.Agent+" "+ev.Kind.String()+" "+line)
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return lines, nil
}

func checkLines(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

type weatherArgs struct {
	City string `json:"city" jsonschema:"description=City name"`
}

func TestAgentToolLoop(t *testing.T) {
	sm, err := scripted.New(scripted.Config{Rules: []scripted.Rule{
		{Match: `weather in (\w+)`, Reply: "Checking.", Tool: "get_weather", Args: `{"city":"$1"}`},
		{AfterTool: `(\w+) degrees`, Reply: "It is $1 degrees in {previous}."},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{m: sm}
	var got []weatherArgs
	weather := agents.MustTool("get_weather", "Current weather", func(_ context.Context, a weatherArgs) (string, error) {
		got = append(got, a)
		return "21 degrees and sunny", nil
	})
	a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "Concierge", Instructions: "Be brief.", Model: rec, Tools: []agents.Tool{weather}})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := trace(context.Background(), a, agents.UserInput("what's the weather in Paris"))
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, []string{
		"Concierge agent_started",
		"Concierge text Checking.",
		`Concierge tool_call get_weather {"city":"Paris"}`,
		"Concierge tool_result get_weather = 21 degrees and sunny",
		"Concierge text  It is 21 degrees in nothing yet.", // spaced from the first step
		"Concierge agent_finished",
	})
	if len(got) != 1 || got[0].City != "Paris" {
		t.Fatalf("tool got %+v", got)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.System != "Be brief." || len(r.Tools) != 1 || r.Tools[0].Name != "get_weather" {
			t.Fatalf("request system %q tools %+v", r.System, r.Tools)
		}
	}
	m := reqs[1].Messages
	if len(m) != 3 {
		t.Fatalf("second request has %d messages: %+v", len(m), m)
	}
	if m[1].Role != agents.RoleAssistant || m[1].Name != "Concierge" || m[1].Content != "Checking." ||
		len(m[1].ToolCalls) != 1 || m[1].ToolCalls[0].Name != "get_weather" {
		t.Fatalf("assistant message %+v", m[1])
	}
	if m[2].Role != agents.RoleTool || m[2].ToolCallID != m[1].ToolCalls[0].ID || m[2].Name != "get_weather" ||
		m[2].Content != "21 degrees and sunny" {
		t.Fatalf("tool message %+v", m[2])
	}
}

func TestAgentFeedsBackToolErrors(t *testing.T) {
	called := 0
	weather := agents.MustTool("get_weather", "", func(_ context.Context, a weatherArgs) (string, error) {
		called++
		return "", errors.New("station offline")
	})
	boom := agents.MustTool("boom", "", func(context.Context, struct{}) (string, error) { panic("kaboom") })
	rec := &recorder{m: stepsModel(
		[]agents.Event{
			callEv("c1", "get_weather", `{"town":"Paris"}`),
			callEv("c2", "get_weather", `{"city":"Paris"}`),
			callEv("c3", "nope", `{}`),
			callEv("c4", "boom", ``),
		},
		[]agents.Event{{Text: "Sorry."}},
	)}
	a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: rec, Tools: []agents.Tool{weather, boom}})
	text, err := agents.Collect(context.Background(), a, agents.UserInput("hi"))
	if err != nil || text != "Sorry." {
		t.Fatalf("Collect = %q, %v", text, err)
	}
	if called != 1 {
		t.Fatalf("tool called %d times, want 1 (invalid arguments must not reach it)", called)
	}
	reqs := rec.requests()
	var results []string
	for _, m := range reqs[1].Messages {
		if m.Role == agents.RoleTool {
			results = append(results, m.ToolCallID+": "+m.Content)
		}
	}
	want := []string{
		"c1: error: invalid arguments: town: unknown field",
		"c2: error: station offline",
		`c3: error: unknown tool "nope"`,
		"c4: error: tool panicked: kaboom",
	}
	if !slices.Equal(results, want) {
		t.Fatalf("tool results fed back:\n  %s\nwant\n  %s", strings.Join(results, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestAgentRunsToolsInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each tool waits until both have started: run one after the other,
		// the first would wait forever and synctest would report a deadlock.
		var arrived sync.WaitGroup
		arrived.Add(2)
		barrier := func(ctx context.Context, _ struct{}) (string, error) {
			arrived.Done()
			arrived.Wait()
			return "ok", nil
		}
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{
			Name: "a",
			Model: stepsModel(
				[]agents.Event{callEv("1", "left", "{}"), callEv("2", "right", "{}")},
				[]agents.Event{{Text: "done"}},
			),
			Tools: []agents.Tool{agents.MustTool("left", "", barrier), agents.MustTool("right", "", barrier)},
		})
		lines, err := trace(context.Background(), a, agents.UserInput("go"))
		if err != nil {
			t.Fatal(err)
		}
		// Results come in completion order, which is free.
		slices.Sort(lines[3:5])
		checkLines(t, lines, []string{
			"a agent_started",
			"a tool_call left {}",
			"a tool_call right {}",
			"a tool_result left = ok",
			"a tool_result right = ok",
			"a text done",
			"a agent_finished",
		})
	})
}

func TestAgentMaxSteps(t *testing.T) {
	calls := 0
	count := agents.ModelFunc(func(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
		calls++
		return stepsModel([]agents.Event{callEv(fmt.Sprint(calls), "again", "{}")}).Stream(ctx, req)
	})
	again := agents.MustTool("again", "", func(context.Context, struct{}) (string, error) { return "more", nil })
	for _, tc := range []struct{ max, want int }{{0, agents.DefaultMaxSteps}, {3, 3}} {
		calls = 0
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: count, Tools: []agents.Tool{again}, MaxSteps: tc.max})
		_, err := agents.Collect(context.Background(), a, agents.UserInput("x"))
		if !errors.Is(err, agents.ErrMaxSteps) || calls != tc.want {
			t.Errorf("MaxSteps %d: %d model calls, err %v; want %d and ErrMaxSteps", tc.max, calls, err, tc.want)
		}
	}
}

func TestAgentCancelCancelsBlockedTool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bargeIn := errors.New("barge-in")
		ctx, cancel := context.WithCancelCause(context.Background())
		var seen error
		block := agents.MustTool("slow", "", func(ctx context.Context, _ struct{}) (string, error) {
			<-ctx.Done()
			seen = context.Cause(ctx)
			return "", ctx.Err()
		})
		var afterTool []agents.ToolResult
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{
			Name:  "a",
			Model: stepsModel([]agents.Event{callEv("1", "slow", "{}")}, []agents.Event{{Text: "never"}}),
			Tools: []agents.Tool{block},
			Hooks: agents.Hooks{AfterTool: func(_ context.Context, _ string, r agents.ToolResult) { afterTool = append(afterTool, r) }},
		})
		time.AfterFunc(time.Second, func() { cancel(bargeIn) })
		start := time.Now()
		lines, err := trace(ctx, a, agents.UserInput("x"))
		if !errors.Is(err, bargeIn) || time.Since(start) != time.Second {
			t.Fatalf("Run ended after %v with %v; want the cause after 1s", time.Since(start), err)
		}
		if !errors.Is(seen, bargeIn) {
			t.Fatalf("tool saw %v", seen)
		}
		checkLines(t, lines, []string{"a agent_started", "a tool_call slow {}"})
		if len(afterTool) != 1 {
			t.Fatalf("AfterTool called %d times", len(afterTool))
		}
		// synctest.Test fails if any goroutine of the run is left.
	})
}

func TestAgentCancelCancelsModelStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm, _ := scripted.New(scripted.Config{Fallback: "one two three four", TokenDelay: 100 * time.Millisecond})
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: sm})
		bargeIn := errors.New("barge-in")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(250*time.Millisecond, func() { cancel(bargeIn) })
		text, err := agents.Collect(ctx, a, agents.UserInput("x"))
		if !errors.Is(err, bargeIn) || text != "one two three " {
			t.Fatalf("Collect = %q, %v", text, err)
		}
	})
}

func TestAgentAgentToolTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := agents.MustTool("slow", "", func(ctx context.Context, _ struct{}) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		})
		own := agents.MustTool("own", "", func(ctx context.Context, _ struct{}) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}, agents.WithToolTimeout(500*time.Millisecond))
		rec := &recorder{m: stepsModel(
			[]agents.Event{callEv("1", "slow", "{}"), callEv("2", "own", "{}")},
			[]agents.Event{{Text: "ok"}},
		)}
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: rec, Tools: []agents.Tool{slow, own}, ToolTimeout: 2 * time.Second})
		start := time.Now()
		if _, err := agents.Collect(context.Background(), a, agents.UserInput("x")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("run took %v, want 2s", d)
		}
		var got []string
		for _, m := range rec.requests()[1].Messages[2:] {
			got = append(got, m.Content)
		}
		want := []string{"error: agents: tool timed out after 2s", "error: agents: tool timed out after 500ms"}
		if !slices.Equal(got, want) {
			t.Fatalf("results %q, want %q", got, want)
		}
	})
}

func TestAgentHooksInOrder(t *testing.T) {
	var mu sync.Mutex
	var log []string
	add := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	echo := agents.MustTool("echo", "", func(_ context.Context, a struct {
		S string `json:"s"`
	}) (string, error) {
		add("tool " + a.S)
		return a.S, nil
	})
	hooks := agents.Hooks{
		BeforeRun: func(_ context.Context, agent string, in agents.Input) error {
			add("before run " + agent + " " + in.Text())
			return nil
		},
		AfterRun: func(_ context.Context, agent string, err error) { add(fmt.Sprintf("after run %s %v", agent, err)) },
		BeforeTool: func(_ context.Context, agent string, c agents.ToolCall) error {
			add("before tool " + c.Name + " " + c.Arguments)
			if strings.Contains(c.Arguments, "secret") {
				return errors.New("not allowed")
			}
			return nil
		},
		AfterTool: func(_ context.Context, agent string, r agents.ToolResult) { add("after tool " + r.Content) },
	}
	rec := &recorder{m: stepsModel(
		[]agents.Event{callEv("1", "echo", `{"s":"hi"}`)},
		[]agents.Event{callEv("2", "echo", `{"s":"secret"}`)},
		[]agents.Event{{Text: "bye"}},
	)}
	a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: rec, Tools: []agents.Tool{echo}, Hooks: hooks})
	if _, err := agents.Collect(context.Background(), a, agents.UserInput("start")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"before run a start",
		`before tool echo {"s":"hi"}`,
		"tool hi",
		"after tool hi",
		`before tool echo {"s":"secret"}`,
		"after tool error: not allowed",
		"after run a <nil>",
	}
	if !slices.Equal(log, want) {
		t.Fatalf("hooks:\n  %s\nwant\n  %s", strings.Join(log, "\n  "), strings.Join(want, "\n  "))
	}

	// A BeforeRun error ends the run before the model is asked.
	stop := errors.New("closed for today")
	rec = &recorder{m: stepsModel([]agents.Event{{Text: "x"}})}
	b, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "b", Model: rec, Hooks: agents.Hooks{
		BeforeRun: func(context.Context, string, agents.Input) error { return stop },
	}})
	if _, err := agents.Collect(context.Background(), b, agents.UserInput("x")); !errors.Is(err, stop) || len(rec.requests()) != 0 {
		t.Fatalf("err %v after %d model calls", err, len(rec.requests()))
	}
}

func TestAgentConsumerStopsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm, _ := scripted.New(scripted.Config{Fallback: "a b c d", TokenDelay: time.Second})
		var after []error
		a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: sm, Hooks: agents.Hooks{
			AfterRun: func(_ context.Context, _ string, err error) { after = append(after, err) },
		}})
		n := 0
		for ev, err := range a.Run(context.Background(), agents.UserInput("x")) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind == agents.EventText {
				n++
				break
			}
		}
		if n != 1 || len(after) != 1 || after[0] != nil {
			t.Fatalf("texts %d, AfterRun %v", n, after)
		}
	})
}

func TestAgentConfigErrors(t *testing.T) {
	m := stepsModel([]agents.Event{{Text: "x"}})
	tool := agents.MustTool("t", "", func(context.Context, struct{}) (string, error) { return "", nil })
	other, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "Other", Model: m})
	for name, cfg := range map[string]agents.LLMAgentConfig{
		"no name":         {Model: m},
		"no model":        {Name: "a"},
		"repeated tool":   {Name: "a", Model: m, Tools: []agents.Tool{tool, tool}},
		"nil tool":        {Name: "a", Model: m, Tools: []agents.Tool{nil}},
		"no target":       {Name: "a", Model: m, Handoffs: []agents.HandoffSpec{{}}},
		"repeated target": {Name: "a", Model: m, Handoffs: []agents.HandoffSpec{{Target: other}, {Target: other}}},
	} {
		if _, err := agents.NewLLMAgent(cfg); !errors.Is(err, agents.ErrAgentConfig) {
			t.Errorf("%s: err %v, want ErrAgentConfig", name, err)
		}
	}
}

// A tool's JSON arguments reach it intact.
func TestAgentPassesRawArguments(t *testing.T) {
	var got json.RawMessage
	raw := rawTool{spec: agents.ToolSpec{Name: "raw"}, fn: func(args json.RawMessage) { got = args }}
	a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Tools: []agents.Tool{raw}, Model: stepsModel(
		[]agents.Event{callEv("1", "raw", `{"x": [1, 2]}`)}, []agents.Event{{Text: "ok"}})})
	if _, err := agents.Collect(context.Background(), a, agents.UserInput("x")); err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"x": [1, 2]}` {
		t.Fatalf("tool got %s", got)
	}
}

type rawTool struct {
	spec agents.ToolSpec
	fn   func(json.RawMessage)
}

func (r rawTool) Spec() agents.ToolSpec { return r.spec }
func (r rawTool) Call(_ context.Context, args json.RawMessage) (string, error) {
	r.fn(args)
	return "", nil
}

// BenchmarkAgentToolStep measures one turn of two model steps with a tool
// call in between (scripted model, no delays).
func BenchmarkAgentToolStep(b *testing.B) {
	sm, _ := scripted.New(scripted.Config{Rules: []scripted.Rule{
		{Match: `weather in (\w+)`, Tool: "get_weather", Args: `{"city":"$1"}`},
		{AfterTool: `(.*)`, Reply: "It is $1."},
	}})
	weather := agents.MustTool("get_weather", "", func(_ context.Context, a weatherArgs) (string, error) { return "mild", nil })
	a, _ := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: sm, Tools: []agents.Tool{weather}})
	in := agents.UserInput("weather in Paris")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := agents.Collect(context.Background(), a, in); err != nil {
			b.Fatal(err)
		}
	}
}
