package transport_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

func TestParseMessageNamesNoGoTypes(t *testing.T) {
	for _, in := range []string{
		`{"type":"text","text":5}`,
		`{"type":7}`,
		`{"type":"start","sample_rate":"fast"}`,
		`{"type":"text","text":[1]}`,
		`{"type":"text",`,
		`{"type" "text"}`,
	} {
		_, err := transport.ParseMessage([]byte(in), true)
		if err == nil {
			t.Errorf("%s: accepted", in)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "Go ") || strings.Contains(msg, "Message") || strings.Contains(msg, "of type") {
			t.Errorf("%s: message %q names Go types", in, msg)
		}
	}
	var v struct {
		N int `json:"n"`
	}
	err := json.Unmarshal([]byte(`{"n":"x"}`), &v)
	if got := transport.JSONError(err); got != `field "n": a JSON string is not allowed here` {
		t.Errorf("JSONError = %q", got)
	}
}
