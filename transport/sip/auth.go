package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Auth guards the calls voiced answers: a source-address allowlist, and
// digest authentication of the INVITE (RFC 3261 §22 with RFC 2617's
// qop=auth, and SHA-256 per RFC 8760). The zero value lets every call in.
type Auth struct {
	// Allow lists the networks calls may come from; a new INVITE from
	// anywhere else gets 403 Forbidden. Empty: any source.
	Allow []netip.Prefix
	// Users maps a username to its password. When set, a new INVITE
	// without valid credentials gets 401 Unauthorized with a fresh nonce
	// (407 with Proxy set).
	Users map[string]string
	// Realm is the challenge's realm (default "voiced").
	Realm string
	// Algorithms are offered in this order, one challenge header each
	// (RFC 8760 §2.4): "SHA-256" and "MD5". Default MD5 alone: clients
	// that know no SHA-256 (sipp 3.6, baresip 1.0) fail on a challenge
	// that offers it, even beside MD5.
	Algorithms []string
	// NonceTTL is how long a nonce is good for; credentials made with an
	// older one get a new challenge with stale=true, so the caller retries
	// without asking its user (default 5 minutes).
	NonceTTL time.Duration
	// Proxy challenges with 407 Proxy-Authenticate and reads
	// Proxy-Authorization, as a proxy in front of voiced would.
	Proxy bool
}

// ErrAuthConfig wraps a bad Auth.
var ErrAuthConfig = errors.New("sip: auth")

// guard checks new INVITEs against an Auth. It is safe for concurrent use.
type guard struct {
	allow []netip.Prefix
	users map[string]string
	realm string
	algs  []string
	ttl   time.Duration
	proxy bool
	key   [32]byte // signs nonces
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]uint32 // nonce → highest nc used, for qop=auth replays
}

func newGuard(a Auth) (*guard, error) {
	g := &guard{allow: a.Allow, users: a.Users, realm: a.Realm, ttl: a.NonceTTL, proxy: a.Proxy,
		now: time.Now, seen: map[string]uint32{}}
	if g.realm == "" {
		g.realm = "voiced"
	}
	if strings.ContainsAny(g.realm, "\"\\\r\n") {
		return nil, fmt.Errorf("%w: realm %q: no quotes, backslashes or line breaks", ErrAuthConfig, g.realm)
	}
	if g.ttl <= 0 {
		g.ttl = 5 * time.Minute
	}
	algs := a.Algorithms
	if len(algs) == 0 {
		algs = []string{"MD5"}
	}
	for _, alg := range algs {
		if newHash(alg) == nil {
			return nil, fmt.Errorf("%w: algorithm %q: want SHA-256 or MD5", ErrAuthConfig, alg)
		}
		g.algs = append(g.algs, strings.ToUpper(alg))
	}
	for u := range a.Users {
		if u == "" || strings.ContainsAny(u, "\"\\\r\n") {
			return nil, fmt.Errorf("%w: username %q", ErrAuthConfig, u)
		}
	}
	rand.Read(g.key[:])
	return g, nil
}

func newHash(alg string) hash.Hash {
	switch strings.ToUpper(alg) {
	case "MD5":
		return md5.New()
	case "SHA-256":
		return sha256.New()
	}
	return nil
}

// verdict is what the guard decides about a request.
type verdict int

const (
	admitted  verdict = iota
	forbidden         // 403: the source is not allowed
	challenge         // 401/407: no or bad credentials
	stale             // 401/407 with stale=true: good credentials, old nonce
)

// check decides whether req, from src, may start a call. The username is
// returned for the log when the caller authenticated.
func (g *guard) check(req *sip.Request, src netip.Addr) (verdict, string) {
	if len(g.allow) > 0 {
		ok := false
		for _, p := range g.allow {
			ok = ok || src.IsValid() && p.Contains(src.Unmap())
		}
		if !ok {
			return forbidden, ""
		}
	}
	if len(g.users) == 0 {
		return admitted, ""
	}
	name := "Authorization"
	if g.proxy {
		name = "Proxy-Authorization"
	}
	result := challenge
	for _, h := range req.GetHeaders(name) {
		cred, err := digest.ParseCredentials(h.Value())
		if err != nil || cred.Realm != g.realm {
			continue
		}
		switch v := g.verify(req.Method.String(), cred); v {
		case admitted:
			return admitted, cred.Username
		case stale:
			result = stale
		}
	}
	return result, ""
}

// verify checks one set of credentials.
func (g *guard) verify(method string, c *digest.Credentials) verdict {
	pass, ok := g.users[c.Username]
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = "MD5" // RFC 2617 §3.2.2
	}
	h := newHash(alg)
	if !ok || h == nil || c.Userhash || !offered(g.algs, alg) {
		return challenge
	}
	issued, ok := g.nonceTime(c.Nonce)
	if !ok {
		return challenge
	}
	if c.QOP != "" && (c.QOP != "auth" || c.Cnonce == "" || c.Nc <= 0) {
		return challenge
	}
	want := digestResponse(h, c.Username, g.realm, pass, method, c.URI, c.Nonce, c.Nc, c.Cnonce, c.QOP)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(c.Response)), []byte(want)) != 1 {
		return challenge
	}
	if g.now().Sub(issued) > g.ttl {
		return stale
	}
	if c.QOP == "auth" && !g.fresh(c.Nonce, uint32(c.Nc), issued) {
		return stale // a replayed count: make the caller count again on a new nonce
	}
	return admitted
}

func offered(algs []string, alg string) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

// fresh records nc for nonce and reports whether it is higher than any
// count seen with it before (RFC 2617 §3.2.2: the count detects replays).
// Expired nonces are forgotten.
func (g *guard) fresh(nonce string, nc uint32, issued time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) > 10000 {
		for n := range g.seen {
			if t, ok := g.nonceTime(n); !ok || g.now().Sub(t) > g.ttl {
				delete(g.seen, n)
			}
		}
	}
	if last, ok := g.seen[nonce]; ok && nc <= last {
		return false
	}
	g.seen[nonce] = nc
	return true
}

// nonce is a new nonce: the time it was made and an HMAC of it, so that
// the guard keeps no state per challenge.
func (g *guard) nonce() string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(g.now().UnixNano()))
	m := hmac.New(sha256.New, g.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return hex.EncodeToString(b[:])
}

// nonceTime returns when nonce was made, if the guard made it.
func (g *guard) nonceTime(nonce string) (time.Time, bool) {
	b, err := hex.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return time.Time{}, false
	}
	m := hmac.New(sha256.New, g.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

// challenges returns the 401/407 status and its headers: one per
// algorithm, all with the same fresh nonce.
func (g *guard) challenges(isStale bool) (int, string, []sip.Header) {
	code, reason, name := 401, "Unauthorized", "WWW-Authenticate"
	if g.proxy {
		code, reason, name = 407, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	nonce := g.nonce()
	var hdrs []sip.Header
	for _, alg := range g.algs {
		v := `Digest realm="` + g.realm + `", nonce="` + nonce + `", algorithm=` + alg + `, qop="auth"`
		if isStale {
			v += ", stale=true"
		}
		hdrs = append(hdrs, sip.NewHeader(name, v))
	}
	return code, reason, hdrs
}

// digestResponse computes the response of RFC 2617 §3.2.2.1 (RFC 7616
// §3.4.1 for other hashes), for qop "" or "auth".
func digestResponse(h hash.Hash, user, realm, pass, method, uri, nonce string, nc int, cnonce, qop string) string {
	ha1 := hashHex(h, user, realm, pass)
	ha2 := hashHex(h, method, uri)
	if qop == "" {
		return hashHex(h, ha1, nonce, ha2)
	}
	return hashHex(h, ha1, nonce, fmt.Sprintf("%08x", nc), cnonce, qop, ha2)
}

func hashHex(h hash.Hash, parts ...string) string {
	h.Reset()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParsePrefixes reads an allowlist: CIDR prefixes, or single addresses.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: allow %q: want an address or a CIDR prefix", ErrAuthConfig, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Validate reports what NewServer would refuse in a.
func (a Auth) Validate() error {
	_, err := newGuard(a)
	return err
}
