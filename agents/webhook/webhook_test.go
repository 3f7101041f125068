package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/webhook"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// A before-event that cannot be delivered is a veto only when the hook
// fails closed; an after-event's failure is never an error.
func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, closed := range []bool{false, true} {
		h, err := webhook.New(webhook.Config{URL: srv.URL, FailClosed: closed}, webhook.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hs := h.Hooks("a")
		err = hs.BeforeTool(context.Background(), "a", agents.ToolCall{Name: "x", Arguments: "{}"})
		if closed != errors.Is(err, webhook.ErrVetoed) {
			t.Errorf("fail_closed %v: BeforeTool = %v", closed, err)
		}
		if err := hs.BeforeRun(context.Background(), "a", agents.UserInput("hi")); closed != (err != nil) {
			t.Errorf("fail_closed %v: BeforeRun = %v", closed, err)
		}
		hs.AfterTool(context.Background(), "a", agents.ToolResult{Name: "x"})
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// The hook applies to its agents and events only, and sends its headers.
func TestFilters(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhook.Payload
		json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		got = append(got, p.Event+" "+p.Agent+" "+r.Header.Get("X-Key"))
		mu.Unlock()
	}))
	defer srv.Close()
	h, err := webhook.New(webhook.Config{
		URL: srv.URL, Events: []string{webhook.BeforeTool, webhook.AfterAgent}, Agents: []string{"a"},
		Headers: map[string]string{"X-Key": "k-${KEY}"},
	}, webhook.Options{LookupEnv: env(map[string]string{"KEY": "42"})})
	if err != nil {
		t.Fatal(err)
	}
	if b := h.Hooks("b"); b.BeforeTool != nil || b.AfterRun != nil {
		t.Fatal("hooks for an agent not listed")
	}
	a := h.Hooks("a")
	if a.BeforeRun != nil || a.AfterTool != nil || a.OnHandoff != nil {
		t.Fatal("hooks for events not listed")
	}
	if err := a.BeforeTool(context.Background(), "a", agents.ToolCall{Name: "t", Arguments: "not json"}); err != nil {
		t.Fatal(err)
	}
	a.AfterRun(context.Background(), "a", errors.New("boom"))
	h.Close(context.Background())
	if strings.Join(got, "|") != "before_tool a k-42|after_agent a k-42" {
		t.Fatalf("requests %q", got)
	}
}

func TestCheck(t *testing.T) {
	err := webhook.Check(webhook.Config{URL: "https://${HOST}/x", Events: []string{"later"}, Headers: map[string]string{"Bad Name": "x"}}, env(nil))
	for _, want := range []string{"environment variable not set: HOST", `unknown event "later"`, `bad name "Bad Name"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want %q", err, want)
		}
	}
	if err := webhook.Check(webhook.Config{URL: "http://127.0.0.1:9/"}, env(nil)); err != nil {
		t.Errorf("Check = %v", err)
	}
}
