package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"

	"github.com/voiced-dev/voiced/internal/testenv"
)

// TestMain lets a test run this program as a real process: with
// VOICED_TEST_ARGS set, the test binary is voiced with those arguments.
func TestMain(m *testing.M) {
	if args := os.Getenv("VOICED_TEST_ARGS"); args != "" {
		if err := run(strings.Fields(args), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "voiced:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSIGTERMDrains runs voiced as a process and sends it SIGTERM while a
// session's answer is playing: /healthz says draining and new sessions
// get 503 at once; the answer plays to its end, then the bot says the
// shutdown goodbye, the session is closed with shutting_down (1001), and
// the process exits cleanly.
func TestSIGTERMDrains(t *testing.T) {
	testenv.RequireModels(t)
	cfgPath := filepath.Join(t.TempDir(), "drain.toml")
	os.WriteFile(cfgPath, []byte(`
[server]
shutdown_grace = "20s"

[session_limit]
shutdown_goodbye = "Goodbye for now."

[llm.scripted]
fallback = "Here is a fairly long answer, so that it is still playing when the server is told to stop."
`), 0o644)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VOICED_TEST_ARGS=serve --addr 127.0.0.1:0 --config "+cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	logs := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	var log []string
	defer func() {
		if t.Failed() {
			t.Logf("voiced log:\n%s", strings.Join(log, "\n"))
		}
	}()
	ready := regexp.MustCompile(`msg=ready url=(\S+)`)
	var base string
	for base == "" {
		select {
		case l := <-logs:
			log = append(log, l)
			if m := ready.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
		case err := <-exited:
			t.Fatalf("voiced exited: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("voiced not ready after 60 s")
		}
	}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	ws, _, err := gws.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteJSON(map[string]any{"type": "start", "sample_rate": 16000})
	type event struct {
		Type, Text, Code string
		Interrupted      bool
	}
	events := make(chan event, 1000)
	closed := make(chan *gws.CloseError, 1)
	go func() {
		for {
			typ, b, err := ws.ReadMessage()
			if err != nil {
				ce, _ := err.(*gws.CloseError)
				closed <- ce
				close(events)
				return
			}
			if typ == gws.TextMessage {
				var e event
				json.Unmarshal(b, &e)
				events <- e
			}
		}
	}()
	next := func(typ string) event {
		t.Helper()
		for e := range events {
			if e.Type == typ {
				return e
			}
		}
		t.Fatalf("no %s event", typ)
		return event{}
	}
	next("ready")
	ws.WriteJSON(map[string]any{"type": "text", "text": "tell me something"})
	next("bot_started_speaking")

	cmd.Process.Signal(syscall.SIGTERM)
	// /healthz says draining and new sessions are refused, while the
	// answer still plays.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 && strings.Contains(string(body), "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d %q after SIGTERM", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, resp, err := gws.DefaultDialer.Dial(wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("new session while draining: %v %v, want HTTP 503", err, resp)
	}

	// The answer ends by itself, then the goodbye, then the close.
	if e := next("bot_stopped_speaking"); e.Interrupted {
		t.Errorf("the answer was cut off by the shutdown")
	}
	var said []string
	for e := range events {
		switch e.Type {
		case "bot_text":
			said = append(said, e.Text)
		case "error":
			if e.Code != "shutting_down" {
				t.Errorf("error event %q, want shutting_down", e.Code)
			}
		}
	}
	if strings.Join(said, "|") != "Goodbye for now." {
		t.Errorf("said after the answer %q, want the goodbye", said)
	}
	if ce := <-closed; ce == nil || ce.Code != gws.CloseGoingAway || ce.Text != "shutting_down" {
		t.Errorf("closed with %v, want 1001 shutting_down", ce)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("voiced exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("voiced still running 30 s after the session ended")
	}
}
