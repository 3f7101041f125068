package rtvi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

func TestStartHandler(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		webrtc     bool
		status     int
		want       string // keys of the answer, sorted
	}{
		{"websocket", `{"transport":"websocket","body":{"a":1}}`, false, 200, "[wsUrl]"},
		{"websocket token", `{"transport":"websocket"}`, false, 200, "[token wsUrl]"},
		{"webrtc", `{"transport":"webrtc","body":{"a":1}}`, true, 200, "[iceConfig sessionId]"},
		{"default webrtc", `{}`, true, 200, "[iceConfig sessionId]"},
		{"default websocket", `{"body":{}}`, false, 200, "[wsUrl]"},
		{"webrtc not served", `{"transport":"webrtc"}`, false, 400, "[info]"},
		{"unknown", `{"transport":"daily"}`, true, 400, "[info]"},
		{"bad json", `{"transport":`, true, 400, "[info]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adm := transport.NewAdmission(2)
			reg := NewRegistry(adm, time.Minute)
			cfg := StartConfig{Registry: reg, WebRTC: tc.webrtc, ICEServers: []ICEServer{{URLs: []string{"stun:stun.example.com"}}}}
			if strings.Contains(tc.name, "token") {
				cfg.Token = func(*http.Request) string { return "tok" }
			}
			rec := httptest.NewRecorder()
			StartHandler(cfg).ServeHTTP(rec, httptest.NewRequest("POST", "http://voiced.test/start", strings.NewReader(tc.body)))
			var got map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			if rec.Code != tc.status || sortedString(keys) != tc.want {
				t.Fatalf("answered %d %s, want %d with %s", rec.Code, rec.Body, tc.status, tc.want)
			}
			if rec.Code != 200 {
				if adm.Sessions() != 0 || reg.Pending() != 0 {
					t.Errorf("a refused start holds a session")
				}
				return
			}
			if adm.Sessions() != 1 || reg.Pending() != 1 {
				t.Errorf("admitted %d, pending %d, want 1 and 1", adm.Sessions(), reg.Pending())
			}
			var id string
			if u, ok := got["wsUrl"]; ok {
				var s string
				json.Unmarshal(u, &s)
				_, id, _ = strings.Cut(s, "?session=")
				if !strings.HasPrefix(s, "ws://voiced.test/rtvi/ws?session=") {
					t.Errorf("wsUrl %s", s)
				}
			} else {
				json.Unmarshal(got["sessionId"], &id)
				if string(got["iceConfig"]) != `{"iceServers":[{"urls":["stun:stun.example.com"]}]}` {
					t.Errorf("iceConfig %s", got["iceConfig"])
				}
			}
			kind := TransportWebSocket
			if _, ok := got["sessionId"]; ok {
				kind = TransportWebRTC
			}
			if _, ok := reg.Lookup(id); !ok {
				t.Fatalf("start %q not registered", id)
			}
			s, tk, err := reg.Claim(id, kind)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.body, `"body":{"a":1}`) && string(s.Body) != `{"a":1}` {
				t.Errorf("body %s", s.Body)
			}
			if _, _, err := reg.Claim(id, kind); !errors.Is(err, ErrNoStart) {
				t.Errorf("second claim: %v", err)
			}
			tk.Release()
			if adm.Sessions() != 0 {
				t.Errorf("released ticket still counted")
			}
		})
	}
}

func sortedString(s []string) string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestStartFull(t *testing.T) {
	adm := transport.NewAdmission(1)
	reg := NewRegistry(adm, time.Minute)
	h := StartHandler(StartConfig{Registry: reg})
	for i, want := range []int{200, 503} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/start", strings.NewReader(`{}`)))
		if rec.Code != want {
			t.Errorf("start %d: %d %s, want %d", i, rec.Code, rec.Body, want)
		}
	}
	// Shutdown releases the pending start at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := adm.Shutdown(ctx); err != nil || reg.Pending() != 0 {
		t.Errorf("shutdown: %v, %d pending", err, reg.Pending())
	}
}

func TestStartExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		adm := transport.NewAdmission(1)
		reg := NewRegistry(adm, 30*time.Second)
		s, err := reg.Add(TransportWebSocket, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(29 * time.Second)
		if _, ok := reg.Lookup(s.ID); !ok || adm.Sessions() != 1 {
			t.Fatal("start gone before its TTL")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, _, err := reg.Claim(s.ID, TransportWebSocket); !errors.Is(err, ErrNoStart) || adm.Sessions() != 0 {
			t.Errorf("after the TTL: claim %v, %d admitted", err, adm.Sessions())
		}
	})
}

func TestCORS(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	h := CORS([]string{"http://app.test:8080"}, nil, next)
	for _, tc := range []struct {
		method, origin string
		status         int
		acao           string
	}{
		{"OPTIONS", "http://app.test:8080", 204, "http://app.test:8080"},
		{"POST", "http://app.test:8080", 200, "http://app.test:8080"},
		{"OPTIONS", "http://evil.test", 403, ""},
		{"POST", "http://evil.test", 403, ""},
		{"POST", "", 200, ""},
		{"OPTIONS", "", 400, ""},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, "http://voiced.test/start", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		h.ServeHTTP(rec, r)
		if rec.Code != tc.status || rec.Header().Get("Access-Control-Allow-Origin") != tc.acao {
			t.Errorf("%s from %q: %d, ACAO %q; want %d, %q", tc.method, tc.origin, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tc.status, tc.acao)
		}
		if tc.status == 204 && !strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight allows headers %q", rec.Header().Get("Access-Control-Allow-Headers"))
		}
	}
}
