package orchestration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/httptool"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/orchestration"
)

// fakeToolset stands in for the example's MCP server.
type fakeToolset []agents.Tool

func (f fakeToolset) Tools() []agents.Tool { return f }

// TestToolsExample runs examples/tools.toml's agent with its declared HTTP
// tool pointed at a local server that checks the request, and its MCP
// server's echo tool faked.
func TestToolsExample(t *testing.T) {
	if _, err := exec.LookPath("npx"); err != nil {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal("npx is not installed (the example's MCP server needs it)")
		}
		t.Skip("npx is not installed: the example's [[mcp]] command is not valid here")
	}
	cfg, err := config.Load("../../examples/tools.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != "GET" || r.URL.Path != "/v1/forecast" || q.Get("latitude") != "48.85" || q.Get("longitude") != "2.35" ||
			q.Get("current") != "temperature_2m,wind_speed_10m" || r.Header.Get("User-Agent") != "voiced-example" {
			t.Errorf("request %s %s %v", r.Method, r.URL, r.Header)
			http.Error(w, "bad request", 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"current_units":{"temperature_2m":"°C","wind_speed_10m":"km/h"},"current":{"time":"2026-01-01T12:00","temperature_2m":12.5,"wind_speed_10m":9.4}}`))
	}))
	defer srv.Close()
	tc := cfg.Tools[0]
	tc.URL = strings.Replace(tc.URL, "https://api.open-meteo.com", srv.URL, 1)
	forecast, err := httptool.New(tc, httptool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var echoed []string
	echo := agents.MustTool("echo", "Echo a message.", func(_ context.Context, a struct {
		Message string `json:"message"`
	}) (string, error) {
		echoed = append(echoed, a.Message)
		return "Echo: " + a.Message, nil
	})
	res, err := orchestration.Build(cfg, orchestration.Options{
		Tools:    map[string]agents.Tool{"get_forecast": forecast},
		Toolsets: map[string]agents.Toolset{"everything": fakeToolset{echo}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := agents.Collect(ctx, res.Agents[0], agents.UserInput("What's the weather in Paris?"))
	if err != nil || got != "In Paris it is 12.5 degrees with wind at 9.4 kilometres an hour." {
		t.Errorf("weather: %q, %v", got, err)
	}
	got, err = agents.Collect(ctx, res.Agents[0], agents.UserInput("echo hello there"))
	if err != nil || got != "Echo: hello there" || len(echoed) != 1 || echoed[0] != "hello there" {
		t.Errorf("echo: %q, %v (echoed %q)", got, err, echoed)
	}
}
