package server

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/sip"
)

// listenSIP starts a SIP server on loopback UDP until t ends.
func listenSIP(t *testing.T, cfg sip.Config, run transport.Factory) (*sip.Server, string) {
	t.Helper()
	srv, err := sip.NewServer(cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := srv.Listen(ctx, "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
	})
	return srv, addr.String()
}

// POST /calls dials through the trunk; GET /calls/{id} reports the call
// as JSON and as Server-Sent Events; DELETE /calls/{id} hangs up (a
// CANCEL while it rings). The callee rings and never answers: its session
// holds the call before taking input.
func TestCallsAPI(t *testing.T) {
	t.Setenv("VOICED_API_KEY", testKey)
	ringing, release := make(chan struct{}, 1), make(chan struct{})
	_, callee := listenSIP(t, sip.Config{RTPPortMin: 32000, RTPPortMax: 32999},
		func(ctx context.Context, s *transport.Session) error {
			ringing <- struct{}{}
			select { // a session that never takes input: the call rings
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-release:
				return nil
			}
		})
	t.Cleanup(func() { close(release) }) // before the servers shut down
	caller, _ := listenSIP(t, sip.Config{RTPPortMin: 33000, RTPPortMax: 33999,
		Trunks: []sip.Trunk{{Name: "default", Address: callee}}}, nil)
	s := newTest(t, func(c *config.Config) { c.Server.MaxBodyBytes = 1024 })
	s.builder = &session.Builder{}
	h := s.Handler()
	key := map[string]string{"Authorization": "Bearer " + testKey, "Content-Type": "application/json"}

	if w := do(t, h, "POST", "/calls", key, `{"to":"sip:demo@127.0.0.1"}`); w.Code != 503 {
		t.Errorf("POST /calls without SIP: %d %q, want 503", w.Code, w.Body)
	}
	s.sip.Store(caller)
	for _, tc := range []struct {
		body string
		hdr  map[string]string
		want int
	}{
		{`{"to":"sip:demo@127.0.0.1"}`, nil, 401},
		{`{"to":"sip:demo@127.0.0.1","extra":1}`, key, 400},
		{`{"from":"x"}`, key, 400},
		{`{"to":"sip:demo@127.0.0.1","agent":"nobody"}`, key, 400},
		{`{"to":"sip:a b@c"}`, key, 400},
		{`{"to":"1234","trunk":"missing"}`, key, 400},
		{`{"to":"` + strings.Repeat("1", 2000) + `"}`, key, 413},
	} {
		if w := do(t, h, "POST", "/calls", tc.hdr, tc.body); w.Code != tc.want {
			t.Errorf("POST /calls %.60s: %d %q, want %d", tc.body, w.Code, w.Body, tc.want)
		}
	}

	w := do(t, h, "POST", "/calls", key, `{"to":"billing","metadata":{"ticket":"42"}}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /calls: %d %q", w.Code, w.Body)
	}
	var st CallStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.ID == "" || w.Header().Get("Location") != "/calls/"+st.ID || st.To != "sip:billing@127.0.0.1" ||
		st.State != sip.StateTrying && st.State != sip.StateRinging { // loopback may ring at once
		t.Fatalf("created %+v (Location %q)", st, w.Header().Get("Location"))
	}
	select {
	case <-ringing:
	case <-time.After(10 * time.Second):
		t.Fatal("the callee never got the call")
	}

	// Follow the events over SSE while the call is hung up.
	ts := httptest.NewServer(h)
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/calls/"+st.ID, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Host = "127.0.0.1:8080"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if w := do(t, h, "DELETE", "/calls/"+st.ID, key, ""); w.Code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %q", w.Code, w.Body)
	}
	var events []string
	var last sip.CallEvent
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			events = append(events, name)
		}
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(events) == 0 || events[len(events)-1] != "ended" || last.Reason != sip.ReasonCancelled {
		t.Errorf("SSE events %q, last %+v; want them to end with ended/cancelled", events, last)
	}
	w = do(t, h, "GET", "/calls/"+st.ID, key, "")
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || w.Code != 200 {
		t.Fatalf("GET: %d %q", w.Code, w.Body)
	}
	if st.State != sip.StateEnded || st.Reason != sip.ReasonCancelled || st.Metadata["ticket"] != "42" {
		t.Errorf("GET after DELETE: %+v", st)
	}
	if w := do(t, h, "GET", "/calls/nope", key, ""); w.Code != 404 {
		t.Errorf("GET unknown call: %d", w.Code)
	}
}

// SIPOptions takes passwords from the variables the configuration names,
// and an empty one is an error (check-config runs it too).
func TestSIPOptions(t *testing.T) {
	cfg := config.SIP{
		Auth:          config.SIPAuth{Allow: []string{"10.0.0.0/8"}, Users: []config.SIPUser{{Username: "pbx", PasswordEnv: "T_PBX"}}},
		Trunk:         &config.SIPTrunk{Address: "trunk:5060", Username: "u", PasswordEnv: "T_TRUNK"},
		Registrations: []config.SIPRegistration{{Registrar: "pbx", User: "7001", PasswordEnv: "T_REG"}},
	}
	env := map[string]string{"T_PBX": "a", "T_TRUNK": "b", "T_REG": "c"}
	a, trunks, err := SIPOptions(cfg, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if a.Users["pbx"] != "a" || len(a.Allow) != 1 || len(trunks) != 1 || trunks[0].Name != "default" || trunks[0].Password != "b" {
		t.Errorf("auth %+v trunks %+v", a, trunks)
	}
	for _, missing := range []string{"T_PBX", "T_TRUNK", "T_REG"} {
		delete(env, missing)
		if _, _, err := SIPOptions(cfg, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without $%s: %v", missing, err)
		}
		env[missing] = "x"
	}
	cfg.Auth.Allow = []string{"10.0.0.0/99"}
	if _, _, err := SIPOptions(cfg, func(k string) string { return env[k] }); err == nil {
		t.Error("a bad allow prefix passed")
	}
}

// The metadata of POST /calls reaches the outbound call's session as
// "metadata.<key>" (what agents.SessionState is made from): a call
// through a real SIP trunk to a callee that answers.
func TestCallMetadataReachesSession(t *testing.T) {
	answer := func(ctx context.Context, s *transport.Session) error {
		return transport.Run(ctx, s, pipeline.New(pipeline.Options{}, s.Input, s.Output))
	}
	_, callee := listenSIP(t, sip.Config{RTPPortMin: 34000, RTPPortMax: 34999}, answer)
	caller, _ := listenSIP(t, sip.Config{RTPPortMin: 35000, RTPPortMax: 35999,
		Trunks: []sip.Trunk{{Name: "default", Address: callee}}}, nil)
	got := make(chan map[string]string, 1)
	run := withMetadata(func(ctx context.Context, s *transport.Session) error {
		got <- maps.Clone(s.Metadata)
		return nil // hangs up
	}, map[string]string{"ticket": "42", "customer": "ada"})
	c, err := caller.Dial(sip.DialRequest{To: "billing", Run: run})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case md := <-got:
		if md["metadata.ticket"] != "42" || md["metadata.customer"] != "ada" || len(md) != 2 {
			t.Errorf("session metadata %v", md)
		}
	case <-time.After(15 * time.Second):
		evs, _ := c.Events()
		t.Fatalf("the call's session never ran; events %+v", evs)
	}
}
