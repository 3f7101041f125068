package sip

import (
	"crypto/md5"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// The digest responses of the RFCs' worked examples.
func TestDigestResponseVectors(t *testing.T) {
	for _, tc := range []struct {
		name                                             string
		alg                                              string
		user, realm, pass, method, uri, nonce, cnonce, w string
	}{
		// RFC 2617 §3.5.
		{"rfc2617", "MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
			"dcd98b7102dd2f0e8b11d0f600bfb0c093", "0a4f113b", "6629fae49393a05397450978507c4ef1"},
		// RFC 7616 §3.9.1, MD5 and SHA-256.
		{"rfc7616-md5", "MD5", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
			"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			"8ca523f5e9506fed4657c9700eebdbec"},
		{"rfc7616-sha256", "SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
			"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := digestResponse(newHash(tc.alg), tc.user, tc.realm, tc.pass, tc.method, tc.uri, tc.nonce, 1, tc.cnonce, "auth")
			if got != tc.w {
				t.Errorf("response %s, want %s", got, tc.w)
			}
		})
	}
	// Without qop (RFC 2069 compatibility): H(HA1:nonce:HA2).
	h := md5.New()
	want := hashHex(h, hashHex(h, "a", "r", "p"), "n", hashHex(h, "INVITE", "sip:x@y"))
	if got := digestResponse(md5.New(), "a", "r", "p", "INVITE", "sip:x@y", "n", 0, "", ""); got != want {
		t.Errorf("no-qop response %s, want %s", got, want)
	}
}

func testInvite(t *testing.T) *sip.Request {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "demo", Host: "127.0.0.1", Port: 5060})
	return req
}

// authorize answers the challenge headers of g with the icholy/digest
// client (an implementation independent of the guard's), picking alg.
func authorize(t *testing.T, g *guard, req *sip.Request, hdrs []sip.Header, alg, user, pass string, nc int) {
	t.Helper()
	for _, h := range hdrs {
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("challenge %q: %v", h.Value(), err)
		}
		if chal.Algorithm != alg {
			continue
		}
		cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: req.Recipient.String(),
			Username: user, Password: pass, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		name := "Authorization"
		if g.proxy {
			name = "Proxy-Authorization"
		}
		req.RemoveHeader(name)
		req.AppendHeader(sip.NewHeader(name, cred.String()))
		return
	}
	t.Fatalf("no %s challenge in %v", alg, hdrs)
}

func TestGuard(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	t.Run("open", func(t *testing.T) {
		g, err := newGuard(Auth{})
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := g.check(testInvite(t), local); v != admitted {
			t.Errorf("verdict %v, want admitted", v)
		}
	})
	t.Run("allowlist", func(t *testing.T) {
		allow, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"})
		if err != nil {
			t.Fatal(err)
		}
		g, _ := newGuard(Auth{Allow: allow})
		for addr, want := range map[string]verdict{
			"10.1.2.3": admitted, "192.0.2.7": admitted, "192.0.2.8": forbidden, "127.0.0.1": forbidden,
			"2001:db8::1": admitted, "::ffff:10.9.9.9": admitted, "2001:db9::1": forbidden,
		} {
			if v, _ := g.check(testInvite(t), netip.MustParseAddr(addr)); v != want {
				t.Errorf("%s: verdict %v, want %v", addr, v, want)
			}
		}
		if v, _ := g.check(testInvite(t), netip.Addr{}); v != forbidden {
			t.Errorf("unknown source: verdict %v, want forbidden", v)
		}
		if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
			t.Error("ParsePrefixes accepted 10.0.0.0/33")
		}
	})
	for _, proxy := range []bool{false, true} {
		for _, alg := range []string{"SHA-256", "MD5"} {
			name := alg
			if proxy {
				name += "/proxy"
			}
			t.Run(name, func(t *testing.T) {
				now := time.Unix(1_800_000_000, 0)
				g, err := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}, Proxy: proxy, Algorithms: []string{"SHA-256", "MD5"}})
				if err != nil {
					t.Fatal(err)
				}
				g.now = func() time.Time { return now }
				req := testInvite(t)
				v, _ := g.check(req, local)
				if v != challenge {
					t.Fatalf("no credentials: verdict %v, want challenge", v)
				}
				code, _, hdrs := g.challenges(false)
				wantCode, wantHdr := 401, "WWW-Authenticate"
				if proxy {
					wantCode, wantHdr = 407, "Proxy-Authenticate"
				}
				if code != wantCode || len(hdrs) != 2 || hdrs[0].Name() != wantHdr ||
					!strings.Contains(hdrs[0].Value(), "algorithm=SHA-256") || !strings.Contains(hdrs[1].Value(), "algorithm=MD5") {
					t.Fatalf("challenge %d %v, want %d with %s SHA-256 then MD5", code, hdrs, wantCode, wantHdr)
				}

				authorize(t, g, req, hdrs, alg, "pbx", "wrong", 1)
				if v, _ := g.check(req, local); v != challenge {
					t.Errorf("wrong password: verdict %v, want challenge", v)
				}
				authorize(t, g, req, hdrs, alg, "nobody", "s3cret", 1)
				if v, _ := g.check(req, local); v != challenge {
					t.Errorf("unknown user: verdict %v, want challenge", v)
				}
				authorize(t, g, req, hdrs, alg, "pbx", "s3cret", 1)
				if v, user := g.check(req, local); v != admitted || user != "pbx" {
					t.Errorf("good credentials: verdict %v user %q, want admitted pbx", v, user)
				}
				if v, _ := g.check(req, local); v != stale {
					t.Errorf("replayed nonce count: verdict %v, want stale", v)
				}
				authorize(t, g, req, hdrs, alg, "pbx", "s3cret", 2)
				if v, _ := g.check(req, local); v != admitted {
					t.Errorf("next nonce count: verdict %v, want admitted", v)
				}
				// Credentials for the wrong method do not carry over.
				req.Method = sip.BYE
				if v, _ := g.check(req, local); v != challenge {
					t.Errorf("credentials of another method: verdict %v, want challenge", v)
				}
				req.Method = sip.INVITE

				now = now.Add(6 * time.Minute)
				authorize(t, g, req, hdrs, alg, "pbx", "s3cret", 3)
				if v, _ := g.check(req, local); v != stale {
					t.Errorf("old nonce: verdict %v, want stale", v)
				}
				_, _, hdrs = g.challenges(true)
				if !strings.Contains(hdrs[0].Value(), "stale=true") {
					t.Errorf("stale challenge %q lacks stale=true", hdrs[0].Value())
				}
				authorize(t, g, req, hdrs, alg, "pbx", "s3cret", 1)
				if v, _ := g.check(req, local); v != admitted {
					t.Errorf("fresh nonce: verdict %v, want admitted", v)
				}
			})
		}
	}
	t.Run("default MD5", func(t *testing.T) {
		g, _ := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}})
		_, _, hdrs := g.challenges(false)
		if len(hdrs) != 1 || !strings.Contains(hdrs[0].Value(), "algorithm=MD5") {
			t.Errorf("default challenge %v, want MD5 alone", hdrs)
		}
	})
	t.Run("forged nonce", func(t *testing.T) {
		g, _ := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}, Algorithms: []string{"MD5"}})
		other, _ := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}, Algorithms: []string{"MD5"}})
		_, _, hdrs := other.challenges(false) // signed with another key
		req := testInvite(t)
		authorize(t, g, req, hdrs, "MD5", "pbx", "s3cret", 1)
		if v, _ := g.check(req, local); v != challenge {
			t.Errorf("nonce of another server: verdict %v, want challenge", v)
		}
	})
	t.Run("algorithm not offered", func(t *testing.T) {
		g, _ := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}, Algorithms: []string{"SHA-256"}})
		md5g, _ := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}, Algorithms: []string{"MD5"}})
		md5g.key = g.key
		_, _, hdrs := md5g.challenges(false)
		req := testInvite(t)
		authorize(t, g, req, hdrs, "MD5", "pbx", "s3cret", 1)
		if v, _ := g.check(req, local); v != challenge {
			t.Errorf("MD5 credentials on a SHA-256-only server: verdict %v, want challenge", v)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		for _, a := range []Auth{
			{Algorithms: []string{"SHA-1"}},
			{Realm: `a"b`},
			{Users: map[string]string{"": "x"}},
		} {
			if _, err := newGuard(a); err == nil {
				t.Errorf("newGuard(%+v) accepted", a)
			}
		}
	})
}

func FuzzGuardCredentials(f *testing.F) {
	f.Add(`Digest username="pbx", realm="voiced", nonce="00", uri="sip:a@b", response="00", qop=auth, nc=00000001, cnonce="x"`)
	f.Add(`Digest username=pbx,,realm=`)
	g, _ := newGuard(Auth{Users: map[string]string{"pbx": "s3cret"}})
	f.Fuzz(func(t *testing.T, h string) {
		req := testInvite(t)
		req.AppendHeader(sip.NewHeader("Authorization", h))
		if v, _ := g.check(req, netip.MustParseAddr("127.0.0.1")); v == admitted {
			t.Errorf("admitted %q", h)
		}
	})
}
