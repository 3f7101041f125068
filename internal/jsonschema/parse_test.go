package jsonschema

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValidates(t *testing.T) {
	s, err := Parse([]byte(`{
		"type": "object",
		"properties": {
			"city": {"type": "string", "description": "A city"},
			"days": {"type": "integer", "minimum": 0},
			"unit": {"type": "string", "enum": ["c", "f"]},
			"tags": {"type": "array", "items": {"type": "string"}}
		},
		"required": ["city"]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"object","properties":{"city":{"type":"string","description":"A city"},"days":{"type":"integer","minimum":0},"unit":{"type":"string","enum":["c","f"]},"tags":{"type":"array","items":{"type":"string"}}},"required":["city"],"additionalProperties":false}`
	if got := string(s.JSON()); got != want {
		t.Fatalf("JSON:\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct{ in, err string }{
		{`{"city":"Paris","days":2,"unit":"c","tags":["a"]}`, ""},
		{`{"days":2}`, "city: missing required field"},
		{`{"city":"Paris","days":-1}`, "days: want a non-negative integer"},
		{`{"city":"Paris","unit":"k"}`, `unit: "k" is not one of`},
		{`{"city":"Paris","x":1}`, "x: unknown field"},
		{`{"city":3}`, "city: want string"},
	} {
		err := s.Validate([]byte(c.in))
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: %v", c.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`[]`, "want a schema object"},
		{`{"type":"string"}`, "must be an object"},
		{`{"type":"object","properties":{"a":{"type":"date"}}}`, `a: unknown type "date"`},
		{`{"type":"object","properties":{"a":{"type":"string","pattern":"x"}}}`, `keyword "pattern"`},
		{`{"type":"object","required":["b"]}`, `required "b" is not a property`},
		{`{"type":"object","additionalProperties":true}`, "additionalProperties"},
		{`{"type":"object","properties":{"a":{"type":"array"}}}`, "needs \"items\""},
		{`{"type":"object","properties":{"a":{"type":"integer","enum":["x"]}}}`, "not an integer"},
	} {
		_, err := Parse([]byte(c.in))
		if !errors.Is(err, ErrType) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: got %v, want %q", c.in, err, c.err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`))
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":"array","items":{"type":"integer","enum":[1,2]}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(s.JSON())
		if err != nil {
			t.Fatalf("reparse of %s: %v", s.JSON(), err)
		}
		if string(again.JSON()) != string(s.JSON()) {
			t.Fatalf("not stable: %s vs %s", s.JSON(), again.JSON())
		}
	})
}
