package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiced-dev/voiced/agents"
)

func names(ts []agents.Tool) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Spec().Name)
	}
	slices.Sort(out)
	return out
}

// waitTools waits until the server's tools satisfy ok.
func waitTools(t *testing.T, s *Server, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ch := s.Changed()
		if got := names(s.Tools()); ok(got) {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("tools never became as expected; last %v", names(s.Tools()))
		}
	}
}

func find(s *Server, name string) agents.Tool {
	for _, t := range s.Tools() {
		if t.Spec().Name == name {
			return t
		}
	}
	return nil
}

type echoIn struct {
	Message string `json:"message"`
}

// TestStreamableHTTP runs a Go SDK server over streamable HTTP: the
// headers reach it, a call works, a tool added later appears through
// notifications/tools/list_changed, arguments are checked against the
// server's schema before the call, and a server that goes away has its
// tools withdrawn until it is back.
func TestStreamableHTTP(t *testing.T) {
	srv := sdk.NewServer(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	sdk.AddTool(srv, &sdk.Tool{Name: "shout", Description: "Upper-case a message."},
		func(_ context.Context, _ *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.ToUpper(in.Message)}}}, nil, nil
		})
	var badAuth atomic.Int32
	var down atomic.Bool
	handler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			badAuth.Add(1)
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{
		Name: "remote", URL: hs.URL, Headers: map[string]string{"Authorization": "Bearer ${TOK}"},
		MaxBackoff: 200 * time.Millisecond,
	}, Options{LookupEnv: func(k string) (string, bool) { return "tok", k == "TOK" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitTools(t, s, func(n []string) bool { return slices.Equal(n, []string{"shout"}) })
	out, err := find(s, "shout").Call(ctx, json.RawMessage(`{"message":"hi"}`))
	if err != nil || out != "HI" {
		t.Fatalf("shout: %q, %v", out, err)
	}
	if n := badAuth.Load(); n != 0 {
		t.Errorf("%d requests without the header", n)
	}

	sdk.AddTool(srv, &sdk.Tool{Name: "whisper"}, func(_ context.Context, _ *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.ToLower(in.Message)}}}, nil, nil
	})
	waitTools(t, s, func(n []string) bool { return slices.Equal(n, []string{"shout", "whisper"}) })

	// A validation error, checked here from the server's schema.
	_, err = find(s, "shout").Call(ctx, json.RawMessage(`{"message":3}`))
	if err == nil || !strings.Contains(err.Error(), "message") {
		t.Errorf("bad arguments: %v", err)
	}

	// The server goes away: its tools are withdrawn; it comes back: they
	// come back.
	shout := find(s, "shout")
	down.Store(true)
	hs.CloseClientConnections()
	waitTools(t, s, func(n []string) bool { return len(n) == 0 })
	if _, err := shout.Call(ctx, json.RawMessage(`{"message":"x"}`)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("call while down: %v", err)
	}
	down.Store(false)
	waitTools(t, s, func(n []string) bool { return slices.Equal(n, []string{"shout", "whisper"}) })
	if out, err := find(s, "whisper").Call(ctx, json.RawMessage(`{"message":"BACK"}`)); err != nil || out != "back" {
		t.Errorf("after reconnecting: %q, %v", out, err)
	}
}

// everything returns the command that runs @modelcontextprotocol/server-
// everything over stdio, installed by scripts/mcp-everything.sh; it skips
// when node or the package is missing, unless VOICED_REQUIRE_SERVICES=1.
func everything(t *testing.T) (string, []string) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s (VOICED_REQUIRE_SERVICES=1)", why)
		}
		t.Skip(why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed")
	}
	main, _ := filepath.Abs("testdata/everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
	if _, err := os.Stat(main); err != nil {
		skip("@modelcontextprotocol/server-everything is not installed: run scripts/mcp-everything.sh")
	}
	return node, []string{main, "stdio"}
}

// TestEverythingServer runs the reference MCP server over stdio: its
// tools are listed, echo and the sum tool answer, and when the process is
// killed its tools are withdrawn, a call fails with ErrUnavailable, and
// the restarted server brings them back.
func TestEverythingServer(t *testing.T) {
	node, args := everything(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{Name: "everything", Command: node, Args: args, MaxBackoff: 500 * time.Millisecond}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	has := func(n []string) bool { return slices.Contains(n, "echo") && slices.Contains(n, sumTool(n)) }
	listed := waitTools(t, s, has)
	t.Logf("tools: %v", listed)

	out, err := find(s, "echo").Call(ctx, json.RawMessage(`{"message":"hello voiced"}`))
	if err != nil || !strings.Contains(out, "hello voiced") {
		t.Fatalf("echo: %q, %v", out, err)
	}
	out, err = find(s, sumTool(listed)).Call(ctx, json.RawMessage(`{"a":2,"b":40}`))
	if err != nil || !strings.Contains(out, "42") {
		t.Fatalf("%s: %q, %v", sumTool(listed), out, err)
	}

	echo := find(s, "echo")
	s.mu.Lock()
	proc := s.cmd.Process
	s.mu.Unlock()
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	waitTools(t, s, func(n []string) bool { return len(n) == 0 })
	if _, err := echo.Call(ctx, json.RawMessage(`{"message":"x"}`)); !errors.Is(err, ErrUnavailable) {
		// The restart may already be back: then the call works.
		if err != nil {
			t.Errorf("call while down: %v", err)
		}
	}
	waitTools(t, s, has)
	s.mu.Lock()
	restarted := s.cmd.Process.Pid != proc.Pid
	s.mu.Unlock()
	if !restarted {
		t.Error("the same process after a restart")
	}
	out, err = find(s, "echo").Call(ctx, json.RawMessage(`{"message":"again"}`))
	if err != nil || !strings.Contains(out, "again") {
		t.Fatalf("echo after restart: %q, %v", out, err)
	}
}

// sumTool is the reference server's adding tool ("add" in older releases,
// "get-sum" in newer ones).
func sumTool(n []string) string {
	for _, c := range []string{"add", "get-sum"} {
		if slices.Contains(n, c) {
			return c
		}
	}
	return "add"
}

func TestCheck(t *testing.T) {
	lookup := func(k string) (string, bool) { return "v", k == "SET" }
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "x"}, "command or url: one is required"},
		{Config{Name: "x", Command: "node", URL: "http://h/"}, "set only one"},
		{Config{Name: "x", URL: "ftp://h/"}, "want an absolute http or https URL"},
		{Config{Name: "x", Command: "no-such-command-voiced"}, "not found in PATH"},
		{Config{Name: "x", Command: "sh", Env: map[string]string{"K": "${UNSET}"}}, "env.K: environment variable not set: UNSET"},
		{Config{Name: "x", URL: "http://h/", Headers: map[string]string{"A": "${UNSET}"}}, "headers.A: environment variable not set"},
		{Config{Name: "x", Command: "sh", Headers: map[string]string{"A": "b"}}, "headers are for url servers"},
		{Config{Name: "1x", Command: "sh"}, `name "1x"`},
	} {
		err := Check(c.cfg, lookup)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if err := Check(Config{Name: "x", Command: "sh", Env: map[string]string{"K": "${SET}"}}, lookup); err != nil {
		t.Error(err)
	}
}

// TestAgentKeepsTalkingThroughServerDeath: an agent using the reference
// server's tools answers with them, answers (without them) while the
// server is down, and uses them again once it is back.
func TestAgentKeepsTalkingThroughServerDeath(t *testing.T) {
	node, args := everything(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{Name: "everything", Command: node, Args: args, Tools: []string{"echo"}, MaxBackoff: time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitTools(t, s, func(n []string) bool { return slices.Equal(n, []string{"echo"}) })

	// The model calls echo when it is offered, and says what it got back.
	model := agents.ModelFunc(func(_ context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
		return func(yield func(agents.Event, error) bool) {
			last := req.Messages[len(req.Messages)-1]
			if last.Role == agents.RoleTool {
				yield(agents.Event{Text: "tool said: " + last.Content}, nil)
				return
			}
			if slices.ContainsFunc(req.Tools, func(s agents.ToolSpec) bool { return s.Name == "echo" }) {
				yield(agents.Event{ToolCall: &agents.ToolCall{ID: "1", Name: "echo", Arguments: `{"message":"` + last.Content + `"}`}}, nil)
				return
			}
			yield(agents.Event{Text: "no tools right now"}, nil)
		}
	})
	a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model, Toolsets: []agents.Toolset{s}})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(text string) string {
		out, err := agents.Collect(ctx, a, agents.UserInput(text))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		return out
	}
	if got := ask("first"); !strings.Contains(got, "tool said: ") || !strings.Contains(got, "first") {
		t.Fatalf("first answer %q", got)
	}
	s.mu.Lock()
	proc := s.cmd.Process
	s.mu.Unlock()
	_ = proc.Kill()
	waitTools(t, s, func(n []string) bool { return len(n) == 0 })
	if got := ask("second"); got != "no tools right now" && !strings.Contains(got, "second") {
		// Either the server is still down (no tools offered) or it is
		// already back (the call works); nothing else.
		t.Fatalf("answer while down %q", got)
	}
	waitTools(t, s, func(n []string) bool { return slices.Equal(n, []string{"echo"}) })
	if got := ask("third"); !strings.Contains(got, "third") {
		t.Fatalf("answer after restart %q", got)
	}
}
