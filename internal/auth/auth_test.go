package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	key    = "k-0123456789abcdef"
	now    = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
)

func guard(t *testing.T) *Guard {
	t.Helper()
	g, err := New(Config{Keys: []string{key}, Secret: secret, Open: []string{"/healthz"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mint(t *testing.T, tc TokenConfig) string {
	t.Helper()
	if tc.Secret == nil {
		tc.Secret = secret
	}
	if tc.Now.IsZero() {
		tc.Now = now
	}
	tok, err := Mint(tc)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sign(t *testing.T, m jwt.SigningMethod, k any, cl jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, cl).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	g := guard(t)
	good := mint(t, TokenConfig{Identity: "alice", Agent: "support", TTL: time.Minute})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "mallory", Audience: jwt.ClaimStrings{DefaultAudience},
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}}
	wrongAud := claims
	wrongAud.Audience = jwt.ClaimStrings{"livekit"}
	noExp := claims
	noExp.ExpiresAt = nil
	noSub := claims
	noSub.Subject = ""
	tampered := good[:len(good)-2] + "AA"
	if tampered == good {
		tampered = good[:len(good)-2] + "BB"
	}
	// alg "none", which some libraries accept unsigned.
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims)
	// RS256 token whose "key" is the HMAC secret's bytes read as a public
	// key would be the classic confusion; a valid RS256 signature must be
	// refused as well.
	rs := sign(t, jwt.SigningMethodRS256, rsaKey, claims)
	hs512 := sign(t, jwt.SigningMethodHS512, secret, claims)

	for _, tc := range []struct {
		name string
		cred string
		want Principal
		ok   bool
	}{
		{"key", key, Principal{Identity: "api-key", Key: true}, true},
		{"token", good, Principal{Identity: "alice", Agent: "support"}, true},
		{"hs256 signed here", sign(t, jwt.SigningMethodHS256, secret, claims), Principal{Identity: "mallory"}, true},
		{"wrong key", "k-0123456789abcdeX", Principal{}, false},
		{"key prefix", key[:len(key)-1], Principal{}, false},
		{"expired", mint(t, TokenConfig{Identity: "alice", TTL: time.Minute, Now: now.Add(-2 * time.Minute)}), Principal{}, false},
		{"not yet valid", mint(t, TokenConfig{Identity: "alice", TTL: time.Hour, Now: now.Add(time.Minute)}), Principal{}, false},
		{"bad signature", tampered, Principal{}, false},
		{"other secret", mint(t, TokenConfig{Secret: []byte(strings.Repeat("x", 32)), Identity: "alice", TTL: time.Minute}), Principal{}, false},
		{"alg none", none, Principal{}, false},
		{"alg RS256", rs, Principal{}, false},
		{"alg HS512", hs512, Principal{}, false},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, secret, wrongAud), Principal{}, false},
		{"no expiry", sign(t, jwt.SigningMethodHS256, secret, noExp), Principal{}, false},
		{"no subject", sign(t, jwt.SigningMethodHS256, secret, noSub), Principal{}, false},
		{"garbage", "a.b.c", Principal{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := g.Verify(tc.cred)
			if tc.ok {
				if err != nil || p != tc.want {
					t.Fatalf("Verify = %+v, %v; want %+v", p, err, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrBadCredential) || !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify = %+v, %v; want ErrBadCredential", p, err)
			}
		})
	}
}

func TestCredentialPlaces(t *testing.T) {
	tok := "abc.def.ghi"
	for _, tc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"header", func() *http.Request {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}},
		{"query", func() *http.Request { return httptest.NewRequest("GET", "/ws?token="+tok, nil) }},
		{"subprotocol", func() *http.Request {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.Header.Set("Sec-WebSocket-Protocol", "voiced, bearer."+tok)
			return r
		}},
	} {
		if got := Credential(tc.req()); got != tok {
			t.Errorf("%s: Credential = %q, want %q", tc.name, got, tok)
		}
	}
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Authorization", "Basic "+tok)
	if got := Credential(r); got != "" {
		t.Errorf("Basic scheme: Credential = %q, want none", got)
	}
}

func TestWrap(t *testing.T) {
	g := guard(t)
	var ran int
	var got Principal
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran++
		got, _ = FromContext(r.Context())
	}))
	do := func(target, cred string) int {
		r := httptest.NewRequest("GET", target, nil)
		if cred != "" {
			r.Header.Set("Authorization", "Bearer "+cred)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusUnauthorized {
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", target)
			}
		}
		return w.Code
	}
	if c := do("/ws", ""); c != http.StatusUnauthorized || ran != 0 {
		t.Fatalf("no credential: %d, handler ran %d times", c, ran)
	}
	if c := do("/webrtc/offer", "wrong-key-0123456789"); c != http.StatusUnauthorized || ran != 0 {
		t.Fatalf("bad credential: %d, handler ran %d times", c, ran)
	}
	if c := do("/healthz", ""); c != http.StatusOK || ran != 1 {
		t.Fatalf("open path: %d, handler ran %d times", c, ran)
	}
	if c := do("/healthz/x", ""); c != http.StatusUnauthorized || ran != 1 {
		t.Fatalf("open paths match exactly: %d", c)
	}
	tok := mint(t, TokenConfig{Identity: "bob", Agent: "sales", TTL: time.Minute})
	if c := do("/calls", tok); c != http.StatusOK || ran != 2 || got != (Principal{Identity: "bob", Agent: "sales"}) {
		t.Fatalf("token: %d, ran %d, principal %+v", c, ran, got)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		on   bool
		bad  bool
	}{
		{"zero is off", Config{}, false, false},
		{"key", Config{Keys: []string{key}}, true, false},
		{"secret", Config{Secret: secret}, true, false},
		{"short key", Config{Keys: []string{"short"}}, false, true},
		{"short secret", Config{Secret: []byte("short")}, false, true},
		{"required without credentials", Config{Required: true}, false, true},
	} {
		g, err := New(tc.cfg)
		if tc.bad {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%s: New err = %v, want ErrConfig", tc.name, err)
			}
			continue
		}
		if err != nil || g.Enabled() != tc.on {
			t.Errorf("%s: New = %v, Enabled %v; want %v", tc.name, err, g != nil && g.Enabled(), tc.on)
		}
	}
	if _, err := Mint(TokenConfig{Secret: secret, Identity: "a", TTL: 48 * time.Hour}); !errors.Is(err, ErrConfig) {
		t.Errorf("Mint with a 48h ttl: %v, want ErrConfig", err)
	}
}

// FuzzVerify feeds credentials as clients present them (API keys, access
// tokens, garbage) to Verify: it never panics, accepts only the key or a
// token with an identity, and every error wraps ErrBadCredential.
func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	key := "key-0123456789abcdef"
	now := time.Unix(1_800_000_000, 0)
	tok, err := Mint(TokenConfig{Secret: secret, Identity: "alice", Agent: "support", TTL: time.Hour, Now: now})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(key)
	f.Add(tok)
	f.Add(tok[:len(tok)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	g, err := New(Config{Keys: []string{key}, Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, c string) {
		p, err := g.Verify(c)
		if err != nil {
			if !errors.Is(err, ErrBadCredential) {
				t.Fatalf("Verify(%q): %v does not wrap ErrBadCredential", c, err)
			}
			return
		}
		if p.Key != (c == key) || p.Identity == "" {
			t.Fatalf("Verify(%q) accepted %+v", c, p)
		}
	})
}
