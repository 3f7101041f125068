package config

import (
	"errors"
	"strings"
	"testing"
)

func TestWiringDecodes(t *testing.T) {
	t.Setenv("VOICED_TEST_AUDIT", "tok")
	c, err := Parse([]byte(`
[[hooks]]
url = "https://audit.example/x"
headers = { Authorization = "Bearer ${VOICED_TEST_AUDIT}" }
events = ["before_tool"]
agents = ["a"]
fail_closed = true
timeout = "500ms"

[orchestration]
mode = "graph"

  [[orchestration.graph.edges]]
  from = "a"
  to = "b"
  when = "yes"

[[agents]]
name = "a"
handoffs = ["b"]
publishes = ["orders.placed"]

  [agents.handoff.b]
  after_tools = ["lookup_invoice"]
  when_metadata = { "sip.to" = "^800" }
  last_messages = 3
  drop_tool_messages = true
  set_metadata = { routed = "yes" }
  call_tool = "open_ticket"
  tool_args = '{"summary": "x"}'

[[agents]]
name = "b"

  [[agents.subscribe]]
  topic = "orders.*"
  action = "background"
  speak = false
`))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Agents[0].Handoff["b"]
	if h.AfterTools[0] != "lookup_invoice" || h.WhenMetadata["sip.to"] != "^800" || h.LastMessages != 3 || !h.DropToolMessages ||
		h.SetMetadata["routed"] != "yes" || h.CallTool != "open_ticket" || c.Agents[0].Publishes[0] != "orders.placed" {
		t.Errorf("handoff %+v", h)
	}
	if s := c.Agents[1].Subscribe[0]; s.Topic != "orders.*" || s.Action != ActionBackground || s.Speaks() {
		t.Errorf("subscription %+v", s)
	}
	if e := c.Orchestration.Graph.Edges[0]; e.From != "a" || e.To != "b" || e.When != "yes" {
		t.Errorf("edge %+v", e)
	}
	if hk := c.Hooks[0]; hk.Timeout.Milliseconds() != 500 || !hk.FailClosed || hk.Events[0] != "before_tool" {
		t.Errorf("hook %+v", hk)
	}
}

// Every problem is reported, each with the line it is written on.
func TestWiringErrorsNameTheirLine(t *testing.T) {
	file := `[orchestration]
mode = "graph"

  [[orchestration.graph.edges]]
  from = "a"
  to = "b"

  [[orchestration.graph.edges]]
  from = "b"
  to = "nobody"

  [[orchestration.graph.edges]]
  from = "b"
  to = "a"
  when = "(unclosed"

[[agents]]
name = "a"
handoffs = ["b"]
publishes = ["orders.*"]

  [agents.handoff.c]
  last_messages = -1

  [agents.handoff.b]
  tool_args = '{"x": 1}'
  when_metadata = { "sip.to" = "[" }

[[agents]]
name = "b"

  [[agents.subscribe]]
  topic = "orders.*"
  action = "shout"

  [[agents.subscribe]]
  topic = "*.orders"
  speak = true

[[hooks]]
url = "ftp://audit.example/"
events = ["before_everything"]
agents = ["zed"]
headers = { X-Key = "${VOICED_SURELY_UNSET_VARIABLE}" }
`
	_, err := Parse([]byte(file))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		`orchestration.graph.edges[1].to (line 10): "nobody" is not a member`,
		`orchestration.graph.edges[2].when (line 15): error parsing regexp`,
		`orchestration.graph.edges (line 4): cycle a -> b -> a`,
		`agents[0].publishes (line 20): topic "orders.*"`,
		`agents[0].handoff.c (line 22): "c" is not in this agent's handoffs`,
		`agents[0].handoff.c.last_messages (line 23): -1: want >= 0`,
		`agents[0].handoff.b.tool_args (line 26): without call_tool`,
		`agents[0].handoff.b.when_metadata (line 27): sip.to: error parsing regexp`,
		`agents[1].subscribe[0].action (line 34): "shout"`,
		`agents[1].subscribe[1].topic (line 37): "*.orders"`,
		`agents[1].subscribe[1].speak (line 38): only for action "background"`,
		`hooks[0] (line 40): webhook: bad hook`,
		`want an absolute http or https URL`,
		`unknown event "before_everything"`,
		`environment variable not set: VOICED_SURELY_UNSET_VARIABLE`,
		`hooks[0].agents (line 43): unknown agent "zed"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestModeSettingsNeedTheirMode(t *testing.T) {
	_, err := Parse([]byte("[[agents]]\nname = \"a\"\n[orchestration]\nmode = \"sequential\"\n[orchestration.planner]\nmax_steps = 2\n"))
	if err == nil || !strings.Contains(err.Error(), `orchestration.planner (line 5): set, but orchestration.mode is "sequential"`) {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse([]byte("[[agents]]\nname = \"a\"\n[orchestration]\nmode = \"planner\"\n[orchestration.planner]\nmax_replans = -2\n"))
	if err == nil || !strings.Contains(err.Error(), `orchestration.planner.max_replans (line 6): -2`) {
		t.Fatalf("err = %v", err)
	}
}

func TestLocate(t *testing.T) {
	loc := locate([]byte(`top = 1
[a]
x = 1
"quoted.key" = 2
b.c = 3
[[arr]]
y = """
[[arr]] inside a string
"""
[[arr]]
[arr.sub]
z = 4
[[arr.list]]
w = 5
`))
	for path, want := range map[string]string{
		"top": " (line 1)", "a.x": " (line 3)", "a.quoted.key": " (line 4)", "a.b.c": " (line 5)",
		"arr[0].y": " (line 7)", "arr[1]": " (line 10)", "arr[1].sub.z": " (line 12)",
		"arr[1].list[0].w": " (line 14)", "arr[1].sub.nothing": " (line 11)", "nowhere": "",
	} {
		if got := loc.at(path); got != want {
			t.Errorf("at(%q) = %q, want %q", path, got, want)
		}
	}
}
