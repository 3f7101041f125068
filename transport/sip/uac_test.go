package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

// rawUAC is a minimal SIP caller over UDP written out by hand, so that
// tests control every byte (and can send malformed ones).
type rawUAC struct {
	t      testing.TB
	conn   *net.UDPConn
	server netip.AddrPort
	rtp    *net.UDPConn
	n      int
}

func newRawUAC(t testing.TB, server netip.AddrPort) *rawUAC {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); r.Close() })
	return &rawUAC{t: t, conn: c, server: server, rtp: r}
}

func (u *rawUAC) local() string { return u.conn.LocalAddr().String() }

func (u *rawUAC) send(msg string) {
	u.t.Helper()
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	if _, err := u.conn.WriteToUDPAddrPort([]byte(msg), u.server); err != nil {
		u.t.Fatal(err)
	}
}

// response reads the next response to callID, or fails after d.
func (u *rawUAC) response(callID string, d time.Duration) (code int, msg string) {
	u.t.Helper()
	buf := make([]byte, 8192)
	deadline := time.Now().Add(d)
	for {
		u.conn.SetReadDeadline(deadline)
		n, err := u.conn.Read(buf)
		if err != nil {
			return 0, ""
		}
		m := string(buf[:n])
		if !strings.Contains(m, "Call-ID: "+callID) && !strings.Contains(m, "Call-Id: "+callID) && !strings.Contains(m, "i: "+callID) {
			continue
		}
		if !strings.HasPrefix(m, "SIP/2.0 ") {
			if strings.HasPrefix(m, "BYE ") {
				u.reply(m, 200)
			}
			continue
		}
		code, _ = strconv.Atoi(m[8:11])
		return code, m
	}
}

// finals reads responses until n calls have a final answer (or a 180,
// for calls being answered) or d passes, and counts them by code.
func (u *rawUAC) finals(n int, d time.Duration) map[int]int {
	u.t.Helper()
	final := map[string]int{}
	buf := make([]byte, 8192)
	deadline := time.Now().Add(d)
	for len(final) < n {
		u.conn.SetReadDeadline(deadline)
		k, err := u.conn.Read(buf)
		if err != nil {
			break
		}
		m := string(buf[:k])
		if !strings.HasPrefix(m, "SIP/2.0 ") {
			continue
		}
		code, _ := strconv.Atoi(m[8:11])
		if code < 180 {
			continue
		}
		for _, l := range strings.Split(m, "\r\n") {
			if strings.HasPrefix(l, "Call-ID: ") {
				if _, ok := final[l]; !ok {
					final[l] = code
				}
			}
		}
	}
	codes := map[int]int{}
	for _, c := range final {
		codes[c]++
	}
	return codes
}

// reply answers a request from the server.
func (u *rawUAC) reply(req string, code int) {
	var hdrs []string
	for _, l := range strings.Split(req, "\r\n") {
		for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
			if strings.HasPrefix(l, h) {
				hdrs = append(hdrs, l)
			}
		}
	}
	u.send(fmt.Sprintf("SIP/2.0 %d OK\n%s\nContent-Length: 0\n\n", code, strings.Join(hdrs, "\n")))
}

func offerSDP(rtp netip.AddrPort, fmts string, maps ...string) string {
	lines := []string{"v=0", "o=uac 1 1 IN IP4 " + rtp.Addr().String(), "s=-", "c=IN IP4 " + rtp.Addr().String(), "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", rtp.Port(), fmts)}
	return strings.Join(append(lines, maps...), "\n") + "\n" // send makes it CRLF
}

// invite sends an INVITE for user with body as its SDP; it returns the
// call's ID and its branch.
func (u *rawUAC) invite(user, body string) (callID, tag string) {
	u.n++
	callID = fmt.Sprintf("uac-%d-%d@test", time.Now().UnixNano(), u.n)
	tag = fmt.Sprintf("t%d", u.n)
	size := len(strings.ReplaceAll(body, "\n", "\r\n"))
	u.send(fmt.Sprintf(`INVITE sip:%s@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-1;rport
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=%s
To: <sip:%s@%s>
Call-ID: %s
CSeq: 1 INVITE
Contact: <sip:uac@%s>
Content-Type: application/sdp
Content-Length: %d

%s`, user, u.server, u.local(), tag, tag, user, u.server, callID, u.local(), size, body))
	return callID, tag
}

// toTag returns the To header of a response.
func toHeader(res string) string {
	for _, l := range strings.Split(res, "\r\n") {
		if strings.HasPrefix(l, "To:") || strings.HasPrefix(l, "t:") {
			return l
		}
	}
	return ""
}

// call places a PCMU call and waits for its 200 OK: it returns the time
// from sending the INVITE to the 200 OK and the headers to end it with.
func (u *rawUAC) call(user string) (time.Duration, func()) {
	u.t.Helper()
	rtpAddr := u.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	start := time.Now()
	callID, tag := u.invite(user, offerSDP(rtpAddr, "0 101", "a=rtpmap:101 telephone-event/8000"))
	for {
		code, res := u.response(callID, 5*time.Second)
		switch {
		case code == 0:
			u.t.Fatalf("no answer to the INVITE of %s", callID)
		case code < 200:
			continue
		case code != 200:
			u.t.Fatalf("INVITE answered %d", code)
		}
		took := time.Since(start)
		to := toHeader(res)
		u.send(fmt.Sprintf(`ACK sip:%s@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-2;rport
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=%s
%s
Call-ID: %s
CSeq: 1 ACK
Content-Length: 0

`, user, u.server, u.local(), tag, tag, to, callID))
		return took, func() {
			u.send(fmt.Sprintf(`BYE sip:%s@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-3;rport
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=%s
%s
Call-ID: %s
CSeq: 2 BYE
Content-Length: 0

`, user, u.server, u.local(), tag, tag, to, callID))
			if code, _ := u.response(callID, 5*time.Second); code != 200 {
				u.t.Errorf("BYE answered %d", code)
			}
		}
	}
}

// An offer without a common codec is refused with 488; one without SDP too.
func TestInviteNoCommonCodec(t *testing.T) {
	fa := newFactory()
	_, addr := startServer(t, Config{}, fa.run)
	u := newRawUAC(t, addr)
	rtpAddr := u.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, body := range []string{
		offerSDP(rtpAddr, "18 97", "a=rtpmap:18 G729/8000", "a=rtpmap:97 iLBC/8000"),
		"",
		"v=0\nthis is not SDP\n",
	} {
		callID, _ := u.invite("demo", body)
		var codes []int
		for {
			code, _ := u.response(callID, 3*time.Second)
			if code == 0 {
				t.Fatalf("no final answer, got %v", codes)
			}
			codes = append(codes, code)
			if code >= 200 {
				break
			}
		}
		if got := codes[len(codes)-1]; got != 488 {
			t.Errorf("offer %q answered %v, want a final 488", body, codes)
		}
	}
	if n := len(fa.started); n != 0 {
		t.Errorf("%d sessions started for refused calls", n)
	}
}

// Malformed messages, strangers' RTP and an INVITE flood over the
// admission limit get answers or are dropped, and the live call carries on:
// it hears its caller's whole speech and keys, and ends on its BYE.
func TestGarbageAndFloodLeaveLiveCall(t *testing.T) {
	requireBinary(t, "sipp", "sip-tester")
	fa := newFactory()
	srv, addr := startServer(t, Config{MaxSessions: 3}, fa.run)
	live := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = sipp(t, t.Context(), addr, "u1", "testdata/uac_pcma_dtmf.xml", "demo")
		live <- err
	}()
	var r *record
	select {
	case r = <-fa.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the live call did not start")
	}
	time.Sleep(500 * time.Millisecond)

	// Garbage over UDP and TCP, and RTP from a stranger to the call's port.
	junk := [][]byte{
		[]byte("\x00\x01\x02 not SIP at all"),
		[]byte("INVITE sip:demo@127.0.0.1 SIP/2.0\r\nVia: broken\r\n\r\n"),
		[]byte("INVITE sip:demo@127.0.0.1 SIP/2.0\r\nContent-Length: 99999999\r\n\r\nv=0"),
		[]byte("BYE sip:demo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:demo@127.0.0.1>;tag=2\r\nCall-ID: nobody\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"),
		bytes.Repeat([]byte("A"), 60000),
		rtpBytes(t, 8, 1, 1, make([]byte, 160)),
	}
	g, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, j := range junk {
		g.WriteToUDPAddrPort(j, addr)
		for p := srv.cfg.RTPPortMin; p < srv.cfg.RTPPortMin+8; p += 2 {
			g.WriteToUDPAddrPort(j, netip.AddrPortFrom(addr.Addr(), uint16(p)))
		}
		if c, err := net.Dial("tcp", addr.String()); err == nil {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(j)
			c.Close()
		}
	}
	// The flood: 300 INVITEs, in bursts of 30 as fast as they go; two
	// fit under the limit, the rest must get 503, and none may disturb
	// the live call.
	u := newRawUAC(t, addr)
	rtpAddr := u.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range 300 {
		u.invite("flood", offerSDP(rtpAddr, "0"))
		if i%30 == 29 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	codes := u.finals(300, 10*time.Second)
	// UDP may drop some of a burst on a busy machine (the raw caller
	// does not retransmit): half must be answered, each with a 503, or a
	// 180 for the two that fit.
	if codes[503] < 150 || codes[180] > 2 || len(codes) > 2 || len(codes) == 2 && codes[180] == 0 {
		t.Errorf("flood answers %v, want 503s and at most two 180s", codes)
	}

	if err := <-live; err != nil {
		t.Fatalf("live call failed: %v\n%s", err, out)
	}
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("live session still running after its BYE")
	}
	pcm, digits, _ := r.snapshot()
	if got := time.Duration(len(pcm)) * time.Second / 16000; got < 6500*time.Millisecond {
		t.Errorf("live call heard %v of audio, want the whole 7 s", got)
	}
	if digits != "12#" {
		t.Errorf("live call keys %q, want %q", digits, "12#")
	}
	if !errors.Is(r.err, ErrHangup) {
		t.Errorf("live call ended with %v", r.err)
	}
}

// A call ends as soon as its BYE is answered: calls in a row never pile up
// against the admission limit.
func TestCallsInARowReleaseAtOnce(t *testing.T) {
	s, addr := startServer(t, Config{MaxSessions: 2}, quietFactory)
	u := newRawUAC(t, addr)
	for range 30 {
		_, hangup := u.call("demo")
		hangup()
		deadline := time.Now().Add(time.Second)
		for s.Sessions() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := s.Sessions(); n != 0 {
			t.Fatalf("%d sessions a second after the BYE", n)
		}
	}
}

// request sends an in-dialog request of the call placed by u.dial and
// returns the final response.
func (u *rawUAC) request(d *dialogInfo, method, ctype, body string) (int, string) {
	u.t.Helper()
	d.cseq++
	size := len(strings.ReplaceAll(body, "\n", "\r\n"))
	ct := ""
	if ctype != "" {
		ct = "Content-Type: " + ctype + "\n"
	}
	u.send(fmt.Sprintf(`%s sip:%s@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d;rport
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=%s
%s
Call-ID: %s
CSeq: %d %s
Contact: <sip:uac@%s>
%sContent-Length: %d

%s`, method, d.user, u.server, u.local(), d.tag, d.cseq+10, d.tag, d.to, d.callID, d.cseq, method, u.local(), ct, size, body))
	cseq := fmt.Sprintf("CSeq: %d %s\r\n", d.cseq, method)
	for {
		code, res := u.response(d.callID, 3*time.Second)
		if code == 0 || code >= 200 && strings.Contains(res, cseq) {
			return code, res
		}
	}
}

// ack acknowledges a re-INVITE's 200 with body as the answer.
func (u *rawUAC) ack(d *dialogInfo, body string) {
	size := len(strings.ReplaceAll(body, "\n", "\r\n"))
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\n"
	}
	u.send(fmt.Sprintf(`ACK sip:%s@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-ack%d;rport
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=%s
%s
Call-ID: %s
CSeq: %d ACK
%sContent-Length: %d

%s`, d.user, u.server, u.local(), d.tag, d.cseq, d.tag, d.to, d.callID, d.cseq, ct, size, body))
}

type dialogInfo struct {
	user, callID, tag, to string
	cseq                  int
}

// dial places a PCMU call, acknowledges its 200 and returns the dialog.
func (u *rawUAC) dial(user string) *dialogInfo {
	u.t.Helper()
	d, _ := u.dialWith(user, "0 101", "a=rtpmap:101 telephone-event/8000")
	return d
}

// dialWith places a call offering the payload types fmts (with rtpmap
// lines maps), acknowledges its 200 and returns the dialog and the 200.
func (u *rawUAC) dialWith(user, fmts string, maps ...string) (*dialogInfo, string) {
	u.t.Helper()
	rtpAddr := u.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	callID, tag := u.invite(user, offerSDP(rtpAddr, fmts, maps...))
	for {
		code, res := u.response(callID, 5*time.Second)
		if code == 0 || code >= 300 {
			u.t.Fatalf("INVITE answered %d", code)
		}
		if code == 200 {
			d := &dialogInfo{user: user, callID: callID, tag: tag, to: toHeader(res), cseq: 1}
			u.ack(d, "")
			return d, res
		}
	}
}

// voiced answers G.722 when the offer has it, wherever in the offer's
// order, and the call's audio is then 16 kHz end to end; without it, the
// offerer's G.711 law at 8 kHz. A re-INVITE that drops G.722 from a G.722
// call moves it to G.711 (the call's audio stays 16 kHz, resampled), and
// one that offers only G.722 moves it back.
func TestInviteCodecChoice(t *testing.T) {
	fa := newFactory()
	_, addr := startServer(t, Config{}, fa.run)
	rtpAddr := func(u *rawUAC) netip.AddrPort { return u.rtp.LocalAddr().(*net.UDPAddr).AddrPort() }
	for _, tc := range []struct {
		name, fmts string
		maps       []string
		answer     string // the answer's media line after the port
		rtpmap     string
		format     frame.Format
	}{
		{"G.722 offered after G.711", "0 8 9 101", []string{"a=rtpmap:101 telephone-event/8000"},
			"RTP/AVP 9 101", "a=rtpmap:9 G722/8000", frame.Mono16k},
		{"G.722 first", "9 0 101", []string{"a=rtpmap:9 G722/8000", "a=rtpmap:101 telephone-event/8000"},
			"RTP/AVP 9 101", "a=rtpmap:9 G722/8000", frame.Mono16k},
		{"G.711 only", "8 0 101", []string{"a=rtpmap:101 telephone-event/8000"},
			"RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", frame.Format{SampleRate: 8000, Channels: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newRawUAC(t, addr)
			d, res := u.dialWith("demo", tc.fmts, tc.maps...)
			if !strings.Contains(res, tc.answer+"\r\n") || !strings.Contains(res, tc.rtpmap+"\r\n") {
				t.Errorf("answer to %q:\n%s\nwant %q and %q", tc.fmts, res, tc.answer, tc.rtpmap)
			}
			var r *record
			select {
			case r = <-fa.started:
			case <-time.After(5 * time.Second):
				t.Fatal("no session started")
			}
			if r.s.In != tc.format || r.s.Out != tc.format {
				t.Errorf("session formats in %+v out %+v, want %+v", r.s.In, r.s.Out, tc.format)
			}
			if tc.format == frame.Mono16k {
				code, res := u.request(d, "INVITE", "application/sdp", offerSDP(rtpAddr(u), "0 8"))
				if code != 200 || !strings.Contains(res, "RTP/AVP 0\r\n") {
					t.Errorf("re-INVITE without G.722 answered %d:\n%s\nwant 200 with PCMU", code, res)
				}
				if code == 200 {
					u.ack(d, "")
				}
				code, res = u.request(d, "INVITE", "application/sdp", offerSDP(rtpAddr(u), "9"))
				if code != 200 || !strings.Contains(res, "RTP/AVP 9\r\n") {
					t.Errorf("re-INVITE with G.722 answered %d:\n%s", code, res)
				}
				if code == 200 {
					u.ack(d, "")
				}
			}
			if code, _ := u.request(d, "BYE", "", ""); code != 200 {
				t.Errorf("BYE answered %d", code)
			}
			select {
			case <-r.done:
			case <-time.After(5 * time.Second):
				t.Fatal("session still running after BYE")
			}
		})
	}
}

func sdpDirection(res string) Direction {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		if strings.Contains(res, "a="+string(d)+"\r\n") {
			return d
		}
	}
	return ""
}

// Hold and unhold by re-INVITE are answered with the direction that
// answers the offer, an empty re-INVITE gets an offer, a re-INVITE voiced
// cannot accept gets 488, and none of them ends the call; keys sent by
// SIP INFO reach the pipeline.
func TestReinviteHoldAndInfo(t *testing.T) {
	fa := newFactory()
	s, addr := startServer(t, Config{DTMFPause: 200 * time.Millisecond}, fa.run)
	u := newRawUAC(t, addr)
	d := u.dial("demo")
	r := <-fa.started
	rtpAddr := u.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	held := netip.AddrPortFrom(netip.IPv4Unspecified(), rtpAddr.Port())
	for _, step := range []struct {
		name, body string
		code       int
		dir        Direction
	}{
		{"hold sendonly", offerSDP(rtpAddr, "0", "a=sendonly"), 200, RecvOnly},
		{"unhold", offerSDP(rtpAddr, "0", "a=sendrecv"), 200, SendRecv},
		{"hold inactive", offerSDP(rtpAddr, "0", "a=inactive"), 200, Inactive},
		{"hold RFC 2543", offerSDP(held, "0"), 200, Inactive},
		{"no common codec", offerSDP(rtpAddr, "18", "a=rtpmap:18 G729/8000"), 488, ""},
		{"unhold again", offerSDP(rtpAddr, "0"), 200, SendRecv},
		{"empty re-INVITE", "", 200, SendRecv},
	} {
		ctype := "application/sdp"
		if step.body == "" {
			ctype = ""
		}
		code, res := u.request(d, "INVITE", ctype, step.body)
		if code != step.code {
			t.Fatalf("%s: answered %d, want %d\n%s", step.name, code, step.code, res)
		}
		if code == 200 {
			if got := sdpDirection(res); got != step.dir {
				t.Errorf("%s: answer direction %q, want %q\n%s", step.name, got, step.dir, res)
			}
			answer := ""
			if step.body == "" {
				answer = offerSDP(rtpAddr, "0")
			}
			u.ack(d, answer)
		}
		if s.Sessions() != 1 {
			t.Fatalf("%s: %d sessions", step.name, s.Sessions())
		}
	}
	for _, key := range []string{"4", "2"} {
		if code, _ := u.request(d, "INFO", "application/dtmf-relay", "Signal="+key+"\nDuration=160\n"); code != 200 {
			t.Fatalf("INFO answered %d", code)
		}
	}
	if code, _ := u.request(d, "INFO", "text/plain", "hello"); code != 415 {
		t.Errorf("INFO text/plain answered %d, want 415", code)
	}
	time.Sleep(400 * time.Millisecond) // the entry ends on the pause
	if code, _ := u.request(d, "BYE", "", ""); code != 200 {
		t.Fatalf("BYE answered %d", code)
	}
	<-r.done
	_, digits, texts := r.snapshot()
	if digits != "42" || len(texts) != 1 || texts[0] != "DTMF: 42" {
		t.Errorf("keys %q, transcripts %q; want 42 and [DTMF: 42]", digits, texts)
	}
	if !errors.Is(r.err, ErrHangup) {
		t.Errorf("ended with %v", r.err)
	}
}

// The dialed user part picks the route's factory; others get the default.
func TestRoutesByDialedUser(t *testing.T) {
	def, billing := newFactory(), newFactory()
	_, addr := startServer(t, Config{Routes: map[string]transport.Factory{"billing": billing.run}}, def.run)
	u := newRawUAC(t, addr)
	for _, user := range []string{"billing", "sales", "billing"} {
		d := u.dial(user)
		if code, _ := u.request(d, "BYE", "", ""); code != 200 {
			t.Fatalf("BYE answered %d", code)
		}
		// The BYE may overtake the ACK: the call still ends at once.
		fa := def
		if user == "billing" {
			fa = billing
		}
		fa.mu.Lock()
		r := fa.sessions[len(fa.sessions)-1]
		fa.mu.Unlock()
		select {
		case <-r.done:
		case <-time.After(time.Second):
			t.Fatalf("%s: session still running a second after the BYE", user)
		}
		// The dialed and calling user parts are the session's metadata.
		if md := r.s.Metadata; md["sip.to"] != user || md["sip.from"] != "uac" {
			t.Errorf("%s: metadata %v", user, md)
		}
	}
	if b, o := len(billing.started), len(def.started); b != 2 || o != 1 {
		t.Errorf("billing route ran %d calls and the default %d, want 2 and 1", b, o)
	}
}

// A caller hanging up while the bot speaks ends the session at once: the
// rest of the answer is not played to nobody.
func TestByeMidSentence(t *testing.T) {
	fa := newFactory()
	_, addr := startServer(t, Config{DTMFPause: 10 * time.Millisecond}, fa.run)
	u := newRawUAC(t, addr)
	d := u.dial("demo")
	r := <-fa.started
	// Ten keys: ten answers of 600 ms queued, six seconds of speech.
	for _, k := range "1234567890" {
		if code, _ := u.request(d, "INFO", "application/dtmf", string(k)); code != 200 {
			t.Fatalf("INFO answered %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Wait until the bot's voice reaches the caller, then hang up.
	buf := make([]byte, 2048)
	u.rtp.SetReadDeadline(time.Now().Add(5 * time.Second))
	loud := false
	for !loud {
		n, err := u.rtp.Read(buf)
		if err != nil {
			t.Fatal("no audio from the bot")
		}
		if n > 12 && buf[12] != 0xFF {
			loud = true
		}
	}
	start := time.Now()
	if code, _ := u.request(d, "BYE", "", ""); code != 200 {
		t.Fatalf("BYE answered %d", code)
	}
	select {
	case <-r.done:
	case <-time.After(2 * time.Second):
		t.Fatal("session still running 2 s after the BYE")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("session took %v to end after the BYE", took)
	}
	if !errors.Is(r.err, ErrHangup) {
		t.Errorf("ended with %v", r.err)
	}
	// RTP stops with the call.
	time.Sleep(100 * time.Millisecond)
	u.rtp.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		if _, err := u.rtp.Read(buf); err != nil {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("RTP still flowing after the BYE")
		}
	}
}

// A caller who hangs up before the answer (CANCEL) gets 487 for the
// INVITE, and the session that was being built ends without a 200 OK.
func TestCancelBeforeAnswer(t *testing.T) {
	fa := newFactory()
	slow := func(ctx context.Context, s *transport.Session) error {
		time.Sleep(500 * time.Millisecond) // a pipeline slow to build
		return fa.run(ctx, s)
	}
	srv, addr := startServer(t, Config{}, slow)
	u := newRawUAC(t, addr)
	rtpAddr := u.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	callID, tag := u.invite("demo", offerSDP(rtpAddr, "0"))
	for code := 0; code != 180; {
		if code, _ = u.response(callID, 2*time.Second); code == 0 || code >= 200 {
			t.Fatalf("answer %d before 180 Ringing", code)
		}
	}
	u.send(fmt.Sprintf(`CANCEL sip:demo@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-1;rport
Max-Forwards: 70
From: <sip:uac@127.0.0.1>;tag=%s
To: <sip:demo@%s>
Call-ID: %s
CSeq: 1 CANCEL
Content-Length: 0

`, addr, u.local(), tag, tag, addr, callID))
	got := map[string]int{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && (got["CANCEL"] == 0 || got["INVITE"] == 0) {
		code, res := u.response(callID, time.Until(deadline))
		if code == 0 {
			break
		}
		for _, m := range []string{"CANCEL", "INVITE"} {
			if strings.Contains(res, "CSeq: 1 "+m+"\r\n") && code >= 200 {
				got[m] = code
			}
		}
	}
	if got["CANCEL"] != 200 || got["INVITE"] != 487 {
		t.Errorf("CANCEL answered %d and INVITE %d, want 200 and 487", got["CANCEL"], got["INVITE"])
	}
	var r *record
	select {
	case r = <-fa.started:
	case <-time.After(2 * time.Second):
		t.Fatal("the session was never started")
	}
	select {
	case <-r.done:
	case <-time.After(2 * time.Second):
		t.Fatal("session still running after the CANCEL")
	}
	if !errors.Is(r.err, ErrHangup) {
		t.Errorf("session ended with %v, want %v", r.err, ErrHangup)
	}
	deadline = time.Now().Add(time.Second)
	for srv.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("%d sessions after the CANCEL", n)
	}
}
