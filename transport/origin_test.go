package transport_test

import (
	"net/http/httptest"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

func TestOriginAllowed(t *testing.T) {
	for _, tc := range []struct {
		origin  string
		allowed []string
		want    bool
	}{
		{"", nil, true},                        // not a browser
		{"http://voiced.test:8080", nil, true}, // same host
		{"http://evil.test", nil, false},       // foreign
		{"http://app.test", []string{"http://app.test"}, true},
		{"HTTP://APP.TEST", []string{"http://app.test"}, true},
		{"http://evil.test", []string{"*"}, true},
		{"::bad", nil, false},
	} {
		r := httptest.NewRequest("GET", "http://voiced.test:8080/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := transport.OriginAllowed(r, tc.allowed); got != tc.want {
			t.Errorf("OriginAllowed(%q, %v) = %v, want %v", tc.origin, tc.allowed, got, tc.want)
		}
	}
}
