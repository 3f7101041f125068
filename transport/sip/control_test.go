package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// The RFC 4733 packets voiced sends for one key: 5 of the event with a
// growing duration, 3 end packets, then 3 of audio; all of the event with
// its first timestamp, the marker on the first only.
func TestToneOut(t *testing.T) {
	m := &media{dtmfPT: 101, codec: pcmu}
	done, err := m.queueTones("5#")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ts := uint32(1000)
	for i := 0; i < 2*(tonePackets+toneEnds+toneGap); i++ {
		payload, start, evTS, ok := m.nextTone(ts)
		if !ok {
			got = append(got, "audio")
		} else {
			ev, err := parseToneEvent(payload)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(ev.digit)+"/"+itoa(int(ev.duration))+"/"+map[bool]string{true: "E", false: "-"}[ev.end]+
				"/"+map[bool]string{true: "M", false: "-"}[start]+"/"+itoa(int(evTS)))
		}
		ts += tsStep
	}
	want := "5/160/-/M/1000 5/320/-/-/1000 5/480/-/-/1000 5/640/-/-/1000 5/800/-/-/1000 " +
		"5/800/E/-/1000 5/800/E/-/1000 5/800/E/-/1000 audio audio audio " +
		"#/160/-/M/2760 #/320/-/-/2760 #/480/-/-/2760 #/640/-/-/2760 #/800/-/-/2760 " +
		"#/800/E/-/2760 #/800/E/-/2760 #/800/E/-/2760 audio audio audio"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("packets\n%s\nwant\n%s", g, want)
	}
	select {
	case <-done:
	default:
		t.Error("done not closed after the last key")
	}
	if _, err := (&media{}).queueTones("1"); !errors.Is(err, ErrNoTelephoneEvent) {
		t.Errorf("no telephone-event: %v, want %v", err, ErrNoTelephoneEvent)
	}
}

func TestSipfragStatus(t *testing.T) {
	for body, want := range map[string]int{
		"SIP/2.0 200 OK\r\n": 200, "SIP/2.0 486 Busy Here": 486, "SIP/2.0 100 Trying\r\nVia: x\r\n": 100,
		"": 0, "HTTP/1.1 200 OK": 0, "SIP/2.0 abc": 0, "SIP/2.0 99 x": 0,
	} {
		if got, _ := sipfragStatus([]byte(body)); got != want {
			t.Errorf("sipfragStatus(%q) = %d, want %d", body, got, want)
		}
	}
}

// voiced calls voiced: the caller's agent presses 1 2 # (RFC 4733 out),
// the callee's pipeline gets the keys once each; the callee's bot answers
// with a tone and its agent ends the call, which happens only after the
// answer has played and the bot stayed quiet.
func TestControlDTMFAndEndCall(t *testing.T) {
	callee := newFactory()
	calleeSrv, calleeAddr := startServer(t, Config{RTPPortMin: 31000, RTPPortMax: 31999}, callee.run)
	sessions := make(chan *transport.Session, 1)
	ended := make(chan error, 1)
	caller, _ := startServer(t, Config{}, func(ctx context.Context, s *transport.Session) error {
		sessions <- s
		err := runSession(ctx, s, s.Input, s.Output)
		ended <- err
		return err
	})
	c, err := caller.Dial(DialRequest{To: "sip:demo@" + calleeAddr.String()})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, StateAnswered, 10*time.Second)
	s := <-sessions
	r := <-callee.started
	k, ok := caller.Control(s.ID)
	if !ok {
		t.Fatal("no Control for the caller's session")
	}
	if _, ok := caller.Control("nope"); ok {
		t.Error("Control of an unknown session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.SendDTMF(ctx, "12#"); err != nil {
		t.Fatal(err)
	}
	if err := k.SendDTMF(ctx, "9x"); !errors.Is(err, ErrBadDTMF) {
		t.Errorf("bad key: %v, want %v", err, ErrBadDTMF)
	}
	// The callee hears the keys, and its bot answers the entry.
	var kc *Control
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, digits, texts := r.snapshot()
		if digits == "12#" && len(texts) == 1 {
			if texts[0] != "DTMF: 12#" {
				t.Fatalf("callee's transcript %q", texts[0])
			}
			break
		}
		if time.Now().After(deadline) || len(digits) > 3 {
			t.Fatalf("callee got keys %q, texts %q; want 12# once", digits, texts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	kc, ok = calleeSrv.Control(r.s.ID)
	if !ok {
		t.Fatal("no Control for the callee's session")
	}
	for kc.c.out.spoken.Load() == 0 { // the bot's answer reached the output
		if time.Now().After(deadline) {
			t.Fatal("the callee's bot never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	kc.EndCall()
	kc.EndCall() // idempotent
	<-r.done
	took := time.Since(start)
	if !errors.Is(r.err, ErrCallEnded) {
		t.Errorf("callee's session ended with %v, want %v", r.err, ErrCallEnded)
	}
	// The 600 ms answer plays, then the bot must stay quiet for settle.
	if took < settle {
		t.Errorf("the call ended %v after end_call, before the answer played and settled", took)
	}
	<-c.Done()
	if end := c.Status(); end.Reason != ReasonRemoteHangup {
		t.Errorf("caller's call ended %+v, want %s", end, ReasonRemoteHangup)
	}
	<-ended
}

// A caller (sipp) is transferred: voiced sends REFER with the target,
// follows the NOTIFYs, and hangs up when the new call is answered; when the
// new call is busy, Transfer says so and the call goes on.
func TestSippTransfer(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		ok       bool
	}{
		{"testdata/uac_transfer.xml", true},
		{"testdata/uac_transfer_busy.xml", false},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			fa := newFactory()
			srv, addr := startServer(t, Config{}, fa.run)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sippErr := make(chan error, 1)
			var out string
			go func() {
				var err error
				out, err = sipp(t, ctx, addr, "u1", tc.scenario, "demo")
				sippErr <- err
			}()
			var r *record
			select {
			case r = <-fa.started:
			case err := <-sippErr:
				t.Fatalf("sipp ended first: %v\n%s", err, out)
			}
			var k *Control
			for {
				var ok bool
				if k, ok = srv.Control(r.s.ID); ok && k.c.acked != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			<-k.c.acked
			err := k.Transfer(ctx, "sip:sales@127.0.0.1:5999")
			if tc.ok && err != nil {
				t.Errorf("Transfer: %v", err)
			}
			if !tc.ok && (!errors.Is(err, ErrTransfer) || !strings.Contains(err.Error(), "486")) {
				t.Errorf("Transfer to a busy line: %v, want %v with 486", err, ErrTransfer)
			}
			if err := <-sippErr; err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			<-r.done
			want := ErrCallEnded
			if !tc.ok {
				want = ErrHangup
			}
			if !errors.Is(r.err, want) {
				t.Errorf("session ended with %v, want %v", r.err, want)
			}
		})
	}
}
