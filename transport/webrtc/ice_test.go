package webrtc_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/voiced-dev/voiced/transport/webrtc"
)

// whip is a handler mounted as internal/server mounts it: the offer, the
// session resources and the ICE servers.
type whip struct {
	h    *webrtc.Handler
	fa   *factory
	base string // http://127.0.0.1:PORT
}

func newWHIP(t *testing.T, cfg webrtc.Config) *whip {
	t.Helper()
	checkGoroutines(t)
	fa := &factory{}
	h := webrtc.NewHandler(cfg, fa.run)
	if err := h.Err(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webrtc/offer", h)
	mux.Handle("OPTIONS /webrtc/offer", h)
	mux.HandleFunc(webrtc.DefaultResourcePath, h.ServeResource)
	mux.HandleFunc("/webrtc/ice-servers", h.ServeICEServers)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &whip{h: h, fa: fa, base: srv.URL}
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url, contentType, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// candidates returns the a=candidate lines of an SDP (without "a=").
func candidates(sdp string) []string {
	var out []string
	for line := range strings.Lines(sdp) {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:"); ok {
			out = append(out, "candidate:"+c)
		}
	}
	return out
}

// withoutCandidates removes the candidate lines of an SDP.
func withoutCandidates(sdp string) string {
	var b strings.Builder
	for line := range strings.Lines(sdp) {
		if !strings.HasPrefix(line, "a=candidate:") && !strings.HasPrefix(line, "a=end-of-candidates") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// sdpFrag is the RFC 8840 fragment trickling the candidates of an offer's
// first media section.
func sdpFrag(offer string) string {
	var ufrag, pwd, mid string
	var cands []string
	section := 0
	for line := range strings.Lines(offer) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "m="):
			section++
		case strings.HasPrefix(line, "a=ice-ufrag:") && ufrag == "":
			ufrag = line
		case strings.HasPrefix(line, "a=ice-pwd:") && pwd == "":
			pwd = line
		case strings.HasPrefix(line, "a=mid:") && section == 1:
			mid = line
		case strings.HasPrefix(line, "a=candidate:") && section == 1:
			cands = append(cands, line)
		}
	}
	return ufrag + "\r\n" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + mid + "\r\n" +
		strings.Join(cands, "\r\n") + "\r\na=end-of-candidates\r\n"
}

// candidateAddrs returns the "address port typ" of each candidate.
func candidateAddrs(sdp string) []string {
	var out []string
	for _, c := range candidates(sdp) {
		f := strings.Fields(c)
		if len(f) >= 8 {
			out = append(out, f[4]+" "+f[5]+" "+f[7])
		}
	}
	return out
}

// TestTrickle offers without candidates and trickles them in a PATCH of
// the session resource. The client drops the server's candidates from the
// answer, so that only the server can start the checks: the connection
// opens only if the PATCHed candidates reached the server's ICE agent.
// DELETE then ends the session.
func TestTrickle(t *testing.T) {
	s := newWHIP(t, webrtc.Config{Loopback: true})
	c := newClient(t)
	full := c.offer()
	if len(candidates(full)) == 0 {
		t.Fatal("the client gathered no candidates")
	}
	resp, answer := do(t, "POST", s.base+"/webrtc/offer", "application/sdp", withoutCandidates(full), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("offer: HTTP %d: %s", resp.StatusCode, answer)
	}
	loc, etag := resp.Header.Get("Location"), resp.Header.Get("ETag")
	if !strings.HasPrefix(loc, webrtc.DefaultResourcePath) || len(loc) < len(webrtc.DefaultResourcePath)+32 || etag == "" {
		t.Fatalf("Location %q, ETag %q", loc, etag)
	}
	if err := c.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: withoutCandidates(answer)}); err != nil {
		t.Fatal(err)
	}
	frag := sdpFrag(full)
	if r, body := do(t, "PATCH", s.base+loc, "application/trickle-ice-sdpfrag", frag, http.Header{"If-Match": {etag}}); r.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: HTTP %d: %s", r.StatusCode, body)
	}
	select {
	case <-c.dcOpen:
	case <-c.gone:
		t.Fatal("the connection failed: the trickled candidates did not reach the server")
	case <-time.After(20 * time.Second):
		t.Fatal("the events channel did not open: the trickled candidates did not reach the server")
	}
	ready(t, c)

	if r, body := do(t, "DELETE", s.base+loc, "", "", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: HTTP %d: %s", r.StatusCode, body)
	}
	if !waitFor(10*time.Second, func() bool { return s.h.Sessions() == 0 }) {
		t.Fatal("the session did not end after DELETE")
	}
	r := s.fa.last()
	<-r.done
	if r.err == nil || !strings.Contains(r.err.Error(), "DELETE") {
		t.Errorf("session ended with %v, want the DELETE error", r.err)
	}
	for _, m := range []string{"DELETE", "PATCH"} {
		if r, _ := do(t, m, s.base+loc, "application/trickle-ice-sdpfrag", frag, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s after the session ended: HTTP %d, want 404", m, r.StatusCode)
		}
	}
}

// TestOfferAndPatchLimits: too many candidates or media sections, and bad
// PATCHes, each get a clear status and reason, and leave the server
// serving.
func TestOfferAndPatchLimits(t *testing.T) {
	s := newWHIP(t, webrtc.Config{Loopback: true, MaxCandidates: 5, MaxMediaSections: 3})
	good := newClient(t).offer()
	fake := func(i int) string {
		return "a=candidate:" + strconv.Itoa(i) + " 1 udp 2130706431 192.0.2.1 " + strconv.Itoa(5000+i) + " typ host\r\n"
	}
	var six strings.Builder
	for i := range 6 {
		six.WriteString(fake(i))
	}
	bare := withoutCandidates(good)
	tooManyCands := strings.Replace(bare, "a=mid:0\r\n", "a=mid:0\r\n"+six.String(), 1)
	tooManySections := bare + strings.Repeat("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\n", 2)
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"candidates", tooManyCands, "6 ICE candidates; at most 5"},
		{"media sections", tooManySections, "4 media sections; at most 3"},
	} {
		if r, body := do(t, "POST", s.base+"/webrtc/offer", "application/sdp", tc.body, nil); r.StatusCode != 400 || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: HTTP %d %q, want 400 %q", tc.name, r.StatusCode, body, tc.msg)
		}
	}

	c := newClient(t)
	offer := c.offer()
	resp, _ := do(t, "POST", s.base+"/webrtc/offer", "application/sdp", withoutCandidates(offer), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("offer: HTTP %d", resp.StatusCode)
	}
	loc := s.base + resp.Header.Get("Location")
	ufrag := ""
	for line := range strings.Lines(offer) {
		if strings.HasPrefix(line, "a=ice-ufrag:") {
			ufrag = strings.TrimSpace(line)
			break
		}
	}
	frag := func(lines ...string) string { return ufrag + "\r\na=mid:0\r\n" + strings.Join(lines, "") }
	const ct = "application/trickle-ice-sdpfrag"
	for _, tc := range []struct {
		name, ct, body string
		header         http.Header
		status         int
		msg            string
	}{
		{"content type", "application/sdp", frag(fake(1)), nil, 415, ct},
		{"if-match", ct, frag(fake(1)), http.Header{"If-Match": {`"other"`}}, 412, "ETag"},
		{"bad candidate", ct, frag("a=candidate:nonsense\r\n"), nil, 400, "bad candidate"},
		{"ice restart", ct, "a=ice-ufrag:new1\r\na=mid:0\r\n" + fake(1), nil, 422, "ICE restart"},
		{"four fit", ct, frag(fake(1), fake(2), fake(3), fake(4)), nil, 204, ""},
		{"the sixth does not", ct, frag(fake(5), fake(6)), nil, 400, "6 ICE candidates for the session; at most 5"},
		{"the fifth does", ct, frag(fake(5)), nil, 204, ""},
		{"GET", "", "", nil, 405, "PATCH"},
	} {
		method := "PATCH"
		if tc.name == "GET" {
			method = "GET"
		}
		r, body := do(t, method, loc, tc.ct, tc.body, tc.header)
		if r.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: HTTP %d %q, want %d containing %q", tc.name, r.StatusCode, body, tc.status, tc.msg)
		}
	}
	if r, _ := do(t, "PATCH", s.base+webrtc.DefaultResourcePath+"00000000000000000000000000000000", ct, frag(fake(1)), nil); r.StatusCode != 404 {
		t.Errorf("PATCH of an unknown session: HTTP %d, want 404", r.StatusCode)
	}
	// Nothing else is affected: a good offer still works.
	ready(t, dial(t, s.base+"/webrtc/offer"))
}

// TestCORS: a page from an allowed origin may POST an offer, PATCH and
// DELETE its resource and read the ICE servers; others are refused.
func TestCORS(t *testing.T) {
	s := newWHIP(t, webrtc.Config{Loopback: true, Origins: []string{"https://app.example"}})
	pre := func(path, origin, method string) *http.Response {
		r, _ := do(t, "OPTIONS", s.base+path, "", "", http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {method},
			"Access-Control-Request-Headers": {"content-type"},
		})
		return r
	}
	for _, tc := range []struct{ path, method string }{
		{"/webrtc/offer", "POST"},
		{webrtc.DefaultResourcePath + "x", "PATCH"},
		{webrtc.DefaultResourcePath + "x", "DELETE"},
		{"/webrtc/ice-servers", "GET"},
	} {
		r := pre(tc.path, "https://app.example", tc.method)
		if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), tc.method) ||
			!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "content-type") {
			t.Errorf("preflight %s %s: HTTP %d %v", tc.method, tc.path, r.StatusCode, r.Header)
		}
		if r := pre(tc.path, "https://evil.example", tc.method); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %s %s from another origin: HTTP %d %v", tc.method, tc.path, r.StatusCode, r.Header)
		}
	}
	c := newClient(t)
	r, body := do(t, "POST", s.base+"/webrtc/offer", "application/sdp", c.offer(), http.Header{"Origin": {"https://app.example"}})
	if r.StatusCode != http.StatusCreated || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("cross-origin offer: HTTP %d %q %v", r.StatusCode, body, r.Header)
	}
	if r, _ := do(t, "DELETE", s.base+r.Header.Get("Location"), "", "", http.Header{"Origin": {"https://evil.example"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("DELETE from another origin: HTTP %d, want 403", r.StatusCode)
	}
}

// stunServer answers STUN binding requests (RFC 8489) on loopback with a
// made-up mapped address, and counts them.
func stunServer(t *testing.T, mapped net.IP) (addr string, requests *atomic.Int64) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.Type != stun.BindingRequest {
				continue
			}
			requests.Add(1)
			resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: mapped, Port: from.(*net.UDPAddr).Port}, stun.Fingerprint)
			if err == nil {
				conn.WriteTo(resp.Raw, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return conn.LocalAddr().String(), requests
}

// TestICEServers: the server gathers through its STUN server (its answer
// has the server-reflexive address the STUN server reported) and announces
// the servers in Link headers.
func TestICEServers(t *testing.T) {
	addr, requests := stunServer(t, net.ParseIP("203.0.113.9"))
	stunURL := "stun:" + addr
	s := newWHIP(t, webrtc.Config{Loopback: true, ICEServers: []pion.ICEServer{{URLs: []string{stunURL}}}})
	c := newClient(t)
	r, answer := do(t, "POST", s.base+"/webrtc/offer", "application/sdp", c.offer(), nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("offer: HTTP %d: %s", r.StatusCode, answer)
	}
	if !slices.ContainsFunc(candidateAddrs(answer), func(a string) bool { return strings.HasPrefix(a, "203.0.113.9 ") && strings.HasSuffix(a, " srflx") }) {
		t.Errorf("no server-reflexive candidate from the STUN server in the answer: %q", candidateAddrs(answer))
	}
	if requests.Load() == 0 {
		t.Error("the STUN server got no binding request")
	}
	if got := r.Header.Values("Link"); !slices.Contains(got, "<"+stunURL+`>; rel="ice-server"`) {
		t.Errorf("Link headers %q", got)
	}

}

// TestICEServersForPages: GET /webrtc/ice-servers hands pages the STUN and
// TURN servers, credentials included; a TURN server without them is a
// configuration error.
func TestICEServersForPages(t *testing.T) {
	addr, _ := stunServer(t, net.ParseIP("203.0.113.9"))
	stunURL := "stun:" + addr
	turn := newWHIP(t, webrtc.Config{Loopback: true, ICEServers: []pion.ICEServer{
		{URLs: []string{stunURL}},
		{URLs: []string{"turn:turn.example:3478?transport=udp"}, Username: "u", Credential: "p\"w"},
	}})
	r, body := do(t, "GET", turn.base+"/webrtc/ice-servers", "", "", nil)
	var got webrtc.ICEServersJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil || r.StatusCode != 200 {
		t.Fatalf("GET /webrtc/ice-servers: HTTP %d %q: %v", r.StatusCode, body, err)
	}
	want := `{"iceServers":[{"urls":["` + stunURL + `"]},{"urls":["turn:turn.example:3478?transport=udp"],"username":"u","credential":"p\"w"}]}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("ICE servers %s, want %s", b, want)
	}

	bad := webrtc.NewHandler(webrtc.Config{ICEServers: []pion.ICEServer{{URLs: []string{"turn:turn.example"}}}}, nil)
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "username and a credential") {
		t.Errorf("a TURN server without credentials: %v", err)
	}
}

// TestPublicIPs: with 1:1 NAT the answer announces the public address in
// place of the host's.
func TestPublicIPs(t *testing.T) {
	s := newWHIP(t, webrtc.Config{Loopback: true, PublicIPs: []string{"192.0.2.10"}})
	r, answer := do(t, "POST", s.base+"/webrtc/offer", "application/sdp", newClient(t).offer(), nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("offer: HTTP %d: %s", r.StatusCode, answer)
	}
	addrs := candidateAddrs(answer)
	if len(addrs) == 0 {
		t.Fatal("no candidates in the answer")
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "192.0.2.10 ") {
			t.Errorf("candidate %q does not announce the public IP", a)
		}
	}
	bad := webrtc.NewHandler(webrtc.Config{PublicIPs: []string{"not-an-ip"}}, nil)
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "not an IP") {
		t.Errorf("a bad public IP: %v", err)
	}
}

// TestUDPPortRange: every candidate's port is in the range, and sessions
// connect.
func TestUDPPortRange(t *testing.T) {
	const lo, hi = 47100, 47199
	s := newWHIP(t, webrtc.Config{Loopback: true, UDPPortMin: lo, UDPPortMax: hi})
	c := newClient(t)
	c.connect(s.base+"/webrtc/offer", false)
	ready(t, c)
	answer := c.pc.RemoteDescription().SDP
	for _, a := range candidateAddrs(answer) {
		p, _ := strconv.Atoi(strings.Fields(a)[1])
		if p < lo || p > hi {
			t.Errorf("candidate %q outside %d-%d", a, lo, hi)
		}
	}
}

// TestUDPMux: two sessions share one UDP port and both work.
func TestUDPMux(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	s := newWHIP(t, webrtc.Config{Loopback: true, UDPPort: port})
	var clients []*client
	for range 2 {
		c := newClient(t)
		c.connect(s.base+"/webrtc/offer", false)
		clients = append(clients, c)
	}
	for i, c := range clients {
		ready(t, c)
		addrs := candidateAddrs(c.pc.RemoteDescription().SDP)
		if len(addrs) == 0 {
			t.Fatalf("session %d: no candidates", i)
		}
		for _, a := range addrs {
			if strings.Fields(a)[1] != strconv.Itoa(port) {
				t.Errorf("session %d: candidate %q not on the mux port %d", i, a, port)
			}
		}
		c.send(map[string]string{"type": "text", "text": "hello"})
	}
	for i, c := range clients {
		if !waitFor(10*time.Second, func() bool { return c.count("bot_text", time.Time{}) > 0 }) {
			t.Errorf("session %d: no answer over the shared port", i)
		}
	}
	if s.h.Sessions() != 2 {
		t.Errorf("%d sessions, want 2", s.h.Sessions())
	}
}
