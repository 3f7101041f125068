package transport

import (
	"maps"
	"testing"
)

func TestMetadataFromJSON(t *testing.T) {
	md, err := MetadataFromJSON("body", []byte(`{"plan":"pro","customer":{"id":42,"vip":true,"tags":["a","b"]},"note":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"body.plan": "pro", "body.customer.id": "42", "body.customer.vip": "true",
		"body.customer.tags.0": "a", "body.customer.tags.1": "b", "body.note": "null",
	}
	if !maps.Equal(md, want) {
		t.Fatalf("metadata %v, want %v", md, want)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{`, ``} {
		if _, err := MetadataFromJSON("body", []byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzMetadataFromJSON(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":"d"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := MetadataFromJSON("body", b)
		if err == nil && len(md) > MaxMetadata {
			t.Fatalf("%d entries", len(md))
		}
	})
}
