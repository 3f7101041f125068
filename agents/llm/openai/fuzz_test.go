package openai_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/llm/openai"
)

// memoryModel answers every request with body, as an event stream, without
// a network.
func memoryModel(tb testing.TB, body *string) *openai.Model {
	m, err := openai.New(openai.Config{Model: "m", BaseURL: "http://llm.invalid/v1",
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return sseResponse(r, *body), nil
		})}})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// FuzzStream feeds arbitrary response bodies through go-openai's SSE reader
// and this package's chunk handling and tool-call assembly. Whatever the
// bytes, the stream ends; it either fails with a ProviderError or ends with
// exactly one finish event, last; every tool call it yields is usable.
func FuzzStream(f *testing.F) {
	for _, seed := range []string{
		sseBody(roleChunk(), text("Hel"), text("lo"), finish("stop"), usage(3, 2), done),
		sseBody(calls(frag(0, "call_a", "f", `{"a`)), calls(frag(0, "", "", `":1}`), frag(1, "call_b", "g", "")), finish("tool_calls"), done),
		sseBody(calls(frag(1, "", "f", "")), calls(frag(0, "x", "", "")), done),
		`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"id":"x","function":{"name":"f"}}]},"finish_reason":"tool_calls"}]}` + "\n\n",
		`data: {"error":{"message":"overloaded","code":503}}` + "\n\n",
		": keep-alive\n\nevent: message\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\": [\n\n",
		"data:[DONE]",
		"",
	} {
		f.Add(seed)
	}
	var body string
	m := memoryModel(f, &body)
	f.Fuzz(func(t *testing.T, b string) {
		body = b
		var evs []agents.Event
		var err error
		for ev, e := range m.Stream(context.Background(), user("hi")) {
			if e != nil {
				err = e
				break
			}
			evs = append(evs, ev)
		}
		if err != nil {
			var pe *agents.ProviderError
			if !errors.As(err, &pe) || pe.Provider != "openai" {
				t.Fatalf("error %v (%T) is not an openai ProviderError", err, err)
			}
			if pe.Retryable && len(evs) > 0 {
				t.Fatalf("retryable error %v after %d events", err, len(evs))
			}
			return
		}
		if len(evs) == 0 || evs[len(evs)-1].FinishReason == "" {
			t.Fatalf("stream ended without a finish event: %d events", len(evs))
		}
		for i, ev := range evs {
			if ev.FinishReason != "" && i != len(evs)-1 {
				t.Fatalf("finish event %d of %d", i, len(evs))
			}
			if ev.Text == "" && ev.ToolCall == nil && i != len(evs)-1 {
				t.Fatalf("empty event %d", i)
			}
			if c := ev.ToolCall; c != nil && (c.ID == "" || c.Name == "" || strings.TrimSpace(c.Arguments) == "") {
				t.Fatalf("unusable tool call %+v", *c)
			}
		}
	})
}

// BenchmarkStream measures the per-chunk cost of a streamed answer (HTTP
// excluded: the body is in memory).
func BenchmarkStream(b *testing.B) {
	const words = 256
	events := []string{roleChunk()}
	for range words {
		events = append(events, text(" word"))
	}
	events = append(events, finish("stop"), usage(100, words), done)
	body := sseBody(events...)
	m := memoryModel(b, &body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		n := 0
		for ev, err := range m.Stream(context.Background(), user("hi")) {
			if err != nil {
				b.Fatal(err)
			}
			if ev.Text != "" {
				n++
			}
		}
		if n != words {
			b.Fatalf("%d deltas", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*words), "ns/chunk")
}
