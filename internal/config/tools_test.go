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
