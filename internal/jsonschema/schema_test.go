package jsonschema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/jsonschema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

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

func mustFor[T any](t testing.TB) *jsonschema.Schema {
	t.Helper()
	s, err := jsonschema.For(reflect.TypeFor[T]())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchemaGolden(t *testing.T) {
	s := mustFor[orderArgs](t)
	var out bytes.Buffer
	if err := json.Indent(&out, s.JSON(), "", "  "); err != nil {
		t.Fatalf("schema is not JSON: %v: %s", err, s.JSON())
	}
	out.WriteByte('\n')
	path := filepath.Join("testdata", "order_schema.json")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("schema differs:\n%s\nwant:\n%s", out.Bytes(), want)
	}
	if got := string(mustFor[struct{}](t).JSON()); got != `{"type":"object","properties":{},"required":[],"additionalProperties":false}` {
		t.Fatalf("empty schema %s", got)
	}
}

type recursive struct {
	Children []recursive `json:"children"`
}

func TestForErrors(t *testing.T) {
	for name, typ := range map[string]reflect.Type{
		"nil":        nil,
		"not struct": reflect.TypeFor[string](),
		"map":        reflect.TypeFor[struct{ M map[string]int }](),
		"interface":  reflect.TypeFor[struct{ V any }](),
		"bytes":      reflect.TypeFor[struct{ B []byte }](),
		"channel":    reflect.TypeFor[struct{ C chan int }](),
		"recursive":  reflect.TypeFor[recursive](),
		"bad enum": reflect.TypeFor[struct {
			N int `jsonschema:"enum=1|two"`
		}](),
		"empty enum": reflect.TypeFor[struct {
			S string `jsonschema:"enum="`
		}](),
		"enum on bool": reflect.TypeFor[struct {
			B bool `jsonschema:"enum=true"`
		}](),
		"unknown option": reflect.TypeFor[struct {
			N int `jsonschema:"minimum=3"`
		}](),
		"duplicate": reflect.TypeFor[struct {
			Money
			Amount int `json:"amount"`
		}](),
	} {
		if _, err := jsonschema.For(typ); !errors.Is(err, jsonschema.ErrType) {
			t.Errorf("%s: err %v, want ErrType", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	s := mustFor[orderArgs](t)
	valid := `{"amount": 9.5, "currency": "EUR", "customer": "c1", "priority": 2, "note": null,
		"lines": [{"sku": "a", "quantity": 3}], "ship": {"street": "Main"}, "Plain": 1}`
	if err := s.Validate([]byte(valid)); err != nil {
		t.Fatalf("valid: %v", err)
	}
	base := `"amount": 1, "currency": "USD", "customer": "c", "priority": 1, "lines": [], "Plain": 0`
	noLines := base[:len(base)-len(`"lines": [], "Plain": 0`)]
	for _, tc := range []struct{ args, path, reason string }{
		{`[]`, "arguments", "want object, got an array"},
		{`null`, "arguments", "want object, got null"},
		{`{` + base + `, "extra": 1}`, "extra", "unknown field"},
		{`{"amount": 1, "currency": "USD", "priority": 1, "lines": [], "Plain": 0}`, "customer", "missing required field"},
		{`{"amount": "1", "currency": "USD", "customer": "c", "priority": 1, "lines": [], "Plain": 0}`, "amount", "want number, got a string"},
		{`{"amount": 1, "currency": "GBP", "customer": "c", "priority": 1, "lines": [], "Plain": 0}`, "currency", `"GBP" is not one of "EUR", "USD"`},
		{`{"amount": 1, "currency": "USD", "customer": "c", "priority": 4, "lines": [], "Plain": 0}`, "priority", "4 is not one of 1, 2, 3"},
		{`{"amount": 1, "currency": "USD", "customer": "c", "priority": 1.5, "lines": [], "Plain": 0}`, "priority", "want integer, got 1.5"},
		{`{"amount": 1, "currency": "USD", "customer": "c", "priority": 9223372036854775808, "lines": [], "Plain": 0}`, "priority", "want integer, got 9223372036854775808"},
		{`{"amount": 1e400, "currency": "USD", "customer": "c", "priority": 1, "lines": [], "Plain": 0}`, "amount", "number 1e400 out of range"},
		{`{` + noLines + `"lines": [{"sku": "a", "quantity": -1}], "Plain": 0}`, "lines[0].quantity", "want a non-negative integer, got -1"},
		{`{` + noLines + `"lines": [{"sku": "a"}], "Plain": 0}`, "lines[0].quantity", "missing required field"},
		{`{` + base + `, "ship": {"street": 5}}`, "ship.street", "want string, got a number"},
		{`{` + base + `, "express": null}`, "express", "want boolean, got null"},
		{`{` + base + `, "tags": ["a", 1]}`, "tags[1]", "want string, got a number"},
		{`{` + base + `} {}`, "arguments", "trailing data after the value"},
		{`{` + base + `} }`, "arguments", "trailing data after the value"},
		{`{` + base + "}\u00a0", "arguments", "trailing data after the value"},
		{`{"amount": `, "arguments", "not JSON: unexpected EOF"},
		{``, "arguments", "not JSON: EOF"},
		{`{"": 1}`, `""`, "unknown field"},
		{`{"a.b": 1}`, `"a.b"`, "unknown field"},
	} {
		err := s.Validate([]byte(tc.args))
		var ve *jsonschema.ValidationError
		if !errors.Is(err, jsonschema.ErrInvalid) || !errors.As(err, &ve) || ve.Path != tc.path || ve.Reason != tc.reason {
			t.Errorf("%s:\n  err %v\n  want %s: %s", tc.args, err, tc.path, tc.reason)
		}
	}
	// A repeated key is JSON's business: the last one wins.
	if err := s.Validate([]byte(`{` + base + `, "priority": 1}` + " \n\t\r")); err != nil {
		t.Errorf("repeated key, trailing whitespace: %v", err)
	}
}

// FuzzValidate feeds untrusted bytes, as a model would send them, to
// Validate: it must not panic, every error must wrap ErrInvalid, and what it
// accepts must decode into the struct and hold only allowed enum values.
func FuzzValidate(f *testing.F) {
	f.Add(`{"amount": 9.5, "currency": "EUR", "customer": "c1", "priority": 2, "lines": [{"sku": "a", "quantity": 3}], "Plain": 1}`)
	f.Add(`{"lines": [{"quantity": 1e400}]}`)
	f.Add(`{"priority": 9223372036854775808}`)
	f.Add(`{"amount": 1, "currency": "USD", "customer": "c", "priority": 1, "lines": [], "Plain": 0} }`)
	f.Add(`{"ship": {"street": "x"}, "note": null, "tags": ["a"]}`)
	f.Add(`null`)
	f.Add(``)
	s := mustFor[orderArgs](f)
	f.Fuzz(func(t *testing.T, data string) {
		err := s.Validate([]byte(data))
		if err != nil {
			var ve *jsonschema.ValidationError
			if !errors.Is(err, jsonschema.ErrInvalid) || !errors.As(err, &ve) || ve.Path == "" || strings.TrimSpace(ve.Reason) == "" {
				t.Fatalf("%q: error %v", data, err)
			}
			return
		}
		var a orderArgs
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Fatalf("%q: accepted, but does not decode: %v", data, err)
		}
		if a.Currency != "EUR" && a.Currency != "USD" || a.Priority < 1 || a.Priority > 3 || a.Lines == nil {
			t.Fatalf("%q: accepted a bad value: %+v", data, a)
		}
	})
}
