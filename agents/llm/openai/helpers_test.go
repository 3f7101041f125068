package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
)

// The fake server speaks the chat-completions streaming protocol, written
// here by hand: each response is "data: <chunk JSON>\n\n" events ended by
// "data: [DONE]". It checks every request against the exchange's golden
// JSON.

const (
	testKey   = "sk-test"
	testModel = "test-model"
)

// exchange is one request the server expects and how it answers.
type exchange struct {
	want    string // the request body, as JSON; compared canonically
	headers map[string]string
	respond func(w http.ResponseWriter, r *http.Request)
}

type server struct {
	t *testing.T
	*httptest.Server
	client *http.Client

	mu     sync.Mutex
	script []exchange
	served int
}

// newServer starts a server that expects the exchanges in order.
func newServer(t *testing.T, script ...exchange) *server {
	t.Helper()
	s := &server{t: t, script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	s.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.served != len(s.script) {
			t.Errorf("server got %d requests, want %d", s.served, len(s.script))
		}
	})
	return s
}

// model returns a Model for the server; cfg's zero fields get the test's
// values.
func (s *server) model(cfg openai.Config) *openai.Model {
	s.t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = s.URL + "/v1"
	}
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.Model == "" {
		cfg.Model = testModel
	}
	cfg.HTTPClient = s.client
	m, err := openai.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	t := s.t
	s.mu.Lock()
	n := s.served
	s.served++
	s.mu.Unlock()
	if n >= len(s.script) {
		t.Errorf("unexpected request %d", n+1)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	ex := s.script[n]
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.URL.RawQuery != "" {
		t.Errorf("request %d: %s %s, want POST /v1/chat/completions", n+1, r.Method, r.URL)
	}
	headers := map[string]string{
		"Authorization": "Bearer " + testKey,
		"Content-Type":  "application/json",
		"Accept":        "text/event-stream",
	}
	for k, v := range ex.headers {
		headers[k] = v
	}
	for k, v := range headers {
		if got := r.Header.Get(k); got != v {
			t.Errorf("request %d: header %s = %q, want %q", n+1, k, got, v)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("request %d: reading the body: %v", n+1, err)
		return
	}
	// Strict decoding: the request has only the fields the API defines.
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var wire wireRequest
	if err := d.Decode(&wire); err != nil {
		t.Errorf("request %d: %v in %s", n+1, err, body)
	}
	if got, want := canonical(t, body), canonical(t, []byte(ex.want)); got != want {
		t.Errorf("request %d body:\n got %s\nwant %s", n+1, got, want)
	}
	ex.respond(w, r)
}

// wireRequest lists every field a request may have.
type wireRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role      string  `json:"role"`
		Content   *string `json:"content"`
		Name      string  `json:"name"`
		ToolCalls []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
		ToolCallID string `json:"tool_call_id"`
	} `json:"messages"`
	MaxTokens           int      `json:"max_tokens"`
	MaxCompletionTokens int      `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
	Stream              bool     `json:"stream"`
	StreamOptions       struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("bad JSON %s: %v", b, err)
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// SSE writing.

// sse writes events and flushes them to the client.
func sse(w http.ResponseWriter, events ...string) {
	for _, e := range events {
		fmt.Fprintf(w, "data: %s\n\n", e)
	}
	w.(http.Flusher).Flush()
}

// startSSE writes the headers of an event stream.
func startSSE(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// stream answers with events, all at once.
func stream(events ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		startSSE(w)
		sse(w, events...)
	}
}

const done = "[DONE]"

func chunk(choices ...map[string]any) string {
	if choices == nil {
		choices = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
		"model": testModel, "choices": choices,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func delta(d map[string]any, finish any) map[string]any {
	return map[string]any{"index": 0, "delta": d, "finish_reason": finish, "logprobs": nil}
}

func roleChunk() string        { return chunk(delta(map[string]any{"role": "assistant", "content": ""}, nil)) }
func text(s string) string     { return chunk(delta(map[string]any{"content": s}, nil)) }
func finish(why string) string { return chunk(delta(map[string]any{}, why)) }

func usage(in, out int) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
		"model": testModel, "choices": []any{},
		"usage": map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out},
	})
	return string(b)
}

// frag is one tool-call fragment; id and name are left out when empty, as
// servers do after a call's first fragment.
func frag(index int, id, name, args string) map[string]any {
	fn := map[string]any{"arguments": args}
	f := map[string]any{"index": index, "function": fn}
	if id != "" {
		f["id"] = id
		f["type"] = "function"
	}
	if name != "" {
		fn["name"] = name
	}
	return f
}

func calls(frags ...map[string]any) string {
	return chunk(delta(map[string]any{"tool_calls": frags}, nil))
}

// Reading the model.

// show renders an event for comparisons.
func show(ev agents.Event) string {
	var parts []string
	if ev.Text != "" {
		parts = append(parts, fmt.Sprintf("text %q", ev.Text))
	}
	if c := ev.ToolCall; c != nil {
		parts = append(parts, fmt.Sprintf("call %s %s %s", c.ID, c.Name, c.Arguments))
	}
	if ev.Usage != nil {
		parts = append(parts, fmt.Sprintf("usage %d/%d", ev.Usage.InputTokens, ev.Usage.OutputTokens))
	}
	if ev.FinishReason != "" {
		parts = append(parts, "finish "+ev.FinishReason)
	}
	if len(parts) == 0 {
		return "empty event"
	}
	return strings.Join(parts, ", ")
}

// collect runs a stream to its end; each is called with every event.
func collect(ctx context.Context, m agents.ChatModel, req agents.Request, each func(agents.Event)) ([]string, []agents.Event, error) {
	var got []string
	var evs []agents.Event
	for ev, err := range m.Stream(ctx, req) {
		if err != nil {
			return got, evs, err
		}
		got = append(got, show(ev))
		evs = append(evs, ev)
		if each != nil {
			each(ev)
		}
	}
	return got, evs, nil
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func user(s string) agents.Request {
	return agents.Request{Messages: []agents.Message{{Role: agents.RoleUser, Content: s}}}
}

const userOnly = `{"model":"test-model","stream":true,"stream_options":{"include_usage":true},
	"messages":[{"role":"user","content":"hi"}]}`

// waitGone waits, up to a generous guard, until ch is closed; it fails the
// test if the guard expires (a hang, not a slow machine).
func waitGone(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

// noLeaks records the goroutines now and, at cleanup (after the servers
// and clients registered later are closed), waits until no more are left.
func noLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// roundTripFunc is an in-memory transport.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func sseResponse(r *http.Request, body string) *http.Response {
	return &http.Response{
		StatusCode: http.StatusOK,
		Status:     "200 OK",
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    r,
	}
}

func sseBody(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "data: %s\n\n", e)
	}
	return b.String()
}
