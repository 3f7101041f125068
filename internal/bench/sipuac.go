package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/sdp/v3"

	"github.com/voiced-dev/voiced/audio"
)

// audibleLevel is -40 dBFS, the level above which a sample counts as
// voice, as the WebSocket end-to-end measurement counts it
// (bench/results/README.md, section 5).
var audibleLevel = int(32768 * math.Pow(10, -40.0/20))

// audible reports whether any sample of pcm is above audibleLevel.
func audible(pcm []int16) bool {
	return slices.ContainsFunc(pcm, func(v int16) bool { return max(int(v), -int(v)) > audibleLevel })
}

// sipCaller is the caller's end of one SIP call over UDP (RFC 3261), written
// out by hand and kept to what the voice-to-voice measurement needs: an
// INVITE offering PCMU alone, the ACK, RTP both ways (RFC 3550) and the BYE.
// It does not retransmit: it runs on loopback. One goroutine uses it, apart
// from its RTP reader.
type sipCaller struct {
	sig, rtp *net.UDPConn
	server   netip.AddrPort // SIP
	media    netip.AddrPort // the server's RTP address, from its answer
	callID   string
	tag, to  string // our From tag and the 200 OK's To header
	seq      uint16
	ts, ssrc uint32

	mu    sync.Mutex
	since time.Time // audible audio is looked for from here
	heard time.Time // its first arrival after since
	early int       // audible packets before since (while the caller spoke)
	got   chan struct{}
	done  chan struct{} // the RTP reader ended
}

// errNoAnswer means the server did not answer the INVITE with a 200 OK.
var errNoAnswer = errors.New("bench: the INVITE was not answered")

// callSIP places a call to user at server and returns it once the 200 OK
// is acknowledged, with the time from sending the INVITE to reading the
// 200 OK.
func callSIP(ctx context.Context, server netip.AddrPort, user string) (*sipCaller, time.Duration, error) {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	sig, err := net.ListenUDP("udp", lo)
	if err != nil {
		return nil, 0, fmt.Errorf("bench: sip caller: %w", err)
	}
	rtp, err := net.ListenUDP("udp", lo)
	if err != nil {
		sig.Close()
		return nil, 0, fmt.Errorf("bench: sip caller: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	c := &sipCaller{sig: sig, rtp: rtp, server: server, callID: fmt.Sprintf("%x@voiced-bench", id),
		tag: fmt.Sprintf("%x", id[:4]), ssrc: binary.BigEndian.Uint32(id[4:]), got: make(chan struct{}, 1), done: make(chan struct{})}
	rtpAddr := rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	offer := strings.Join([]string{"v=0", "o=bench 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP 0", rtpAddr.Port()), "a=rtpmap:0 PCMU/8000", "a=ptime:20", "a=sendrecv", ""}, "\r\n")
	start := time.Now()
	c.request("INVITE", user, 1, "Content-Type: application/sdp\r\n", offer)
	deadline, _ := ctx.Deadline()
	if d := time.Now().Add(10 * time.Second); deadline.IsZero() || d.Before(deadline) {
		deadline = d
	}
	for {
		code, msg, err := c.response(deadline)
		if err != nil {
			c.close()
			return nil, 0, err
		}
		if code < 200 {
			continue
		}
		took := time.Since(start)
		if code != 200 {
			c.close()
			return nil, 0, fmt.Errorf("%w: %d", errNoAnswer, code)
		}
		head, body, _ := strings.Cut(msg, "\r\n\r\n")
		c.to = header(head, "To", "t")
		if c.media, err = parseAnswer([]byte(body)); err != nil {
			c.close()
			return nil, 0, err
		}
		c.request("ACK", user, 1, "", "")
		go c.listen()
		return c, took, nil
	}
}

// request sends a request of this call; body is SDP when set.
func (c *sipCaller) request(method, user string, cseq int, extra, body string) {
	to := c.to
	if to == "" {
		to = fmt.Sprintf("To: <sip:%s@%s>", user, c.server)
	}
	local := c.sig.LocalAddr().String()
	msg := fmt.Sprintf("%s sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:bench@127.0.0.1>;tag=%s\r\n%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:bench@%s>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, user, c.server, local, c.tag, strings.ToLower(method), c.tag, to, c.callID, cseq, method, local, extra, len(body), body)
	c.sig.WriteToUDPAddrPort([]byte(msg), c.server)
}

// response reads the next response to this call until deadline; requests
// from the server are ignored.
func (c *sipCaller) response(deadline time.Time) (int, string, error) {
	buf := make([]byte, 8192)
	for {
		c.sig.SetReadDeadline(deadline)
		n, err := c.sig.Read(buf)
		if err != nil {
			return 0, "", fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		m := string(buf[:n])
		if !strings.HasPrefix(m, "SIP/2.0 ") || len(m) < 12 || header(m, "Call-ID", "i") != "Call-ID: "+c.callID {
			continue
		}
		code, err := strconv.Atoi(m[8:11])
		if err != nil {
			continue
		}
		return code, m, nil
	}
}

// header returns the first header line of msg named name or its compact
// form short, with its name written out in full.
func header(msg, name, short string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (strings.EqualFold(strings.TrimSpace(k), name) || strings.EqualFold(strings.TrimSpace(k), short)) {
			return name + ": " + strings.TrimSpace(v)
		}
	}
	return ""
}

// parseAnswer returns where the server receives RTP from its SDP answer
// (RFC 3264): the first audio stream's port, at its connection address or
// the session's. The answer must take PCMU (payload type 0), the only codec
// offered.
func parseAnswer(body []byte) (netip.AddrPort, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return netip.AddrPort{}, fmt.Errorf("bench: SDP answer: %w", err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		if m.MediaName.Port.Value <= 0 || m.MediaName.Port.Value > 65535 {
			return netip.AddrPort{}, errors.New("bench: SDP answer: the audio stream was refused")
		}
		if !slices.Contains(m.MediaName.Formats, "0") {
			return netip.AddrPort{}, fmt.Errorf("bench: SDP answer: formats %v, want PCMU (0)", m.MediaName.Formats)
		}
		ci := m.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		if ci == nil || ci.Address == nil {
			return netip.AddrPort{}, errors.New("bench: SDP answer: no connection address")
		}
		a, err := netip.ParseAddr(ci.Address.Address)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("bench: SDP answer: %w", err)
		}
		return netip.AddrPortFrom(a, uint16(m.MediaName.Port.Value)), nil
	}
	return netip.AddrPort{}, errors.New("bench: SDP answer: no audio stream")
}

// listen reads the server's RTP until the socket closes, noting the
// arrival of the first audible packet after since.
func (c *sipCaller) listen() {
	defer close(c.done)
	buf := make([]byte, 2048)
	var pcm []int16
	for {
		n, err := c.rtp.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		payload, ok := rtpPayload(buf[:n], 0)
		if !ok {
			continue
		}
		pcm = audio.DecodeULaw(pcm[:0], payload)
		if !audible(pcm) {
			continue
		}
		c.mu.Lock()
		switch {
		case c.since.IsZero() || now.Before(c.since):
			c.early++
		case c.heard.IsZero():
			c.heard = now
			select {
			case c.got <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// rtpPayload returns an RTP packet's payload if its payload type is pt.
func rtpPayload(p []byte, pt byte) ([]byte, bool) {
	if len(p) < 12 || p[0]>>6 != 2 || p[1]&0x7f != pt {
		return nil, false
	}
	off := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 { // header extension
		if len(p) < off+4 {
			return nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	end := len(p)
	if p[0]&0x20 != 0 && end > off { // padding
		end -= int(p[end-1])
	}
	if off > end {
		return nil, false
	}
	return p[off:end], true
}

// send writes one 20 ms PCMU packet.
func (c *sipCaller) send(ulaw []byte) {
	p := make([]byte, 12, 12+len(ulaw))
	p[0] = 0x80
	binary.BigEndian.PutUint16(p[2:], c.seq)
	binary.BigEndian.PutUint32(p[4:], c.ts)
	binary.BigEndian.PutUint32(p[8:], c.ssrc)
	c.rtp.WriteToUDPAddrPort(append(p, ulaw...), c.media)
	c.seq++
	c.ts += uint32(len(ulaw))
}

// turn speaks speech (8 kHz) in real time, 20 ms a packet, then silence
// until the first audible reply arrives or wait passes, then a breath more.
// It returns the time from sending the packet with the last audible sample
// to the arrival of the first audible reply packet, and how many audible
// packets came while the caller still spoke.
func (c *sipCaller) turn(ctx context.Context, speech []int16, wait time.Duration) (time.Duration, int, error) {
	tick := time.NewTicker(frameDur)
	defer tick.Stop()
	quiet := audio.EncodeULaw(nil, make([]int16, 160))
	pace := func(ulaw []byte) error {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.send(ulaw)
		return nil
	}
	var last time.Time
	for i := 0; i < len(speech); i += 160 {
		chunk := speech[i:min(i+160, len(speech))]
		if err := pace(audio.EncodeULaw(nil, chunk)); err != nil {
			return 0, 0, err
		}
		if audible(chunk) {
			last = time.Now()
		}
	}
	if last.IsZero() {
		return 0, 0, errors.New("bench: sip caller: the speech is silent")
	}
	c.mu.Lock()
	c.since = last
	c.mu.Unlock()
	end := time.Now().Add(wait)
	heard := false
	for !heard && time.Now().Before(end) {
		if err := pace(quiet); err != nil {
			return 0, 0, err
		}
		select {
		case <-c.got:
			heard = true
		default:
		}
	}
	for range 15 {
		if err := pace(quiet); err != nil {
			return 0, 0, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !heard {
		return 0, c.early, fmt.Errorf("bench: sip caller: no audible answer within %v", wait)
	}
	return c.heard.Sub(c.since), c.early, nil
}

// hangUp sends the BYE, waits for its 200 OK and closes the sockets.
func (c *sipCaller) hangUp(user string) error {
	defer c.close()
	c.request("BYE", user, 2, "", "")
	for {
		code, _, err := c.response(time.Now().Add(5 * time.Second))
		if err != nil {
			return fmt.Errorf("bench: sip caller: BYE: %w", err)
		}
		if code >= 200 {
			if code != 200 {
				return fmt.Errorf("bench: sip caller: BYE answered %d", code)
			}
			return nil
		}
	}
}

func (c *sipCaller) close() {
	c.sig.Close()
	c.rtp.Close()
}

// wsTurn is the WebSocket counterpart of sipCaller.turn: one session at
// 16 kHz that speaks speech in real time, 20 ms a message, then silence
// until the first audible reply, then says end. It returns the time from
// sending the message with the last audible sample to the arrival of the
// first audible reply message, and how many audible messages came while
// it spoke.
func wsTurn(ctx context.Context, url string, speech []int16, wait time.Duration) (time.Duration, int, error) {
	c, err := dialSoak(ctx, url, 0)
	if err != nil {
		return 0, 0, err
	}
	defer c.ws.Close()
	var mu sync.Mutex
	var since, heard time.Time
	early := 0
	got := make(chan struct{}, 1)
	var pcm []int16
	c.audio = func(at time.Time, b []byte) {
		pcm, _ = audio.DecodePCM16(pcm[:0], b)
		if !audible(pcm) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case since.IsZero() || at.Before(since):
			early++
		case heard.IsZero():
			heard = at
			got <- struct{}{}
		}
	}
	go c.read(false)
	if err := c.start(); err != nil {
		return 0, 0, fmt.Errorf("bench: ws turn: start: %w", err)
	}
	select {
	case <-c.ready:
	case <-c.done:
		return 0, 0, fmt.Errorf("bench: ws turn: closed before ready (%d %s)", c.closeCode, c.closeReason)
	case <-time.After(10 * time.Second):
		return 0, 0, errors.New("bench: ws turn: no ready within 10 s")
	}
	tick := time.NewTicker(frameDur)
	defer tick.Stop()
	send := func(pcm []int16) error {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		return c.ws.WriteMessage(websocket.BinaryMessage, audio.EncodePCM16(nil, pcm))
	}
	var lastVoice time.Time
	// Half a second of silence first, as the SIP caller sends.
	lead := append(make([]int16, 8000), speech...)
	for i := 0; i < len(lead); i += 320 {
		chunk := lead[i:min(i+320, len(lead))]
		if err := send(chunk); err != nil {
			return 0, 0, fmt.Errorf("bench: ws turn: %w", err)
		}
		if audible(chunk) {
			lastVoice = time.Now()
		}
	}
	mu.Lock()
	since = lastVoice
	mu.Unlock()
	quiet := make([]int16, 320)
	end := time.Now().Add(wait)
	answered := false
	for !answered && time.Now().Before(end) {
		if err := send(quiet); err != nil {
			return 0, 0, fmt.Errorf("bench: ws turn: %w", err)
		}
		select {
		case <-got:
			answered = true
		default:
		}
	}
	for range 15 {
		if err := send(quiet); err != nil {
			return 0, 0, fmt.Errorf("bench: ws turn: %w", err)
		}
	}
	c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"end"}`))
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	if !answered {
		return 0, early, fmt.Errorf("bench: ws turn: no audible answer within %v", wait)
	}
	return heard.Sub(since), early, nil
}
