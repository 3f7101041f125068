package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/auth"
	"github.com/voiced-dev/voiced/internal/config"
)

const testKey = "test-key-0123456789"

// newTest returns a server that is not loaded (no models): the
// middleware runs in front of every route all the same.
func newTest(t *testing.T, edit func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	if edit != nil {
		edit(&cfg)
	}
	s := New(cfg, nil)
	// A route added after New, as other parts add theirs.
	s.mux.HandleFunc("POST /later", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	return s
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = "127.0.0.1:8080"
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAuthEveryRoute(t *testing.T) {
	t.Setenv("VOICED_API_KEY", testKey)
	t.Setenv("VOICED_TOKEN_SECRET", strings.Repeat("s", 32))
	s := newTest(t, nil)
	if !s.AuthEnabled() {
		t.Fatal("VOICED_API_KEY set, authentication off")
	}
	h := s.Handler()
	tok, err := auth.Mint(auth.TokenConfig{Secret: []byte(strings.Repeat("s", 32)), Identity: "alice", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, target string
		hdr            map[string]string
		want           int
	}{
		{"GET", "/ws", nil, 401},
		{"GET", "/ws?token=wrong-key-0123456789", nil, 401},
		{"POST", "/webrtc/offer", map[string]string{"Content-Type": "application/sdp"}, 401},
		{"GET", "/metrics", nil, 401},
		{"POST", "/calls", nil, 401},
		{"POST", "/api/offer", nil, 401}, // SmallWebRTC
		{"PATCH", "/sessions/abc/api/offer", nil, 401},
		{"PATCH", "/api/offer", map[string]string{"Authorization": "Bearer " + testKey}, 503},
		{"POST", "/sessions/abc/api/offer", map[string]string{"Authorization": "Bearer " + tok}, 503},
		{"POST", "/later", nil, 401}, // a route added later
		{"POST", "/workflows", nil, 401},
		{"GET", "/workflows/x", nil, 401},
		{"DELETE", "/workflows/x", nil, 401},
		{"GET", "/ws?token=" + testKey, nil, 503}, // past auth: not loaded
		{"GET", "/ws?token=" + tok, nil, 503},     // an access token
		{"GET", "/ws", map[string]string{"Authorization": "Bearer " + tok}, 503},
		{"GET", "/ws", map[string]string{"Sec-WebSocket-Protocol": "voiced, bearer." + tok}, 503},
		{"POST", "/later", map[string]string{"Authorization": "Bearer " + testKey}, 200},
		{"GET", "/healthz", nil, 503}, // open: not loaded yet
		{"GET", "/", nil, 200},        // the demo page is open
		{"GET", "/app.js", nil, 200},
	} {
		w := do(t, h, tc.method, tc.target, tc.hdr, "")
		if w.Code != tc.want {
			t.Errorf("%s %s %v: %d %q, want %d", tc.method, tc.target, tc.hdr, w.Code, w.Body, tc.want)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.target)
		}
	}
}

func TestAuthMisconfigured(t *testing.T) {
	t.Setenv("VOICED_API_KEY", "short")
	s := newTest(t, nil)
	if w := do(t, s.Handler(), "GET", "/ws", nil, ""); w.Code != 500 {
		t.Errorf("a key too short: %d, want 500 (fail closed)", w.Code)
	}
	if err := s.Load(); err == nil || !strings.Contains(err.Error(), "VOICED_API_KEY") {
		t.Errorf("Load = %v, want the auth error", err)
	}
}

// TestDNSRebinding: a page at evil.example, whose name now resolves to
// this server, sends its own name as Host and Origin.
func TestDNSRebinding(t *testing.T) {
	s := newTest(t, func(c *config.Config) { c.Server.AllowedHosts = []string{"voice.example"} })
	h := s.Handler()
	evil := map[string]string{"Host": "evil.example:18080", "Origin": "http://evil.example:18080", "Content-Type": "application/sdp"}
	for _, target := range []string{"/ws", "/webrtc/offer", "/metrics", "/"} {
		method := "GET"
		if target == "/webrtc/offer" {
			method = "POST"
		}
		if w := do(t, h, method, target, evil, "v=0"); w.Code != http.StatusMisdirectedRequest {
			t.Errorf("%s %s from evil.example: %d %q, want 421", method, target, w.Code, w.Body)
		}
	}
	for _, host := range []string{"voice.example", "localhost:8080", "10.0.0.5:8080", "[::1]:8080"} {
		if w := do(t, h, "GET", "/", map[string]string{"Host": host}, ""); w.Code != 200 {
			t.Errorf("GET / for Host %q: %d, want 200", host, w.Code)
		}
	}
}

func TestDemoHeadersAnd405(t *testing.T) {
	s := newTest(t, nil)
	w := do(t, s.Handler(), "GET", "/", nil, "")
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("demo CSP %q", csp)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	w = do(t, s.Handler(), "GET", "/webrtc/offer", nil, "")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET /webrtc/offer: %d Allow %q, want 405 POST", w.Code, w.Header().Get("Allow"))
	}
}

func TestBodyLimit(t *testing.T) {
	s := newTest(t, func(c *config.Config) { c.Server.MaxBodyBytes = 100 })
	if w := do(t, s.Handler(), "POST", "/later", nil, strings.Repeat("x", 100)); w.Code != 200 || w.Body.String() != "100" {
		t.Errorf("100 bytes: %d %q", w.Code, w.Body)
	}
	if w := do(t, s.Handler(), "POST", "/later", nil, strings.Repeat("x", 101)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("101 bytes: %d %q, want 413", w.Code, w.Body)
	}
}

// TestTimeouts: a POST whose body trickles in and an idle keep-alive
// connection are both cut by the http.Server HTTPServer returns.
func TestTimeouts(t *testing.T) {
	s := newTest(t, func(c *config.Config) {
		c.Server.ReadTimeout = 300 * time.Millisecond
		c.Server.IdleTimeout = 300 * time.Millisecond
	})
	srv := s.HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// closedWithin reads c until it is closed, failing after limit.
	closedWithin := func(name string, c net.Conn, limit time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(start.Add(limit))
		_, err := io.Copy(io.Discard, c)
		if err != nil {
			t.Errorf("%s: still open after %v (%v)", name, time.Since(start), err)
		}
	}

	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /webrtc/offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\nContent-Length: 100000\r\n\r\nv=0\r\n")
	closedWithin("slow body", slow, 3*time.Second)

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	closedWithin("idle keep-alive", idle, 3*time.Second)
}

func TestHealthzDraining(t *testing.T) {
	s := newTest(t, nil)
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := do(t, s.Handler(), "GET", "/healthz", nil, "")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "draining") {
		t.Fatalf("/healthz after Shutdown: %d %q, want 503 draining", w.Code, w.Body)
	}
}

func TestTokenAgentClaim(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	t.Setenv("VOICED_TOKEN_SECRET", string(secret))
	s := newTest(t, nil) // the default agent, "assistant"
	for _, tc := range []struct {
		agent string
		want  int
	}{
		{"", 503},          // any agent: past the checks, not loaded
		{"assistant", 503}, // the agent this server runs
		{"sales", 403},     // another deployment's
	} {
		tok, err := auth.Mint(auth.TokenConfig{Secret: secret, Identity: "alice", Agent: tc.agent, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if w := do(t, s.Handler(), "GET", "/ws?token="+tok, nil, ""); w.Code != tc.want {
			t.Errorf("agent %q: %d %q, want %d", tc.agent, w.Code, w.Body, tc.want)
		}
	}
}

// Pipecat's clients call /start from their app's origin: the preflight
// passes without a credential, the call itself does not, and both carry
// the CORS headers an allowed origin needs to read the answer.
func TestRTVIStartCORS(t *testing.T) {
	t.Setenv("VOICED_API_KEY", testKey)
	s := newTest(t, func(c *config.Config) { c.Server.Origins = []string{"http://app.test:3000"} })
	h := s.Handler()
	app := map[string]string{"Origin": "http://app.test:3000"}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		status       int
		acao         string
	}{
		{"OPTIONS", "/start", app, http.StatusNoContent, "http://app.test:3000"},
		{"OPTIONS", "/sessions/abc/api/offer", app, http.StatusNoContent, "http://app.test:3000"},
		{"OPTIONS", "/api/offer", app, http.StatusNoContent, "http://app.test:3000"},
		{"PATCH", "/api/offer", app, http.StatusUnauthorized, "http://app.test:3000"},
		{"PATCH", "/sessions/abc/api/offer", map[string]string{"Origin": "http://evil.test", "Authorization": "Bearer " + testKey}, http.StatusForbidden, ""},
		{"POST", "/start", app, http.StatusUnauthorized, "http://app.test:3000"},
		{"POST", "/start", map[string]string{"Origin": "http://app.test:3000", "Authorization": "Bearer " + testKey}, http.StatusServiceUnavailable, "http://app.test:3000"},
		{"OPTIONS", "/start", map[string]string{"Origin": "http://evil.test"}, http.StatusForbidden, ""},
		{"POST", "/start", map[string]string{"Origin": "http://evil.test", "Authorization": "Bearer " + testKey}, http.StatusForbidden, ""},
		{"OPTIONS", "/start", map[string]string{"Origin": "http://app.test:3000", "Host": "evil.test"}, http.StatusMisdirectedRequest, ""},
	} {
		w := do(t, h, tc.method, tc.path, tc.hdr, `{"transport":"websocket"}`)
		if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != tc.acao {
			t.Errorf("%s %s %v: %d ACAO %q, want %d %q (%s)", tc.method, tc.path, tc.hdr, w.Code, w.Header().Get("Access-Control-Allow-Origin"), tc.status, tc.acao, w.Body)
		}
	}
	if n := s.Admission().Sessions(); n != 0 {
		t.Errorf("%d sessions admitted by refused starts", n)
	}
}
