package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
)

func ptr[T any](v T) *T { return &v }

// TestStreamText: the request carries the system prompt first, the history
// in order (an empty interrupted answer left out), max tokens, temperature
// and the configured headers; deltas reach the caller while the server is
// still streaming; usage and finish reason come last.
func TestStreamText(t *testing.T) {
	noLeaks(t)
	proceed := make(chan struct{})
	s := newServer(t, exchange{
		want: `{"model":"test-model","stream":true,"stream_options":{"include_usage":true},
			"max_tokens":50,"temperature":0.7,
			"messages":[
				{"role":"system","content":"You are terse."},
				{"role":"user","content":"Hi","name":"ada"},
				{"role":"assistant","content":"Hello!","name":"greeter"},
				{"role":"user","content":"Still there?"},
				{"role":"user","content":"Tell me a joke"}]}`,
		headers: map[string]string{"OpenAI-Organization": "org-1", "X-Title": "voiced"},
		respond: func(w http.ResponseWriter, r *http.Request) {
			startSSE(w)
			sse(w, roleChunk(), text("Why did"))
			// The rest waits until the caller has the first delta.
			select {
			case <-proceed:
			case <-r.Context().Done():
				return
			case <-time.After(30 * time.Second):
				t.Error("the first delta did not reach the caller while the stream was open")
			}
			sse(w, text(" the chicken"), text(" cross? ✓"), finish("stop"), usage(42, 7), done)
		},
	})
	m := s.model(openai.Config{Organization: "org-1", ExtraHeaders: map[string]string{"X-Title": "voiced"}})
	req := agents.Request{
		System: "You are terse.",
		Messages: []agents.Message{
			{Role: agents.RoleUser, Content: "Hi", Name: "ada"},
			{Role: agents.RoleAssistant, Content: "Hello!", Name: "greeter"},
			{Role: agents.RoleUser, Content: "Still there?"},
			{Role: agents.RoleAssistant, Content: "", Interrupted: true},
			{Role: agents.RoleUser, Content: "Tell me a joke"},
		},
		MaxTokens:   50,
		Temperature: ptr(0.7),
	}
	got, _, err := collect(context.Background(), m, req, func(ev agents.Event) {
		if ev.Text == "Why did" {
			close(proceed)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "events", got, []string{
		`text "Why did"`, `text " the chicken"`, `text " cross? ✓"`, "usage 42/7, finish stop",
	})
}

// TestToolCalls: tools go out as function tools with their schemas; streamed
// call fragments are joined, each call is yielded as soon as the next one
// starts, and parallel calls (two in one chunk) come out in order. The
// follow-up request carries the assistant's calls and the tool results.
func TestToolCalls(t *testing.T) {
	noLeaks(t)
	proceed := make(chan struct{})
	const tools = `"tools":[
		{"type":"function","function":{"name":"get_weather","description":"Weather for a city",
			"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
		{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}]`
	s := newServer(t,
		exchange{
			want: `{"model":"test-model","stream":true,"stream_options":{"include_usage":true},` + tools + `,
				"messages":[{"role":"user","content":"Weather in Paris and Oslo, and the time?"}]}`,
			respond: func(w http.ResponseWriter, r *http.Request) {
				startSSE(w)
				sse(w, roleChunk(), text("Let me check."),
					calls(frag(0, "call_a", "get_weather", "")),
					calls(frag(0, "", "", `{"ci`)),
					calls(frag(0, "", "", `ty": "Pa`)),
					calls(frag(0, "", "", `ris"}`)),
					calls(frag(1, "call_b", "get_time", "")),
				)
				select { // call_a must be out before call_b is complete
				case <-proceed:
				case <-r.Context().Done():
					return
				case <-time.After(30 * time.Second):
					t.Error("call_a was not yielded when call_b started")
				}
				sse(w,
					calls(frag(1, "", "", `{"tz":`)),
					calls(frag(1, "", "", ` "UTC"}`), frag(2, "call_c", "get_weather", `{"city":"Oslo"}`)),
					finish("tool_calls"), usage(30, 12), done)
			},
		},
		exchange{
			want: `{"model":"test-model","stream":true,"stream_options":{"include_usage":true},` + tools + `,
				"temperature":1e-45,
				"messages":[
					{"role":"user","content":"Weather in Paris and Oslo, and the time?"},
					{"role":"assistant","content":"Let me check.","tool_calls":[
						{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
						{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\": \"UTC\"}"}},
						{"id":"call_c","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
					{"role":"tool","content":"{\"temp_c\":21}","tool_call_id":"call_a"},
					{"role":"tool","content":"12:00","tool_call_id":"call_b"},
					{"role":"tool","content":"(no output)","tool_call_id":"call_c"}]}`,
			respond: stream(roleChunk(), text("Sunny in Paris."), finish("stop"), done),
		},
	)
	m := s.model(openai.Config{})
	req := agents.Request{
		Messages: []agents.Message{{Role: agents.RoleUser, Content: "Weather in Paris and Oslo, and the time?"}},
		Tools: []agents.ToolSpec{
			{Name: "get_weather", Description: "Weather for a city",
				Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)},
			{Name: "get_time"},
		},
	}
	got, evs, err := collect(context.Background(), m, req, func(ev agents.Event) {
		if ev.ToolCall != nil && ev.ToolCall.ID == "call_a" {
			close(proceed)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	same(t, "events", got, []string{
		`text "Let me check."`,
		`call call_a get_weather {"city": "Paris"}`,
		`call call_b get_time {"tz": "UTC"}`,
		`call call_c get_weather {"city":"Oslo"}`,
		"usage 30/12, finish tool_calls",
	})

	// The follow-up: the answer so far, then one result per call.
	answer := agents.Message{Role: agents.RoleAssistant}
	for _, ev := range evs {
		answer.Content += ev.Text
		if ev.ToolCall != nil {
			answer.ToolCalls = append(answer.ToolCalls, *ev.ToolCall)
		}
	}
	results := map[string]string{"call_a": `{"temp_c":21}`, "call_b": "12:00", "call_c": ""}
	req.Messages = append(req.Messages, answer)
	for _, c := range answer.ToolCalls {
		req.Messages = append(req.Messages, agents.Message{Role: agents.RoleTool, Name: c.Name, ToolCallID: c.ID, Content: results[c.ID]})
	}
	req.Temperature = ptr(0.0)
	got, _, err = collect(context.Background(), m, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "follow-up events", got, []string{`text "Sunny in Paris."`, "finish stop"})
}

// TestToolCallsWithoutIndex: servers that send whole calls without an index
// or an ID still give distinct, usable calls.
func TestToolCallsWithoutIndex(t *testing.T) {
	whole := func(id, name, args string) map[string]any {
		f := frag(0, id, name, args)
		delete(f, "index")
		return f
	}
	s := newServer(t, exchange{
		want: userOnly,
		respond: stream(
			calls(whole("call_x", "lookup", `{"q":"a"}`)),
			calls(whole("call_y", "lookup", "")),
			finish("tool_calls"), done),
	}, exchange{
		want:    userOnly,
		respond: stream(calls(frag(0, "", "lookup", `{"q":`), frag(0, "", "", `"b"}`)), finish("tool_calls"), done),
	})
	m := s.model(openai.Config{})
	got, _, err := collect(context.Background(), m, user("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "without index", got, []string{`call call_x lookup {"q":"a"}`, "call call_y lookup {}", "finish tool_calls"})
	got, _, err = collect(context.Background(), m, user("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "without ID", got, []string{`call call_0 lookup {"q":"b"}`, "finish tool_calls"})
}

// TestReasoningModelMaxTokens: OpenAI's reasoning models get
// max_completion_tokens instead of max_tokens.
func TestReasoningModelMaxTokens(t *testing.T) {
	s := newServer(t, exchange{
		want: `{"model":"o3-mini","stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":200,
			"messages":[{"role":"user","content":"hi"}]}`,
		respond: stream(text("ok"), finish("stop"), done),
	})
	req := user("hi")
	req.MaxTokens = 200
	if _, _, err := collect(context.Background(), s.model(openai.Config{Model: "o3-mini"}), req, nil); err != nil {
		t.Fatal(err)
	}
}

func providerError(t *testing.T, err error) *agents.ProviderError {
	t.Helper()
	var pe *agents.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *agents.ProviderError", err, err)
	}
	if pe.Provider != "openai" || pe.Op != "stream" {
		t.Errorf("provider %q op %q, want openai stream", pe.Provider, pe.Op)
	}
	return pe
}

// TestErrorStatuses: HTTP errors become ProviderErrors with the status, the
// server's message, and Retryable for 408, 409, 429 and 5xx only.
func TestErrorStatuses(t *testing.T) {
	noLeaks(t)
	apiError := func(msg, typ, code string) string {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code, "param": nil}})
		return string(b)
	}
	for _, tc := range []struct {
		status      int
		contentType string
		body        string
		retryable   bool
		message     string
	}{
		{429, "application/json", apiError("Rate limit reached for requests", "requests", "rate_limit_exceeded"), true,
			"status 429: openai: server error: Rate limit reached for requests (rate_limit_exceeded)"},
		{401, "application/json", apiError("Incorrect API key provided: sk-***", "invalid_request_error", "invalid_api_key"), false,
			"status 401: openai: server error: Incorrect API key provided: sk-*** (invalid_api_key)"},
		{500, "text/plain", "upstream exploded\n", true, "status 500: openai: server error: upstream exploded"},
		{503, "text/html", "", true, "status 503: openai: server error: Service Unavailable"},
		{400, "application/json", `{"error":{"message":"'messages' must not be empty","type":"invalid_request_error"}}`, false,
			"status 400: openai: server error: 'messages' must not be empty (invalid_request_error)"},
		{403, "application/json", apiError("Country not supported", "request_forbidden", ""), false, "Country not supported"},
		{404, "application/json", `{"error":{"message":"model \"nope\" not found, try pulling it first"}}`, false,
			`status 404: openai: server error: model "nope" not found, try pulling it first`},
		{408, "text/plain", "timeout", true, "status 408"},
		{409, "text/plain", "conflict", true, "status 409"},
		{502, "application/json", `{"detail":"bad gateway"}`, true, `status 502: openai: server error: {"detail":"bad gateway"}`},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			s := newServer(t, exchange{want: userOnly, respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}})
			got, _, err := collect(context.Background(), s.model(openai.Config{}), user("hi"), nil)
			if len(got) != 0 {
				t.Errorf("events %q before the error", got)
			}
			pe := providerError(t, err)
			if pe.Status != tc.status || pe.Retryable != tc.retryable || agents.IsRetryable(err) != tc.retryable {
				t.Errorf("status %d retryable %v, want %d %v", pe.Status, pe.Retryable, tc.status, tc.retryable)
			}
			if !errors.Is(err, openai.ErrAPI) {
				t.Errorf("%v does not wrap ErrAPI", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

// TestBadStreams: responses that are not a proper event stream end with a
// clear error, retryable only when the failure is the server's or the
// network's and nothing was yielded.
func TestBadStreams(t *testing.T) {
	noLeaks(t)
	raw := func(body string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			startSSE(w)
			w.Write([]byte(body))
		}
	}
	// hijack writes raw bytes on the connection and closes it.
	hijack := func(head string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			buf.WriteString(head)
			buf.Flush()
			conn.Close()
		}
	}
	chunked := func(s string) string { return strings.ToUpper(strconvHex(len(s))) + "\r\n" + s + "\r\n" }
	okHead := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name      string
		respond   func(http.ResponseWriter, *http.Request)
		events    []string
		is        error
		retryable bool
		message   string
	}{
		{name: "bad JSON", respond: raw("data: {\"choices\": [\n\n"),
			is: openai.ErrMalformed, message: "openai: malformed stream: bad JSON in an event: unexpected end of JSON input"},
		{name: "wrong type", respond: raw(`data: {"choices":"none"}` + "\n\n"),
			is: openai.ErrMalformed, message: "bad JSON in an event"},
		{name: "bad JSON after text", respond: raw(sseBody(text("a")) + "data: {]\n\n"), events: []string{`text "a"`},
			is: openai.ErrMalformed, message: "invalid character"},
		{name: "error event", respond: raw(`data: {"error":{"message":"The server is overloaded","type":"server_error"}}` + "\n\n"),
			is: openai.ErrAPI, retryable: true, message: "openai: stream: openai: server error: The server is overloaded (server_error)"},
		{name: "error event after text", respond: raw(sseBody(text("a")) + `data: {"error":{"message":"boom"}}` + "\n\n"),
			events: []string{`text "a"`}, is: openai.ErrAPI, message: "boom"},
		{name: "no finish", respond: stream(text("a"), done), events: []string{`text "a"`},
			is: openai.ErrTruncated, message: "stream ended before the answer finished (after 1 events)"},
		{name: "empty stream", respond: stream(done), is: openai.ErrTruncated, retryable: true,
			message: `no events in the response (content type "text/event-stream")`},
		{name: "JSON instead of events", respond: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}`))
		}, is: openai.ErrTruncated, retryable: true, message: `content type "application/json"`},
		{name: "nameless tool call", respond: stream(calls(frag(0, "call_a", "", "{}")), finish("tool_calls"), done),
			is: openai.ErrMalformed, message: "tool call 0 has no name"},
		{name: "tool call revisited", respond: stream(
			calls(frag(0, "call_a", "f", "{}")), calls(frag(1, "call_b", "g", "{")), calls(frag(0, "", "", "}")), done),
			events: []string{"call call_a f {}"}, is: openai.ErrMalformed, message: "a fragment of tool call 0 after tool call 1 began"},
		{name: "cut before headers", respond: hijack(""), retryable: true, message: "EOF"},
		{name: "cut mid-stream", respond: hijack(okHead + chunked(sseBody(roleChunk()))),
			retryable: true, message: "unexpected EOF"},
		{name: "cut after text", respond: hijack(okHead + chunked(sseBody(text("a")))),
			events: []string{`text "a"`}, message: "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, exchange{want: userOnly, respond: tc.respond})
			got, _, err := collect(context.Background(), s.model(openai.Config{}), user("hi"), nil)
			same(t, "events", got, tc.events)
			pe := providerError(t, err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
			if pe.Retryable != tc.retryable || pe.Status != 0 {
				t.Errorf("retryable %v status %d, want %v 0", pe.Retryable, pe.Status, tc.retryable)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

func strconvHex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 16 {
		b = append([]byte{digits[n%16]}, b...)
	}
	return string(b)
}

var errBargeIn = errors.New("test: barge-in")

// TestCancelWhileStreaming: cancelling the context while the stream waits
// for the server ends the sequence with the context's cause, and the
// server sees the connection go.
func TestCancelWhileStreaming(t *testing.T) {
	for _, when := range []string{"before headers", "mid-stream"} {
		t.Run(when, func(t *testing.T) {
			noLeaks(t)
			stalled, gone := make(chan struct{}), make(chan struct{})
			s := newServer(t, exchange{want: userOnly, respond: func(w http.ResponseWriter, r *http.Request) {
				if when == "mid-stream" {
					startSSE(w)
					sse(w, roleChunk(), text("Once upon"))
				}
				close(stalled)
				<-r.Context().Done() // the client went away
				close(gone)
			}})
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			received := make(chan struct{})
			if when == "before headers" {
				close(received)
			}
			go func() {
				// Cancel while the client waits for more: the server has
				// stalled and the client has what was sent.
				<-stalled
				<-received
				cancel(errBargeIn)
			}()
			got, _, err := collect(ctx, s.model(openai.Config{}), user("hi"), func(agents.Event) { close(received) })
			if err != errBargeIn {
				t.Fatalf("error %v, want the context's cause %v", err, errBargeIn)
			}
			if when == "mid-stream" {
				same(t, "events", got, []string{`text "Once upon"`})
			}
			waitGone(t, "the server seeing the disconnect", gone)
		})
	}
}

// TestCancelBetweenEvents: events that already arrived are not yielded
// after the context is cancelled.
func TestCancelBetweenEvents(t *testing.T) {
	noLeaks(t)
	gone := make(chan struct{})
	s := newServer(t, exchange{want: userOnly, respond: func(w http.ResponseWriter, r *http.Request) {
		startSSE(w)
		sse(w, text("one"), text("two"), text("three"))
		<-r.Context().Done()
		close(gone)
	}})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	got, _, err := collect(ctx, s.model(openai.Config{}), user("hi"), func(agents.Event) { cancel(errBargeIn) })
	if err != errBargeIn {
		t.Fatalf("error %v, want %v", err, errBargeIn)
	}
	same(t, "events", got, []string{`text "one"`})
	waitGone(t, "the server seeing the disconnect", gone)

	// Already cancelled: no request at all.
	if _, _, err := collect(ctx, s.model(openai.Config{}), user("hi"), nil); err != errBargeIn {
		t.Errorf("cancelled before the call: %v", err)
	}
}

// TestBreakClosesStream: a caller that stops ranging closes the stream.
func TestBreakClosesStream(t *testing.T) {
	noLeaks(t)
	gone := make(chan struct{})
	s := newServer(t, exchange{want: userOnly, respond: func(w http.ResponseWriter, r *http.Request) {
		startSSE(w)
		sse(w, text("one"), text("two"))
		<-r.Context().Done()
		close(gone)
	}})
	n := 0
	for _, err := range s.model(openai.Config{}).Stream(context.Background(), user("hi")) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Fatalf("%d events", n)
	}
	waitGone(t, "the server seeing the disconnect", gone)
}

// TestHeaderTimeout: a server that never answers is given up on after
// Config.Timeout, with a retryable error; the default applies when the
// timeout is zero.
func TestHeaderTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout, want time.Duration
	}{
		{2 * time.Second, 2 * time.Second},
		{0, openai.DefaultTimeout},
	} {
		synctest.Test(t, func(t *testing.T) {
			hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				<-r.Context().Done()
				return nil, r.Context().Err()
			})
			m, err := openai.New(openai.Config{Model: "m", BaseURL: "http://llm.invalid/v1", Timeout: tc.timeout,
				HTTPClient: &http.Client{Transport: hang}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, _, err = collect(context.Background(), m, user("hi"), nil)
			if d := time.Since(start); d != tc.want {
				t.Errorf("gave up after %v, want %v", d, tc.want)
			}
			pe := providerError(t, err)
			if !errors.Is(err, openai.ErrTimeout) || !pe.Retryable {
				t.Errorf("error %v (retryable %v), want a retryable ErrTimeout", err, pe.Retryable)
			}
		})
	}
	// A negative timeout waits for the caller's context.
	synctest.Test(t, func(t *testing.T) {
		hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		m, _ := openai.New(openai.Config{Model: "m", BaseURL: "http://llm.invalid/v1", Timeout: -1,
			HTTPClient: &http.Client{Transport: hang}})
		ctx, cancel := context.WithTimeoutCause(context.Background(), time.Hour, errBargeIn)
		defer cancel()
		start := time.Now()
		if _, _, err := collect(ctx, m, user("hi"), nil); err != errBargeIn || time.Since(start) != time.Hour {
			t.Errorf("error %v after %v, want %v after 1h", err, time.Since(start), errBargeIn)
		}
	})
}

// TestInvalidRequests are refused before anything is sent.
func TestInvalidRequests(t *testing.T) {
	sent := 0
	m, err := openai.New(openai.Config{Model: "m", BaseURL: "http://llm.invalid/v1",
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent++
			return nil, errors.New("unreachable")
		})}})
	if err != nil {
		t.Fatal(err)
	}
	o1, _ := openai.New(openai.Config{Model: "o1-mini", BaseURL: "http://llm.invalid/v1"})
	msgs := func(ms ...agents.Message) agents.Request { return agents.Request{Messages: ms} }
	u := agents.Message{Role: agents.RoleUser, Content: "hi"}
	for _, tc := range []struct {
		name  string
		model *openai.Model
		req   agents.Request
		is    error
	}{
		{"no messages", m, agents.Request{System: "s"}, agents.ErrEmptyRequest},
		{"only empty messages", m, msgs(agents.Message{Role: agents.RoleUser}, agents.Message{Role: agents.RoleSystem, Content: "s"}), agents.ErrEmptyRequest},
		{"unknown role", m, msgs(agents.Message{Role: "robot", Content: "x"}), openai.ErrInvalidRequest},
		{"tool result without ID", m, msgs(u, agents.Message{Role: agents.RoleTool, Content: "x"}), openai.ErrInvalidRequest},
		{"tool call without ID", m, msgs(u, agents.Message{Role: agents.RoleAssistant, ToolCalls: []agents.ToolCall{{Name: "f"}}}), openai.ErrInvalidRequest},
		{"schema not JSON", m, agents.Request{Messages: []agents.Message{u}, Tools: []agents.ToolSpec{{Name: "f", Parameters: json.RawMessage(`{`)}}}, openai.ErrInvalidRequest},
		{"schema not an object", m, agents.Request{Messages: []agents.Message{u}, Tools: []agents.ToolSpec{{Name: "f", Parameters: json.RawMessage(`[]`)}}}, openai.ErrInvalidRequest},
		{"nameless tool", m, agents.Request{Messages: []agents.Message{u}, Tools: []agents.ToolSpec{{Description: "x"}}}, openai.ErrInvalidRequest},
		{"NaN temperature", m, agents.Request{Messages: []agents.Message{u}, Temperature: ptr(nan())}, openai.ErrInvalidRequest},
		{"negative max tokens", m, agents.Request{Messages: []agents.Message{u}, MaxTokens: -1}, openai.ErrInvalidRequest},
		{"temperature on a reasoning model", o1, agents.Request{Messages: []agents.Message{u}, Temperature: ptr(0.5)}, openai.ErrInvalidRequest},
	} {
		_, _, err := collect(context.Background(), tc.model, tc.req, nil)
		if pe := providerError(t, err); !errors.Is(err, tc.is) || pe.Retryable {
			t.Errorf("%s: %v (retryable %v), want %v", tc.name, err, pe.Retryable, tc.is)
		}
	}
	if sent != 0 {
		t.Errorf("%d requests sent", sent)
	}
}

func nan() float64 { var z float64; return z / z }

// TestNew checks validation, defaults and the API key's source.
func TestNew(t *testing.T) {
	for _, cfg := range []openai.Config{
		{},
		{Model: "  "},
		{Model: "m", BaseURL: "localhost:11434/v1"},
		{Model: "m", BaseURL: "ftp://example.com/v1"},
		{Model: "m", BaseURL: "http:///v1"},
		{Model: "m", BaseURL: "http://h/v1?x=1"},
		{Model: "m", ExtraHeaders: map[string]string{"Bad Header": "x"}},
		{Model: "m", ExtraHeaders: map[string]string{"X-Ok": "line\r\nInjected: yes"}},
	} {
		if _, err := openai.New(cfg); !errors.Is(err, openai.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}

	t.Setenv(openai.APIKeyEnv, "sk-from-env")
	for _, tc := range []struct {
		cfg       openai.Config
		url, auth string
	}{
		{openai.Config{Model: "gpt-4o-mini"}, "https://api.openai.com/v1/chat/completions", "Bearer sk-from-env"},
		{openai.Config{Model: "gpt-4o-mini", APIKey: "sk-given"}, "https://api.openai.com/v1/chat/completions", "Bearer sk-given"},
		{openai.Config{Model: "llama3.2", BaseURL: "http://localhost:11434/v1/"}, "http://localhost:11434/v1/chat/completions", ""},
		{openai.Config{Model: "llama-3.3-70b-versatile", BaseURL: "https://api.groq.com/openai/v1", APIKey: "gsk-1"},
			"https://api.groq.com/openai/v1/chat/completions", "Bearer gsk-1"},
	} {
		var url, auth string
		tc.cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			url, auth = r.URL.String(), r.Header.Get("Authorization")
			return sseResponse(r, sseBody(text("ok"), finish("stop"), done)), nil
		})}
		m, err := openai.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agents.Generate(context.Background(), m, user("hi")); err != nil {
			t.Fatal(err)
		}
		if url != tc.url || auth != tc.auth {
			t.Errorf("%s: sent %s with Authorization %q, want %s with %q", tc.cfg.Model, url, auth, tc.url, tc.auth)
		}
		var info agents.ModelInfo = m
		if info.Provider() != "openai" || info.Model() != tc.cfg.Model {
			t.Errorf("ModelInfo %q %q", info.Provider(), info.Model())
		}
	}
}
