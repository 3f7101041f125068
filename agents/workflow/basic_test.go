package workflow_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/workflow"
)

func TestSequential(t *testing.T) {
	a := echo("drafter")
	b := &fake{name: "editor", reply: func(in agents.Input) (string, error) {
		return "edited: " + in.Text(), nil
	}}
	seq := must(t)(workflow.Sequential("seq", a, b))
	in := agents.UserInput("write a poem")
	res := run(seq, in)
	if res.err != nil {
		t.Fatal(res.err)
	}
	equal(t, "events", res.events, []string{
		"agent_started seq",
		"agent_started drafter",
		"tool_call drafter: lookup",
		"finished drafter: drafter on write a poem",
		"agent_started editor",
		"tool_call editor: lookup",
		"text editor: edited: drafter on write a poem",
		"finished editor: edited: drafter on write a poem",
		"finished seq: edited: drafter on write a poem",
	})
	if res.answer != "edited: drafter on write a poem" {
		t.Errorf("answer %q", res.answer)
	}
	equal(t, "editor's input", msgs(b.calls()[0]), []string{"user: write a poem", "user(drafter): drafter on write a poem"})
	if len(in.Messages) != 1 {
		t.Errorf("input modified: %v", in.Messages)
	}
}

func TestSequentialStopsAtFailure(t *testing.T) {
	c := echo("c")
	seq := must(t)(workflow.Sequential("seq", echo("a"), failing("b", errBoom), c))
	res := run(seq, agents.UserInput("x"))
	if !errors.Is(res.err, errBoom) || !strings.Contains(res.err.Error(), "seq: b:") {
		t.Fatalf("err = %v", res.err)
	}
	if len(c.calls()) != 0 {
		t.Error("member after the failure ran")
	}
}

func TestConfigErrors(t *testing.T) {
	m := model(t, "x")
	for name, err := range map[string]error{
		"sequential empty":  second(workflow.Sequential("s")),
		"sequential nil":    second(workflow.Sequential("s", echo("a"), nil)),
		"parallel empty":    second(workflow.Parallel("p", nil)),
		"loop nil":          second(workflow.Loop("l", nil, workflow.LoopConfig{})),
		"router no model":   second(workflow.Router("r", nil, workflow.RouterConfig{}, workflow.Route{Name: "a", Target: echo("a")})),
		"router no routes":  second(workflow.Router("r", m, workflow.RouterConfig{})),
		"router dup":        second(workflow.Router("r", m, workflow.RouterConfig{}, workflow.Route{Name: "a", Target: echo("a")}, workflow.Route{Name: "A", Target: echo("b")})),
		"router fallback":   second(workflow.Router("r", m, workflow.RouterConfig{Fallback: "z"}, workflow.Route{Name: "a", Target: echo("a")})),
		"planner workers":   second(workflow.Planner("p", m, nil, workflow.PlannerConfig{})),
		"planner dup":       second(workflow.Planner("p", m, []workflow.Worker{{Agent: echo("a")}, {Agent: echo("a")}}, workflow.PlannerConfig{})),
		"supervisor model":  second(workflow.Supervisor("s", nil, []workflow.Worker{{Agent: echo("a")}}, workflow.SupervisorConfig{})),
		"supervisor colon":  second(workflow.Supervisor("s", m, []workflow.Worker{{Name: "a:b", Agent: echo("a")}}, workflow.SupervisorConfig{})),
		"graph empty":       second(workflow.NewGraph("g").Build()),
		"graph unknown":     second(workflow.NewGraph("g").AddNode("a", echo("a")).AddEdge("a", "b").Build()),
		"graph dup node":    second(workflow.NewGraph("g").AddNode("a", echo("a")).AddNode("a", echo("a")).Build()),
		"graph cond target": second(workflow.NewGraph("g").AddNode("a", echo("a")).AddConditionalEdge("a", func(string) string { return "" }).Build()),
	} {
		if !errors.Is(err, workflow.ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func second(_ agents.Runnable, err error) error { return err }

func TestParallelRunsConcurrentlyAndToleratesFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bar := newBarrier(2)
		a, b := echo("a"), echo("b")
		a.wait, b.wait = bar.wait, bar.wait
		par := must(t)(workflow.Parallel("par", nil, a, failing("c", errBoom), b))
		res := run(par, agents.UserInput("go"))
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.answer != "a on go\n\nb on go" {
			t.Errorf("answer %q", res.answer)
		}
		var texts, finished []string
		for _, e := range res.events {
			if strings.HasPrefix(e, "text ") {
				texts = append(texts, e)
			}
			if strings.HasPrefix(e, "finished ") {
				finished = append(finished, e)
			}
		}
		equal(t, "text events", texts, []string{"text par: a on go\n\nb on go"})
		if len(finished) != 3 || finished[2] != "finished par: a on go\n\nb on go" {
			t.Errorf("finished events %q", finished)
		}
	})
}

func TestParallelAllFail(t *testing.T) {
	errOther := errors.New("other")
	par := must(t)(workflow.Parallel("par", nil, failing("a", errBoom), failing("b", errOther)))
	res := run(par, agents.UserInput("x"))
	if !errors.Is(res.err, workflow.ErrAllFailed) || !errors.Is(res.err, errBoom) || !errors.Is(res.err, errOther) {
		t.Fatalf("err = %v", res.err)
	}
}

func TestParallelSynthesize(t *testing.T) {
	m := &recordingModel{ChatModel: model(t, "no rule matched",
		`(?s)Results:\n- a: ([^\n]*)\n- b: failed: ([^\n]*)\n`, "From a: $1; b broke ($2).")}
	par := must(t)(workflow.Parallel("par", workflow.Synthesize(m, "be brief"), fixed("a", "alpha"), failing("b", errBoom)))
	res := run(par, agents.UserInput("question"))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.answer != "From a: alpha; b broke (boom)." {
		t.Errorf("answer %q", res.answer)
	}
	reqs := m.requests()
	if len(reqs) != 1 || reqs[0].System != "be brief" || reqs[0].Messages[0].Content != "question" {
		t.Fatalf("synthesis requests %+v", reqs)
	}
}

func TestCancelStopsEveryMember(t *testing.T) {
	cause := errors.New("barge-in")
	for _, build := range []func(a, b agents.Runnable) (agents.Runnable, error){
		func(a, b agents.Runnable) (agents.Runnable, error) { return workflow.Parallel("w", nil, a, b) },
		func(a, b agents.Runnable) (agents.Runnable, error) { return workflow.Sequential("w", a, b) },
		func(a, b agents.Runnable) (agents.Runnable, error) {
			return workflow.NewGraph("w").AddNode("a", a).AddNode("b", b).Build()
		},
		func(a, b agents.Runnable) (agents.Runnable, error) {
			return workflow.Loop("w", a, workflow.LoopConfig{})
		},
	} {
		synctest.Test(t, func(t *testing.T) {
			a, b := echo("a"), echo("b")
			a.wait, b.wait = blockUntilCancelled, blockUntilCancelled
			w := must(t)(build(a, b))
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(time.Second, func() { cancel(cause) })
			_, err := agents.Collect(ctx, w, agents.UserInput("x"))
			if !errors.Is(err, cause) {
				t.Errorf("err = %v, want the cancellation cause", err)
			}
			// synctest fails the test if a goroutine is left behind.
		})
	}
}

func TestConsumerStopsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := echo("a"), echo("b")
		a.wait = blockUntilCancelled
		par := must(t)(workflow.Parallel("par", nil, a, b))
		n := 0
		for ev, err := range par.Run(context.Background(), agents.UserInput("x")) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if ev.Kind == agents.EventAgentFinished && ev.Agent == "b" {
				break // a is still blocked: it must be cancelled, not leaked
			}
		}
		if n < 3 {
			t.Errorf("saw %d events", n)
		}
	})
}

func TestLoop(t *testing.T) {
	body := &fake{name: "refiner", reply: func(in agents.Input) (string, error) {
		return in.Text() + "+", nil
	}}
	var seen []int
	lp := must(t)(workflow.Loop("loop", body, workflow.LoopConfig{MaxIterations: 10, Until: func(i int, out string) bool {
		seen = append(seen, i)
		return strings.Count(out, "+") == 3
	}}))
	res := run(lp, agents.UserInput("draft"))
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.answer != "draft+++" {
		t.Errorf("answer %q", res.answer)
	}
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3 {
		t.Errorf("Until saw iterations %v", seen)
	}
	calls := body.calls()
	equal(t, "third input", msgs(calls[2]), []string{"user: draft", "user(refiner): draft++"})

	bounded := must(t)(workflow.Loop("loop", echo("e"), workflow.LoopConfig{MaxIterations: 2}))
	res = run(bounded, agents.UserInput("x"))
	if res.err != nil || res.answer != "e on e on x" {
		t.Errorf("bounded loop: %q, %v", res.answer, res.err)
	}
	def := echo("d")
	run(must(t)(workflow.Loop("loop", def, workflow.LoopConfig{})), agents.UserInput("x"))
	if len(def.calls()) != workflow.DefaultMaxIterations {
		t.Errorf("default loop ran %d times", len(def.calls()))
	}
}
