package agents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/internal/jsonschema"
)

type Money struct {
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency" jsonschema:"enum=EUR|USD"`
}

type Line struct {
	SKU      string `json:"sku"`
	Quantity uint   `json:"quantity" jsonschema:"description=How many, at least one"`
}

type orderArgs struct {
	Money             // embedded: flattened
	Customer string   `json:"customer" jsonschema:"description=Customer ID, as printed on the invoice"`
	Priority int      `json:"priority" jsonschema:"enum=1|2|3"`
	Express  bool     `json:"express,omitempty"`
	Note     *string  `json:"note"`
	Lines    []Line   `json:"lines"`
	Tags     []string `json:"tags" jsonschema:"optional"`
	Ship     *struct {
		Street string `json:"street"`
	} `json:"ship"`
	Internal string `json:"-"`
	//lint:ignore U1000 an unexported field the schema must leave out
	hidden int
	Plain  float32 // no tag: the Go name
}

func TestToolSpec(t *testing.T) {
	tool, err := agents.NewTool("place_order", "Place an order", func(context.Context, orderArgs) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	s := tool.Spec()
	if s.Name != "place_order" || s.Description != "Place an order" {
		t.Fatalf("spec %+v", s)
	}
	// The schema itself is internal/jsonschema's (golden-tested there).
	want, err := jsonschema.For(reflect.TypeFor[orderArgs]())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Parameters, want.JSON()) {
		t.Fatalf("parameters %s, want %s", s.Parameters, want.JSON())
	}

	empty := agents.MustTool("ping", "", func(context.Context, struct{}) (string, error) { return "pong", nil })
	if got := string(empty.Spec().Parameters); got != `{"type":"object","properties":{},"required":[],"additionalProperties":false}` {
		t.Fatalf("empty schema %s", got)
	}
}

func TestToolSchemaErrors(t *testing.T) {
	fn := func(context.Context, struct{}) (string, error) { return "", nil }
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, agents.ErrToolSchema) {
			t.Errorf("%s: err %v, want ErrToolSchema", name, err)
		}
	}
	_, err := agents.NewTool("bad name!", "", fn)
	check("bad name", err)
	_, err = agents.NewTool[struct{}]("nil", "", nil)
	check("nil fn", err)
	_, err = agents.NewTool("s", "", func(context.Context, string) (string, error) { return "", nil })
	check("not a struct", err)
	_, err = agents.NewTool("m", "", func(context.Context, struct{ M map[string]int }) (string, error) { return "", nil })
	check("map", err)
	_, err = agents.NewTool("i", "", func(context.Context, struct{ V any }) (string, error) { return "", nil })
	check("interface", err)
	_, err = agents.NewTool("b", "", func(context.Context, struct{ B []byte }) (string, error) { return "", nil })
	check("bytes", err)
	_, err = agents.NewTool("r", "", func(context.Context, node) (string, error) { return "", nil })
	check("recursive", err)
	_, err = agents.NewTool("e", "", func(context.Context, struct {
		N int `jsonschema:"enum=1|two"`
	}) (string, error) {
		return "", nil
	})
	check("bad enum", err)
	_, err = agents.NewTool("o", "", func(context.Context, struct {
		N int `jsonschema:"minimum=3"`
	}) (string, error) {
		return "", nil
	})
	check("unknown option", err)
	_, err = agents.NewTool("d", "", func(context.Context, struct {
		Money
		Amount int `json:"amount"`
	}) (string, error) {
		return "", nil
	})
	check("duplicate", err)
}

type node struct {
	Children []node `json:"children"`
}

func TestToolValidatesArguments(t *testing.T) {
	var got orderArgs
	calls := 0
	tool := agents.MustTool("place_order", "", func(_ context.Context, a orderArgs) (string, error) {
		calls++
		got = a
		return "placed", nil
	})
	valid := `{"amount": 9.5, "currency": "EUR", "customer": "c1", "priority": 2, "note": null,
		"lines": [{"sku": "a", "quantity": 3}], "ship": {"street": "Main"}, "Plain": 1}`
	out, err := tool.Call(context.Background(), json.RawMessage(valid))
	if err != nil || out != "placed" || calls != 1 {
		t.Fatalf("valid call: %q, %v, %d calls", out, err, calls)
	}
	want := orderArgs{Money: Money{9.5, "EUR"}, Customer: "c1", Priority: 2, Lines: []Line{{"a", 3}},
		Ship: &struct {
			Street string `json:"street"`
		}{"Main"}, Plain: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}

	base := `"amount": 1, "currency": "USD", "customer": "c", "priority": 1, "lines": [], "Plain": 0`
	for _, tc := range []struct{ args, err string }{
		{`[]`, "arguments: want object, got an array"},
		{`{` + base + `, "extra": 1}`, "extra: unknown field"},
		{`{"amount": 1, "currency": "USD", "priority": 1, "lines": [], "Plain": 0}`, "customer: missing required field"},
		{`{"amount": "1", "currency": "USD", "customer": "c", "priority": 1, "lines": [], "Plain": 0}`, "amount: want number, got a string"},
		{`{"amount": 1, "currency": "GBP", "customer": "c", "priority": 1, "lines": [], "Plain": 0}`, `currency: "GBP" is not one of "EUR", "USD"`},
		{`{"amount": 1, "currency": "USD", "customer": "c", "priority": 4, "lines": [], "Plain": 0}`, "priority: 4 is not one of 1, 2, 3"},
		{`{"amount": 1, "currency": "USD", "customer": "c", "priority": 1.5, "lines": [], "Plain": 0}`, "priority: want integer, got 1.5"},
		{`{` + base[:len(base)-len(`"lines": [], "Plain": 0`)] + `"lines": [{"sku": "a", "quantity": -1}], "Plain": 0}`, "lines[0].quantity: want a non-negative integer, got -1"},
		{`{` + base[:len(base)-len(`"lines": [], "Plain": 0`)] + `"lines": [{"sku": "a"}], "Plain": 0}`, "lines[0].quantity: missing required field"},
		{`{` + base + `, "ship": {"street": 5}}`, "ship.street: want string, got a number"},
		{`{` + base + `, "express": null}`, "express: want boolean, got null"},
		{`{` + base + `, "tags": ["a", 1]}`, "tags[1]: want string, got a number"},
		{`{` + base + `} {}`, "trailing data"},
		{`{"amount": `, "not JSON"},
		{`{` + base + `, "priority": 1}`, ""}, // a repeated key is JSON's business; the last wins
	} {
		calls = 0
		_, err := tool.Call(context.Background(), json.RawMessage(tc.args))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.args, err)
			}
			continue
		}
		if !errors.Is(err, agents.ErrToolArgs) || !strings.Contains(err.Error(), tc.err) || calls != 0 {
			t.Errorf("%s:\n  err %v (%d calls)\n  want ErrToolArgs with %q", tc.args, err, calls, tc.err)
		}
	}
}

func TestToolTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tool := agents.MustTool("slow", "", func(ctx context.Context, _ struct{}) (string, error) {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Minute):
				return "late", nil
			}
		}, agents.WithToolTimeout(3*time.Second))
		if tt, ok := tool.(agents.ToolTimeouter); !ok || tt.Timeout() != 3*time.Second {
			t.Fatal("tool does not report its timeout")
		}
		start := time.Now()
		_, err := tool.Call(context.Background(), json.RawMessage(`{}`))
		if !errors.Is(err, agents.ErrToolTimeout) || time.Since(start) != 3*time.Second {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		// Cancelled by the caller: the caller's cause, not a timeout.
		stop := errors.New("stop")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(stop) })
		if _, err := tool.Call(ctx, json.RawMessage(`{}`)); errors.Is(err, agents.ErrToolTimeout) || err == nil {
			t.Fatalf("cancelled call: %v", err)
		}
	})
}

func FuzzToolArguments(f *testing.F) {
	f.Add(`{"amount": 9.5, "currency": "EUR", "customer": "c1", "priority": 2, "lines": [{"sku": "a", "quantity": 3}], "Plain": 1}`)
	f.Add(`{"lines": [{"quantity": 1e400}]}`)
	f.Add(`{"priority": 9223372036854775808}`)
	f.Add(`null`)
	f.Add(``)
	tool := agents.MustTool("place_order", "", func(_ context.Context, a orderArgs) (string, error) {
		if a.Currency != "EUR" && a.Currency != "USD" || a.Priority < 1 || a.Priority > 3 || a.Lines == nil {
			return "", errors.New("validation let through a bad value")
		}
		return "ok", nil
	})
	f.Fuzz(func(t *testing.T, args string) {
		out, err := tool.Call(context.Background(), json.RawMessage(args))
		if err != nil && !errors.Is(err, agents.ErrToolArgs) {
			t.Fatalf("%s: %v", args, err)
		}
		if err == nil && out != "ok" {
			t.Fatalf("%s: %q", args, out)
		}
	})
}

func BenchmarkToolCall(b *testing.B) {
	tool := agents.MustTool("place_order", "", func(context.Context, orderArgs) (string, error) { return "ok", nil })
	args := json.RawMessage(`{"amount": 9.5, "currency": "EUR", "customer": "c1", "priority": 2, "lines": [{"sku": "a", "quantity": 3}], "Plain": 1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tool.Call(context.Background(), args); err != nil {
			b.Fatal(err)
		}
	}
}
