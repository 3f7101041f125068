package transport_test

import (
	"net/http/httptest"
	"testing"

	"github.com/voiced-dev/voiced/transport"
)

func TestOriginAllowed(t *testing.T) {
	for _, tc := range []struct {
		host    string
		origin  string
		allowed []string
		hosts   []string
		want    bool
	}{
		{"voiced.test:8080", "", nil, nil, true},                                            // not a browser
		{"voiced.test:8080", "http://voiced.test:8080", nil, []string{"voiced.test"}, true}, // same, listed host
		{"localhost:8080", "http://localhost:8080", nil, nil, true},                         // loopback name
		{"127.0.0.1:8080", "http://127.0.0.1:8080", nil, nil, true},                         // an address
		{"[::1]:8080", "http://[::1]:8080", nil, nil, true},
		{"voiced.test:8080", "http://evil.test", nil, []string{"voiced.test"}, false}, // foreign
		{"voiced.test:8080", "http://app.test", []string{"http://app.test"}, nil, true},
		{"voiced.test:8080", "HTTP://APP.TEST", []string{"http://app.test"}, nil, true},
		{"voiced.test:8080", "http://evil.test", []string{"*"}, nil, true},
		{"voiced.test:8080", "::bad", nil, nil, false},
		// DNS rebinding: evil.example resolves to this server; the browser
		// sends the attacker's name as both Host and Origin.
		{"evil.example:18080", "http://evil.example:18080", nil, nil, false},
		{"evil.example:18080", "http://evil.example:18080", nil, []string{"voiced.test", ".voiced.test"}, false},
		{"a.voiced.test", "https://a.voiced.test", nil, []string{".voiced.test"}, true},
		{"evil.example", "http://evil.example", nil, []string{"*"}, true},
	} {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := transport.OriginAllowed(r, tc.allowed, tc.hosts...); got != tc.want {
			t.Errorf("OriginAllowed(Host %q, Origin %q, %v, %v) = %v, want %v", tc.host, tc.origin, tc.allowed, tc.hosts, got, tc.want)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	for _, tc := range []struct {
		host  string
		hosts []string
		want  bool
	}{
		{"localhost", nil, true},
		{"LOCALHOST:8080", nil, true},
		{"app.localhost:8080", nil, true},
		{"10.1.2.3:8080", nil, true},
		{"[2001:db8::1]:443", nil, true},
		{"evil.example:8080", nil, false},
		{"evil.example", []string{"voice.example"}, false},
		{"Voice.Example:443", []string{"voice.example"}, true},
		{"voice.example.", []string{"voice.example"}, true},
		{"x.voice.example", []string{".voice.example"}, true},
		{"voice.example.evil", []string{".voice.example"}, false},
		{"", []string{"voice.example"}, false},
		{"anything", []string{"*"}, true},
	} {
		if got := transport.HostAllowed(tc.host, tc.hosts); got != tc.want {
			t.Errorf("HostAllowed(%q, %v) = %v, want %v", tc.host, tc.hosts, got, tc.want)
		}
	}
}
