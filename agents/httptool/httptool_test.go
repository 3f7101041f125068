package httptool_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/agents/httptool"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// seen is what the test server was sent.
type seen struct {
	method, path, rawPath, query, auth, ctype, body string
}

func server(t *testing.T, status int, reply string) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)}
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

const orderSchema = `{"type":"object","properties":{
	"order_id":{"type":"string","description":"The order number"},
	"reason":{"type":"string","enum":["damaged","late"]},
	"quantity":{"type":"integer","minimum":0}
},"required":["order_id","reason"]}`

func TestPostSendsPathHeadersAndBody(t *testing.T) {
	srv, got := server(t, 200, `{"refund":"ok"}`)
	tool, err := httptool.New(httptool.Config{
		Name: "refund", Description: "Refund an order.", Method: "post",
		URL:        srv.URL + "/orders/{order_id}/refund",
		Headers:    map[string]string{"Authorization": "Bearer ${SHOP_KEY}"},
		Parameters: orderSchema,
	}, httptool.Options{LookupEnv: env(map[string]string{"SHOP_KEY": "s3cret"})})
	if err != nil {
		t.Fatal(err)
	}
	if s := tool.Spec(); s.Name != "refund" || !strings.Contains(string(s.Parameters), `"required":["order_id","reason"]`) {
		t.Fatalf("spec %+v", s)
	}
	out, err := tool.Call(context.Background(), json.RawMessage(`{"order_id":"A 1/2","reason":"late","quantity":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if out != `{"refund":"ok"}` {
		t.Errorf("result %q", out)
	}
	s := <-got
	if s.method != "POST" || s.rawPath != "/orders/A%201%2F2/refund" || s.auth != "Bearer s3cret" || s.ctype != "application/json" {
		t.Errorf("request %+v", s)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(s.body), &body); err != nil || len(body) != 2 || body["reason"] != "late" || body["quantity"] != 2.0 {
		t.Errorf("body %q (the path argument must not be in it)", s.body)
	}
}

func TestGetSendsArgumentsAsQuery(t *testing.T) {
	srv, got := server(t, 200, "sunny")
	tool, err := httptool.New(httptool.Config{
		Name: "weather", URL: srv.URL + "/v1/weather?key=${WKEY}&city={city}",
		Parameters: `{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["city"]}`,
	}, httptool.Options{LookupEnv: env(map[string]string{"WKEY": "k&1"})})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tool.Call(context.Background(), json.RawMessage(`{"city":"New York","days":3,"tags":["a","b"]}`))
	if err != nil || out != "sunny" {
		t.Fatalf("%q, %v", out, err)
	}
	s := <-got
	// The URL's own query keeps its values (the key holds "&", which is
	// the file author's to escape); the arguments are added.
	if s.method != "GET" || s.path != "/v1/weather" || s.body != "" || s.ctype != "" {
		t.Errorf("request %+v", s)
	}
	for _, want := range []string{"city=New+York", "days=3", "tags=a&tags=b"} {
		if !strings.Contains(s.query, want) {
			t.Errorf("query %q lacks %q", s.query, want)
		}
	}
}

func TestBadArgumentsAreNotSent(t *testing.T) {
	srv, got := server(t, 200, "x")
	tool, err := httptool.New(httptool.Config{Name: "refund", Method: "POST", URL: srv.URL + "/r/{order_id}", Parameters: orderSchema}, httptool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		`{"order_id":"1","reason":"bored"}`:      `reason: "bored" is not one of`,
		`{"reason":"late"}`:                      "order_id: missing required field",
		`{"order_id":"1","reason":"late","x":1}`: "x: unknown field",
	} {
		_, err := tool.Call(context.Background(), json.RawMessage(in))
		if !errors.Is(err, agents.ErrToolArgs) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	select {
	case s := <-got:
		t.Fatalf("a bad call reached the server: %+v", s)
	default:
	}
}

func TestStatusAndSizeCap(t *testing.T) {
	srv, _ := server(t, 404, `{"error":"no such order"}`)
	tool, _ := httptool.New(httptool.Config{Name: "t", URL: srv.URL}, httptool.Options{})
	_, err := tool.Call(context.Background(), nil)
	if !errors.Is(err, httptool.ErrStatus) || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such order") {
		t.Errorf("status: %v", err)
	}

	big, got := server(t, 200, strings.Repeat("a", 100))
	tool, _ = httptool.New(httptool.Config{Name: "t", URL: big.URL, MaxResponse: 10}, httptool.Options{})
	out, err := tool.Call(context.Background(), json.RawMessage(`{}`))
	<-got
	if err != nil || out != "aaaaaaaaaa …(cut at 10 bytes)" {
		t.Errorf("cap: %q, %v", out, err)
	}
}

// TestCancelAndTimeout: barge-in (the turn context) and the tool's timeout
// both end the request in flight.
func TestCancelAndTimeout(t *testing.T) {
	arrived := make(chan struct{}, 4)
	gone := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		gone <- struct{}{}
	}))
	defer srv.Close()
	tool, _ := httptool.New(httptool.Config{Name: "slow", URL: srv.URL, Timeout: time.Hour, Filler: "One moment."}, httptool.Options{})
	if text, d := tool.Filler(); text != "One moment." || d != httptool.DefaultFillerDelay {
		t.Errorf("filler %q %v", text, d)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { <-arrived; cancel(errors.New("interrupted")) }()
	_, err := tool.Call(ctx, nil)
	if err == nil || err.Error() != "interrupted" {
		t.Errorf("cancel: %v", err)
	}
	<-gone

	tool, _ = httptool.New(httptool.Config{Name: "slow", URL: srv.URL, Timeout: 50 * time.Millisecond}, httptool.Options{})
	_, err = tool.Call(context.Background(), nil)
	// The request may be cancelled before it reaches the handler; if it
	// did reach it, srv.Close waits for the handler, which only returns
	// once the request is cancelled.
	if !errors.Is(err, agents.ErrToolTimeout) {
		t.Errorf("timeout: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	lookup := env(map[string]string{"KEY": "k"})
	for _, c := range []struct {
		cfg  httptool.Config
		want string
	}{
		{httptool.Config{Name: "t", URL: "ftp://x/y"}, "want an absolute http or https URL"},
		{httptool.Config{Name: "t", URL: "/relative"}, "want an absolute http or https URL"},
		{httptool.Config{Name: "t", URL: "http://x/{id"}, "unclosed {"},
		{httptool.Config{Name: "t", URL: "http://x/{id}"}, "{id}: not a required"},
		{httptool.Config{Name: "t", URL: "http://x/${MISSING}"}, "environment variable not set: MISSING"},
		{httptool.Config{Name: "t", URL: "http://x/", Headers: map[string]string{"X-Key": "${NOPE}"}}, "headers.X-Key: environment variable not set: NOPE"},
		{httptool.Config{Name: "t", URL: "http://x/", Headers: map[string]string{"Bad Name": "v"}}, `bad name "Bad Name"`},
		{httptool.Config{Name: "t", URL: "http://x/", Parameters: `{"type":"object","properties":{"a":{"type":"date"}}}`}, `unknown type "date"`},
		{httptool.Config{Name: "t", URL: "http://x/", Parameters: `{not json`}, "parameters"},
		{httptool.Config{Name: "t", URL: "http://x/", Method: "TRACE"}, `method "TRACE"`},
		{httptool.Config{Name: "a b", URL: "http://x/"}, `name "a b"`},
	} {
		_, err := httptool.New(c.cfg, httptool.Options{LookupEnv: lookup})
		if !errors.Is(err, httptool.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// TestAgentFeedsBadCallBack: an agent calling the tool with bad arguments
// gets the validation error as the result, and the server is not called.
func TestAgentFeedsBadCallBack(t *testing.T) {
	srv, got := server(t, 200, "refunded")
	tool, err := httptool.New(httptool.Config{Name: "refund", Method: "POST", URL: srv.URL + "/r/{order_id}", Parameters: orderSchema}, httptool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	model := agents.ModelFunc(func(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
		n++
		return func(yield func(agents.Event, error) bool) {
			switch n {
			case 1:
				yield(agents.Event{ToolCall: &agents.ToolCall{ID: "1", Name: "refund", Arguments: `{"order_id":"7"}`}}, nil)
			case 2:
				last := req.Messages[len(req.Messages)-1]
				if !strings.Contains(last.Content, "reason: missing required field") {
					t.Errorf("model was shown %q", last.Content)
				}
				yield(agents.Event{ToolCall: &agents.ToolCall{ID: "2", Name: "refund", Arguments: `{"order_id":"7","reason":"late"}`}}, nil)
			default:
				yield(agents.Event{Text: req.Messages[len(req.Messages)-1].Content}, nil)
			}
		}
	})
	a, err := agents.NewLLMAgent(agents.LLMAgentConfig{Name: "a", Model: model, Tools: []agents.Tool{tool}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := agents.Collect(context.Background(), a, agents.UserInput("refund order 7"))
	if err != nil || out != "refunded" {
		t.Fatalf("%q, %v", out, err)
	}
	if s := <-got; s.path != "/r/7" || s.body != `{"reason":"late"}` {
		t.Errorf("request %+v", s)
	}
}
