package workflow_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/workflow"
)

func TestRouter(t *testing.T) {
	weather, clock, help := echo("weather-agent"), echo("clock-agent"), echo("help-agent")
	routes := []workflow.Route{
		{Name: "weather", Description: "forecasts", Target: weather},
		{Name: "clock", Description: "the time anywhere", Target: clock},
		{Name: "help", Description: "anything else", Target: help},
	}
	m := &recordingModel{ChatModel: model(t, "I am not sure.",
		`rain`, "weather",
		`time`, "I would pick **Clock**.",
		`sunny`, "  'WEATHER'.\n")}
	r := must(t)(workflow.Router("router", m, workflow.RouterConfig{Fallback: "help"}, routes...))
	for _, tc := range []struct{ q, target string }{
		{"will it rain", "weather-agent"},
		{"what time is it", "clock-agent"},
		{"is it sunny", "weather-agent"},
		{"tell me a joke", "help-agent"},
	} {
		res := run(r, agents.UserInput(tc.q))
		if res.err != nil {
			t.Fatal(res.err)
		}
		if want := tc.target + " on " + tc.q; res.answer != want {
			t.Errorf("%q: answer %q, want %q", tc.q, res.answer, want)
		}
		if res.events[1] != "handoff router -> "+tc.target {
			t.Errorf("%q: events %q", tc.q, res.events)
		}
	}
	req := m.requests()[0]
	for _, want := range []string{"- weather: forecasts", "- clock: the time anywhere", "route's name only"} {
		if !strings.Contains(req.System, want) {
			t.Errorf("routing prompt lacks %q:\n%s", want, req.System)
		}
	}
	if len(req.Messages) != 1 || req.Messages[0].Content != "will it rain" {
		t.Errorf("routing messages %+v", req.Messages)
	}

	strict := must(t)(workflow.Router("router", m, workflow.RouterConfig{}, routes...))
	if res := run(strict, agents.UserInput("tell me a joke")); !errors.Is(res.err, workflow.ErrNoRoute) {
		t.Errorf("no fallback: err = %v", res.err)
	}
}

func TestMatchRoute(t *testing.T) {
	names := []string{"weather", "clock", "time-zone", "Support"}
	for _, tc := range []struct {
		answer string
		want   int
	}{
		{"weather", 0},
		{"clock\n", 1},
		{"`time-zone`", 2},
		{"SUPPORT.", 3},
		{"support", 3},
		{"The best route is clock, not weather.", 1},
		{"weatherman", -1},
		{"time", -1},
		{"", -1},
		{"route: time-zone", 2},
	} {
		if got := workflow.MatchRoute(tc.answer, names); got != tc.want {
			t.Errorf("MatchRoute(%q) = %d, want %d", tc.answer, got, tc.want)
		}
	}
}

func FuzzMatchRoute(f *testing.F) {
	for _, s := range []string{"weather", "I pick CLOCK!", "é clock", "weather-clock", ""} {
		f.Add(s)
	}
	names := []string{"weather", "clock", "éa"}
	f.Fuzz(func(t *testing.T, answer string) {
		got := workflow.MatchRoute(answer, names)
		if got < -1 || got >= len(names) {
			t.Fatalf("MatchRoute(%q) = %d", answer, got)
		}
		if got >= 0 && !strings.Contains(strings.ToLower(answer), strings.ToLower(names[got])) {
			t.Fatalf("MatchRoute(%q) chose %q, not in the answer", answer, names[got])
		}
	})
}

func TestParseAssignments(t *testing.T) {
	workers := []string{"weather", "Clock"}
	text := "Here is the plan:\n" +
		"1. weather: forecast for Paris\n" +
		"2) clock: time in Tokyo\n" +
		"- **Weather**: rain tomorrow?\n" +
		"Step 4: CLOCK: time: in Lima\n" +
		"5. chef: cook\n" +
		"weather:\n" +
		"* `clock`: now\n"
	got, skipped := workflow.ParseAssignments(text, workers)
	want := []workflow.Assignment{
		{"weather", "forecast for Paris"},
		{"Clock", "time in Tokyo"},
		{"weather", "rain tomorrow?"},
		{"Clock", "time: in Lima"},
		{"Clock", "now"},
	}
	if len(got) != len(want) || skipped != 3 {
		t.Fatalf("got %+v (%d skipped)", got, skipped)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func FuzzParseAssignments(f *testing.F) {
	f.Add("1. weather: x\n2) clock: y")
	f.Add("Step 3: **clock**: z\n- nope: w")
	f.Add("step\n12\n.:")
	workers := []string{"weather", "clock"}
	f.Fuzz(func(t *testing.T, text string) {
		steps, skipped := workflow.ParseAssignments(text, workers)
		if skipped < 0 || len(steps)+skipped > strings.Count(text, "\n")+1 {
			t.Fatalf("%d steps, %d skipped for %d lines", len(steps), skipped, strings.Count(text, "\n")+1)
		}
		for _, s := range steps {
			if s.Worker != "weather" && s.Worker != "clock" {
				t.Fatalf("unknown worker %q", s.Worker)
			}
			if s.Task == "" || strings.Contains(s.Task, "\n") {
				t.Fatalf("bad task %q", s.Task)
			}
		}
	})
}

// The compound question of the brief: two workers answer in parallel (the
// barrier proves they overlap) and the model synthesizes one answer.
func TestSupervisorParallelCompoundQuestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bar := newBarrier(2)
		weather := fixed("weather", "Sunny, 21 degrees.")
		clock := fixed("clock", "It is 9 pm.")
		weather.wait, clock.wait = bar.wait, bar.wait
		m := &recordingModel{ChatModel: model(t, "I cannot help.",
			`(?s)Results:\n- weather \(([^)]*)\): ([^\n]*)\n- clock \(([^)]*)\): ([^\n]*)\n`, "Paris: $2 Tokyo: $4",
			`weather in (\w+) and the time in (\w+)`, "1. weather: weather in $1\n2. clock: time in $2")}
		sup := must(t)(workflow.Supervisor("boss", m, []workflow.Worker{
			{Description: "current weather for a city", Agent: weather},
			{Description: "local time in a city", Agent: clock},
		}, workflow.SupervisorConfig{Parallel: true}))
		q := "what is the weather in Paris and the time in Tokyo"
		res := run(sup, agents.UserInput(q))
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.answer != "Paris: Sunny, 21 degrees. Tokyo: It is 9 pm." {
			t.Errorf("answer %q", res.answer)
		}
		equal(t, "weather's input", msgs(weather.calls()[0]), []string{"user: " + q, "user: weather in Paris"})
		equal(t, "clock's input", msgs(clock.calls()[0]), []string{"user: " + q, "user: time in Tokyo"})
		reqs := m.requests()
		if len(reqs) != 2 || !strings.Contains(reqs[0].System, "- weather: current weather for a city") {
			t.Fatalf("requests %+v", reqs)
		}
		for _, e := range res.events {
			if strings.HasPrefix(e, "text ") && !strings.HasPrefix(e, "text boss: ") {
				t.Errorf("a worker's text was forwarded: %q", e)
			}
		}
	})
}

func TestSupervisorSequentialAndDirect(t *testing.T) {
	research := fixed("research", "Fact: water boils at 100 C.")
	writer := &fake{name: "writer", reply: func(in agents.Input) (string, error) {
		return "Wrote from " + in.Messages[len(in.Messages)-2].Content, nil
	}}
	m := model(t, "Hello there.",
		`(?s)Results:.*- writer \([^)]*\): ([^\n]*)`, "$1",
		`boil`, "research: find the boiling point\nwriter: write a sentence\nchef: cook")
	sup := must(t)(workflow.Supervisor("boss", m, []workflow.Worker{{Agent: research}, {Agent: writer}}, workflow.SupervisorConfig{}))
	res := run(sup, agents.UserInput("when does water boil"))
	if res.err != nil || res.answer != "Wrote from Fact: water boils at 100 C." {
		t.Fatalf("answer %q, %v", res.answer, res.err)
	}
	equal(t, "writer's input", msgs(writer.calls()[0]), []string{
		"user: when does water boil", "user(research): Fact: water boils at 100 C.", "user: write a sentence"})

	res = run(sup, agents.UserInput("hi"))
	if res.err != nil || res.answer != "Hello there." || len(research.calls()) != 1 {
		t.Fatalf("direct answer %q, %v", res.answer, res.err)
	}

	bad := must(t)(workflow.Supervisor("boss", m, []workflow.Worker{{Agent: failing("research", errBoom)}, {Agent: failing("writer", errBoom)}}, workflow.SupervisorConfig{Parallel: true, MaxWorkers: 1}))
	if res := run(bad, agents.UserInput("boil")); !errors.Is(res.err, workflow.ErrAllFailed) {
		t.Errorf("all failed: %v", res.err)
	}
}

func TestPlannerReplansAfterFailure(t *testing.T) {
	search := &fake{name: "search", reply: func(in agents.Input) (string, error) {
		return "found " + in.Text(), nil
	}}
	tries := 0
	writer := &fake{name: "writer", reply: func(in agents.Input) (string, error) {
		tries++
		if tries == 1 {
			return "", errBoom
		}
		var seen []string
		for _, m := range in.Messages {
			if m.Name == "search" {
				seen = append(seen, m.Content)
			}
		}
		return "summary of " + strings.Join(seen, " & "), nil
	}}
	m := &recordingModel{ChatModel: model(t, "nothing",
		`Step 2 \(writer: summarize\) failed: boom`, "1. writer: summarize again",
		`Results:`, "Synthesized.",
		`tell me about go`, "1. search: go language\n2. writer: summarize")}
	p := must(t)(workflow.Planner("planner", m, []workflow.Worker{{Agent: search}, {Agent: writer}}, workflow.PlannerConfig{}))
	res := run(p, agents.UserInput("tell me about go"))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.answer != "summary of found go language" {
		t.Errorf("answer %q", res.answer)
	}
	equal(t, "writer's second input", msgs(writer.calls()[1]), []string{
		"user: tell me about go", "user(search): found go language", "user: summarize again"})
	reqs := m.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests", len(reqs))
	}
	replan := reqs[1].Messages
	if replan[1].Role != agents.RoleAssistant || !strings.Contains(replan[2].Content, "- search (go language): found go language") {
		t.Errorf("re-plan request %+v", replan)
	}

	tries = 0
	syn := must(t)(workflow.Planner("planner", m, []workflow.Worker{{Agent: search}, {Agent: writer}}, workflow.PlannerConfig{Synthesize: true}))
	if res := run(syn, agents.UserInput("tell me about go")); res.err != nil || res.answer != "Synthesized." {
		t.Errorf("synthesized: %q, %v", res.answer, res.err)
	}

	tries = 0
	noReplan := must(t)(workflow.Planner("planner", m, []workflow.Worker{{Agent: search}, {Agent: writer}}, workflow.PlannerConfig{MaxReplans: -1}))
	if res := run(noReplan, agents.UserInput("tell me about go")); !errors.Is(res.err, workflow.ErrStepFailed) || !errors.Is(res.err, errBoom) {
		t.Errorf("no re-plan: %v", res.err)
	}
	if res := run(p, agents.UserInput("something else")); !errors.Is(res.err, workflow.ErrBadPlan) {
		t.Errorf("bad plan: %v", res.err)
	}
}

func TestGraph(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bar := newBarrier(2)
		left, right := echo("left"), echo("right")
		left.wait, right.wait = bar.wait, bar.wait
		join := &fake{name: "join", reply: func(in agents.Input) (string, error) {
			return "joined " + strings.Join(msgs(in)[1:], " | "), nil
		}}
		g := must(t)(workflow.NewGraph("g").
			AddNode("start", fixed("start", "begun")).
			AddNode("left", left).AddNode("right", right).AddNode("join", join).
			AddEdge("start", "left").AddEdge("start", "right").
			AddEdge("right", "join").AddEdge("left", "join").
			Build())
		res := run(g, agents.UserInput("q"))
		if res.err != nil {
			t.Fatal(res.err)
		}
		if want := "joined user(left): left on begun | user(right): right on begun"; res.answer != want {
			t.Errorf("answer %q, want %q", res.answer, want)
		}
	})
}

func TestGraphConditional(t *testing.T) {
	pos, neg, tail := echo("pos"), echo("neg"), echo("tail")
	g := must(t)(workflow.NewGraph("g").
		AddNode("classify", &fake{name: "c", reply: func(in agents.Input) (string, error) { return in.Text(), nil }}).
		AddNode("pos", pos).AddNode("neg", neg).AddNode("tail", tail).
		AddConditionalEdge("classify", func(out string) string {
			switch out {
			case "good":
				return "pos"
			case "bad":
				return "neg"
			case "weird":
				return "tail"
			}
			return ""
		}, "pos", "neg").
		AddEdge("neg", "tail").
		Build())
	for _, tc := range []struct{ in, answer string }{
		{"good", "pos on good"},
		{"bad", "tail on neg on bad"},
		{"meh", "meh"},
	} {
		res := run(g, agents.UserInput(tc.in))
		if res.err != nil || res.answer != tc.answer {
			t.Errorf("%s: answer %q, %v; want %q", tc.in, res.answer, res.err, tc.answer)
		}
	}
	if len(pos.calls()) != 1 || len(neg.calls()) != 1 || len(tail.calls()) != 1 {
		t.Errorf("calls: pos %d neg %d tail %d", len(pos.calls()), len(neg.calls()), len(tail.calls()))
	}
	if res := run(g, agents.UserInput("weird")); !errors.Is(res.err, workflow.ErrBadBranch) {
		t.Errorf("undeclared branch: %v", res.err)
	}
	_, err := workflow.NewGraph("g").AddNode("a", echo("a")).AddNode("b", echo("b")).AddNode("c", echo("c")).
		AddEdge("a", "b").AddConditionalEdge("b", func(string) string { return "" }, "c").AddEdge("c", "a").Build()
	if !errors.Is(err, workflow.ErrCycle) {
		t.Errorf("cycle: %v", err)
	}
}
