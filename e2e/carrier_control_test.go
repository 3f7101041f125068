package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/internal/testenv"
)

// TestE2ETwilioCallControl runs the call-control tools on a Twilio Media
// Streams call against the real server: a scripted agent answers a key
// with transfer_call (voiced updates the live call with <Dial> TwiML and
// does not hang up) or with end_call (voiced plays the goodbye, waits for
// its mark and completes the call). A local fake of Twilio's REST API
// checks each request.
func TestE2ETwilioCallControl(t *testing.T) {
	var mu sync.Mutex
	var rest []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		rest = append(rest, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(b)+" "+user+":"+pass)
		mu.Unlock()
		io.WriteString(w, `{"status":"in-progress"}`)
	}))
	defer api.Close()
	t.Setenv("TWILIO_ACCOUNT_SID", "ACe2e")
	t.Setenv("TWILIO_AUTH_TOKEN", "e2e-token")

	cfg, err := config.Parse([]byte(`
[sip.transfer_targets]
sales = "+15550123"

[[agents]]
name = "desk"
tools = ["transfer_call", "end_call"]
  [[agents.rules]]
  after_tool = '.*'
  reply = "Okay."
  [[agents.rules]]
  match = 'DTMF: 1#'
  reply = "Transferring you to sales now."
  tool = "transfer_call"
  args = '{"target": "sales"}'
  [[agents.rules]]
  match = 'DTMF: 2#'
  reply = "Thank you for calling, goodbye."
  tool = "end_call"
  [[agents.rules]]
  match = '.*'
  reply = "Press one for sales, or two to hang up."
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Carriers.Twilio.BaseURL = api.URL
	srv := testenv.Start(t, cfg, nil)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/carrier/twilio"
	call := "POST /2010-04-01/Accounts/ACe2e/Calls/CAe2e.json application/x-www-form-urlencoded "
	for _, tc := range []struct {
		name, key string
		want      string
	}{
		{"transfer", "1", call + url.Values{"Twiml": {"<Response><Dial>+15550123</Dial></Response>"}}.Encode() + " ACe2e:e2e-token"},
		{"end_call", "2", call + "Status=completed ACe2e:e2e-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			rest = nil
			mu.Unlock()
			c := dialCarrier(t, wsURL, twilioWire{})
			time.Sleep(300 * time.Millisecond)
			since := time.Now()
			c.key(tc.key)
			c.key("#")
			if !waitUntil(15*time.Second, func() bool { _, ok := c.audibleSince(since); return ok }) {
				t.Fatal("no spoken answer to the key")
			}
			select {
			case <-c.closed:
			case <-time.After(40 * time.Second):
				t.Fatal("voiced did not end the stream")
			}
			mu.Lock()
			got := append([]string(nil), rest...)
			mu.Unlock()
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("REST calls %q, want [%q]", got, tc.want)
			}
			// The answer before the call left was played out.
			c.mu.Lock()
			pending := len(c.marks)
			c.mu.Unlock()
			if pending != 0 {
				t.Errorf("%d marks not yet answered when the call left voiced", pending)
			}
		})
	}
}
