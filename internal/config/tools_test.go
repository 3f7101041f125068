package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestToolsAndMCPDecode(t *testing.T) {
	t.Setenv("VOICED_TEST_KEY", "k")
	c, err := Parse([]byte(`
[[tools]]
name = "lookup_order"
description = "Find an order."
url = "https://shop.example/orders/{order_id}"
headers = { Authorization = "Bearer ${VOICED_TEST_KEY}" }
parameters = '{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}'
timeout = "3s"
filler = "Let me look."
filler_delay = "800ms"
max_response = 2048

[[mcp]]
name = "files"
command = "sh"
args = ["-c", "true"]
env = { TOKEN = "${VOICED_TEST_KEY}" }
timeout = "5s"

[[agents]]
name = "shop"
tools = ["lookup_order"]
mcp = ["files"]
`))
	if err != nil {
		t.Fatal(err)
	}
	tl := c.Tools[0]
	if tl.Timeout != 3*time.Second || tl.FillerDelay != 800*time.Millisecond || tl.MaxResponse != 2048 || tl.Headers["Authorization"] != "Bearer ${VOICED_TEST_KEY}" {
		t.Errorf("tool %+v", tl)
	}
	if m := c.MCP[0]; m.Command != "sh" || m.Timeout != 5*time.Second || m.Env["TOKEN"] == "" || c.Agents[0].MCP[0] != "files" {
		t.Errorf("mcp %+v, agent %+v", m, c.Agents[0])
	}
}

func TestToolErrorsNameTheirLine(t *testing.T) {
	file := `[agent]
name = "a"

[[tools]]
name = "ok"
url = "https://example.com/x"

[[tools]]   # the bad one
name = "bad"
url = "ftp://example.com/{id}"
parameters = '{"type":"object","properties":{"id":{"type":"date"}}}'
headers = { X-Key = "${VOICED_SURELY_UNSET_VARIABLE}" }

[[mcp]]
name = "m"
url = "https://mcp.example/"
headers = { Authorization = "${VOICED_SURELY_UNSET_VARIABLE}" }

[[agents]]
name = "b"
mcp = ["nope"]
`
	_, err := Parse([]byte(file))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"tools[1] (line 8)",
		"want an absolute http or https URL",
		`unknown type "date"`,
		"headers.X-Key: environment variable not set: VOICED_SURELY_UNSET_VARIABLE",
		"mcp[0] (line 14)",
		"headers.Authorization: environment variable not set",
		`agents[0].mcp (line 19): unknown MCP server "nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "tools[0]") {
		t.Errorf("the good tool was reported: %v", err)
	}
}

func TestToolUnknownKeyHasLine(t *testing.T) {
	_, err := Parse([]byte("[[tools]]\nname = \"x\"\nurl = \"https://e.x/\"\nsecret = \"s\"\n"))
	if err == nil || !strings.Contains(err.Error(), "4| secret") || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("err = %v", err)
	}
}

func TestDuplicateDeclarations(t *testing.T) {
	_, err := Parse([]byte(`
[[tools]]
name = "x"
url = "https://e.x/"
[[tools]]
name = "x"
url = "https://e.x/"
`))
	if err == nil || !strings.Contains(err.Error(), `tools[1] (line 5).name "x": duplicate`) {
		t.Fatalf("err = %v", err)
	}
}

func TestWorkflowsDecodeAndErrorsNameTheirLine(t *testing.T) {
	c, err := Parse([]byte(`
[[workflows]]
name = "refund"
timeout = "1h"

  [[workflows.steps]]
  name = "look"
  tool = "get_time"
  args = { city = "{{input.city}}", n = 2, list = ["{{run.id}}"] }

  [[workflows.steps]]
  name = "wait"
  signal = "approval"
  wait = "2m"
  default = { approved = true }

  [[workflows.steps]]
  name = "nap"
  sleep = "30s"
  retries = 2
  backoff = "1s"
`))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Workflows[0]
	if w.Timeout != time.Hour || len(w.Steps) != 3 || w.Steps[0].Args["n"] != int64(2) || w.Steps[1].Wait != 2*time.Minute ||
		w.Steps[1].Default.(map[string]any)["approved"] != true || w.Steps[2].Sleep != 30*time.Second || w.Steps[2].Retries != 2 {
		t.Errorf("workflow %+v", w)
	}
	file := `[agent]
name = "a"

[[workflows]]
name = "ok"
  [[workflows.steps]]
  name = "s"
  say = "hi"

[[workflows]]   # the bad one
name = "bad"
  [[workflows.steps]]
  name = "one"
  say = "hi"
  [[workflows.steps]]
  name = "two"
  agent = "nobody"
  prompt = "{{steps.three.x}}"
  [[workflows.steps]]
  name = "three"
  url = "https://x"
  body = { a = "{{input.a" }
  wait = "1s"
`
	_, err = Parse([]byte(file))
	for _, want := range []string{
		`workflows[1].steps[1] (line 15).agent: unknown or disabled agent "nobody"`,
		`workflows[1].steps[1] (line 15): declared: bad workflow: prompt: declared: template: {{steps.three.x}}: no earlier step "three"`,
		`workflows[1].steps[2] (line 19): declared: bad workflow: wait: not a key of a http step`,
		`workflows[1].steps[2] (line 19): declared: bad workflow: body.a: declared: template: "{{input.a": "{{" without "}}"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
	_, err = Parse([]byte("[[workflows]]\nname = \"x\"\nsteps = 3\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("a bad type: %v", err)
	}
	_, err = Parse([]byte("[[workflows]]\nname = \"x\"\n[[workflows.steps]]\nname = \"s\"\nsay = \"x\"\nsleeep = \"1s\"\n"))
	if err == nil || !strings.Contains(err.Error(), "sleeep") {
		t.Errorf("an unknown key: %v", err)
	}
}
