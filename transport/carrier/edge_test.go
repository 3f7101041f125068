package carrier

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/transport"
)

type edge struct {
	fa  *factory
	api *fakeAPI
	url string
	adm *transport.Admission
	h   *Handler
}

func newEdge(t *testing.T, w wire) *edge {
	t.Helper()
	for k, v := range w.setenv {
		if k == "VONAGE_PRIVATE_KEY" {
			v = testKeyPEM()
		}
		t.Setenv(k, v)
	}
	e := &edge{fa: newFactory(), api: newFakeAPI(t), adm: transport.NewAdmission(4)}
	h := NewHandler(w.v, Config{
		Admission: e.adm,
		API:       API{BaseURL: e.api.srv.URL},
		// No idle connections to the fake API, which the goroutine
		// count would see.
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		DTMFPause:  300 * time.Millisecond,
		MarkWait:   2 * time.Second,
		Settle:     300 * time.Millisecond,
	}, e.fa.run)
	e.h = h
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.adm.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return e
}

func (e *edge) record(t *testing.T) *record {
	t.Helper()
	select {
	case r := <-e.fa.runs:
		return r
	case <-time.After(readTimeout):
		t.Fatal("the edge never ran a session")
	}
	return nil
}

// A whole call per vendor through the edge and a fake pipeline: caller
// audio reaches the pipeline at 16 kHz, a keypad entry is answered, marks
// are echoed, the caller barging in makes the edge send the carrier's
// clear, and the agent ending the call plays the goodbye out, waits for
// its mark and hangs up through the carrier's REST API.
func TestCallRoundTrip(t *testing.T) {
	for _, w := range wires() {
		t.Run(w.v.Name, func(t *testing.T) {
			e := newEdge(t, w)
			c := dialCarrier(t, e.url, w)
			r := e.record(t)

			c.speak(100*time.Millisecond, 100)
			waitFor(t, "caller audio", func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				return r.audio >= 1200 // most of 100 ms at 16 kHz, after the resampler's delay
			})

			// A keypad entry ended by '#' is one typed transcript.
			c.keys("12#")
			if n := c.answer(); n < w.rate/5 {
				t.Errorf("answer of %d samples, want 300 ms at %d Hz", n, w.rate)
			}

			// Barge-in: the long answer is cleared.
			c.keys("9#")
			for got := 0; got < 3; {
				if o := c.next(); o.kind == "media" {
					got++
				} else {
					t.Fatalf("got %s before the long answer's audio", o.kind)
				}
			}
			c.speak(60*time.Millisecond, 20000)
			for {
				o := c.next()
				if o.kind == "clear" {
					break
				}
				if o.kind != "media" {
					t.Fatalf("got %s waiting for clear", o.kind)
				}
			}
			c.speak(40*time.Millisecond, 100)
			select {
			case o := <-c.outs:
				t.Fatalf("edge sent %s after clear", o.kind)
			case <-time.After(300 * time.Millisecond):
			}

			// The agent ends the call: goodbye, mark, hang-up, close.
			c.keys("0#")
			if n := c.answer(); n == 0 {
				t.Error("no goodbye audio")
			}
			select {
			case <-c.gone:
			case <-time.After(readTimeout):
				t.Fatal("edge did not close the stream after the call ended")
			}
			<-r.done
			if r.err != nil {
				t.Errorf("session ended with %v, want a normal end", r.err)
			}
			r.mu.Lock()
			keys := string(r.keys)
			r.mu.Unlock()
			if keys != "12#9#0#" {
				t.Errorf("DTMF frames %q, want 12#9#0#", keys)
			}
			if r.badFmt != (frame.Format{}) {
				t.Errorf("pipeline got audio in %+v", r.badFmt)
			}
			if got, want := r.transcripts(), []string{"DTMF: 12#", "DTMF: 9#", "DTMF: 0#"}; !reflect.DeepEqual(got, want) {
				t.Errorf("typed transcripts %q, want %q", got, want)
			}
			calls := e.api.calls()
			if w.hangup.method == "" {
				if len(calls) != 0 {
					t.Errorf("REST calls %+v for a vendor without call control", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("REST calls %+v, want one hang-up", calls)
			}
			got := calls[0]
			if w.v.Name == "vonage" {
				checkJWT(t, got.auth, "app-1")
				got.auth = ""
			}
			if got != w.hangup {
				t.Errorf("hang-up request\n got %+v\nwant %+v", got, w.hangup)
			}
		})
	}
}

// The caller hanging up ends the session at once, without a REST call;
// keys without '#' reach the agent after a pause.
func TestCallerHangsUp(t *testing.T) {
	for _, w := range wires() {
		t.Run(w.v.Name, func(t *testing.T) {
			e := newEdge(t, w)
			c := dialCarrier(t, e.url, w)
			r := e.record(t)
			c.keys("42")
			waitFor(t, "the keys after a pause", func() bool { return len(r.transcripts()) == 1 })
			if got := r.transcripts()[0]; got != "DTMF: 42" {
				t.Errorf("transcript %q, want DTMF: 42", got)
			}
			c.answer()
			if w.stop != "" {
				c.sendText(w.stop)
			} else {
				c.ws.Close() // Plivo and Vonage just close the socket
			}
			select {
			case <-r.done:
			case <-time.After(readTimeout):
				t.Fatal("session did not end when the caller hung up")
			}
			if !errors.Is(r.err, transport.ErrClientGone) {
				t.Errorf("session ended with %v, want ErrClientGone", r.err)
			}
			time.Sleep(50 * time.Millisecond)
			if calls := e.api.calls(); len(calls) != 0 {
				t.Errorf("REST calls %+v after the caller hung up", calls)
			}
		})
	}
}

// A stream that never starts is refused with a policy close, and a full
// server answers 503.
func TestStartTimeoutAndAdmission(t *testing.T) {
	w := wires()[0]
	w.start = nil
	fa := newFactory()
	adm := transport.NewAdmission(1)
	h := NewHandler(Twilio, Config{Admission: adm, StartTimeout: 200 * time.Millisecond}, fa.run)
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c := dialCarrier(t, url, w)
	waitFor(t, "admission", func() bool { return adm.Sessions() == 1 })
	if _, resp, err := dialNoFail(url); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("second call: err %v, want HTTP 503", err)
	}
	select {
	case <-c.gone:
	case <-time.After(readTimeout):
		t.Fatal("a stream without start was not closed")
	}
	select {
	case <-fa.runs:
		t.Error("a session ran without a start")
	default:
	}
	waitFor(t, "release", func() bool { return adm.Sessions() == 0 })
}

// Shutting the server down ends a live call: the carrier is told to hang
// up, and the stream is closed.
func TestShutdownHangsUp(t *testing.T) {
	w := wires()[0]
	e := newEdge(t, w)
	c := dialCarrier(t, e.url, w)
	r := e.record(t)
	c.keys("7#")
	c.answer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.adm.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-r.done
	if !errors.Is(r.err, transport.ErrShuttingDown) {
		t.Errorf("session ended with %v, want ErrShuttingDown", r.err)
	}
	select {
	case <-c.gone:
	case <-time.After(readTimeout):
		t.Fatal("stream not closed on shutdown")
	}
	if calls := e.api.calls(); len(calls) != 1 || calls[0] != w.hangup {
		t.Errorf("REST calls %+v, want [%+v]", calls, w.hangup)
	}
}

// Without credentials a hang-up fails with ErrNoCredentials naming the
// variables, and sends nothing; a refusal from the API is ErrHangup.
func TestHangupErrors(t *testing.T) {
	api := newFakeAPI(t)
	call := Call{CallID: "CA9", AccountID: "AC9"}
	t.Setenv("PLIVO_AUTH_ID", "")
	t.Setenv("PLIVO_AUTH_TOKEN", "")
	err := Plivo.Hangup(context.Background(), http.DefaultClient, API{BaseURL: api.srv.URL}, call)
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN") {
		t.Errorf("Plivo without credentials: %v", err)
	}
	t.Setenv("MY_TOKEN", "tok")
	// Twilio's account comes from the start message when the variable is unset.
	if err := Twilio.Hangup(context.Background(), http.DefaultClient, API{BaseURL: api.srv.URL, UserEnv: "MY_SID", SecretEnv: "MY_TOKEN"}, call); err != nil {
		t.Fatal(err)
	}
	if got := api.calls(); len(got) != 1 || got[0].path != "/2010-04-01/Accounts/AC9/Calls/CA9.json" || got[0].auth != "Basic QUM5OnRvaw==" {
		t.Errorf("REST calls %+v", got)
	}
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such call", http.StatusNotFound)
	}))
	defer refuse.Close()
	t.Setenv("TELNYX_API_KEY", "k")
	err = Telnyx.Hangup(context.Background(), http.DefaultClient, API{BaseURL: refuse.URL}, call)
	if !errors.Is(err, ErrHangup) || !strings.Contains(err.Error(), "404") {
		t.Errorf("refused hang-up: %v", err)
	}
}

// No goroutine outlives a call, however it ends: the caller hanging up,
// the carrier dropping the connection mid-answer or before the start, and
// the agent ending the call (hang-up included).
func TestNoGoroutineLeft(t *testing.T) {
	w := wires()[0]
	e := newEdge(t, w)
	end := func(c *caller) {
		t.Helper()
		select {
		case <-c.gone:
		case <-time.After(readTimeout):
			t.Fatal("stream not closed")
		}
		c.ws.Close()
		waitFor(t, "the call to end", func() bool { return e.adm.Sessions() == 0 })
	}
	warm := dialCarrier(t, e.url, w)
	e.record(t)
	warm.sendText(w.stop)
	end(warm)
	base := runtime.NumGoroutine()

	for _, how := range []string{"stop", "drop mid-answer", "drop before start", "agent ends"} {
		ww := w
		if how == "drop before start" {
			ww.start = nil
		}
		c := dialCarrier(t, e.url, ww)
		switch how {
		case "stop":
			e.record(t)
			c.sendText(w.stop)
		case "drop mid-answer":
			e.record(t)
			c.keys("9#")
			if o := c.next(); o.kind != "media" {
				t.Fatalf("got %s, want the answer's audio", o.kind)
			}
			c.ws.NetConn().Close()
		case "drop before start":
			waitFor(t, "admission", func() bool { return e.adm.Sessions() == 1 })
			c.ws.NetConn().Close()
		case "agent ends":
			e.record(t)
			c.keys("0#")
			c.answer()
		}
		end(c)
	}
	deadline := time.Now().Add(readTimeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
