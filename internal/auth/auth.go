// Package auth decides who may use a voiced server: API keys and
// short-lived access tokens (JWT, HS256, RFC 7519) signed with a secret
// the operator keeps in the environment. A Guard is HTTP middleware that
// every route of the server passes through; it answers 401 before the
// wrapped handler runs (before a WebSocket upgrade or an ICE gathering),
// so an unauthenticated request spends nothing.
//
// A request presents its credential, a key or a token, in one of:
//
//   - the Authorization header: "Bearer CREDENTIAL";
//   - the query parameter token=CREDENTIAL (browsers cannot set headers
//     on a WebSocket);
//   - a WebSocket subprotocol "bearer.CREDENTIAL", offered beside the
//     protocol's own subprotocol "voiced".
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of Authenticate; each wraps ErrUnauthorized.
var (
	// ErrUnauthorized is wrapped by every refusal.
	ErrUnauthorized = errors.New("auth: unauthorized")
	// ErrNoCredential: the request presents no key or token.
	ErrNoCredential = fmt.Errorf("%w: no API key or access token", ErrUnauthorized)
	// ErrBadCredential: the key is unknown or the token does not verify
	// (bad signature, wrong algorithm, expired, wrong audience).
	ErrBadCredential = fmt.Errorf("%w: invalid API key or access token", ErrUnauthorized)
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("auth: bad configuration")

// Minimum lengths of secrets, so that a guessable key cannot be configured.
const (
	MinKeyLen    = 16 // bytes of an API key
	MinSecretLen = 32 // bytes of the token signing secret
)

// DefaultAudience is the aud claim voiced's tokens carry and require.
const DefaultAudience = "voiced"

// Subprotocol is the WebSocket subprotocol a browser offers beside
// "bearer.TOKEN"; the server selects it.
const Subprotocol = "voiced"

// SubprotocolPrefix starts the subprotocol that carries a credential.
const SubprotocolPrefix = "bearer."

// Config says which credentials are accepted. The zero value accepts none
// and disables authentication (Enabled is false).
type Config struct {
	// Keys are the accepted API keys (each at least MinKeyLen bytes).
	Keys []string
	// Secret signs and verifies access tokens (at least MinSecretLen
	// bytes); nil accepts no tokens.
	Secret []byte
	// Audience is the required aud claim (default DefaultAudience).
	Audience string
	// Required turns authentication on even with no key or secret, which
	// then refuses everything: a configuration that asks for
	// authentication must not silently serve without it. New reports it.
	Required bool
	// Open lists the paths served without a credential ("/healthz", the
	// demo page's static files), matched exactly.
	Open []string
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// Principal is who a request authenticated as.
type Principal struct {
	// Identity is the token's sub claim, or "api-key" for a key.
	Identity string
	// Agent is the agent (or configuration) a token restricts the session
	// to; "" means any.
	Agent string
	// Key is true for an API key (a full-power credential).
	Key bool
}

// Claims are the claims of an access token.
type Claims struct {
	jwt.RegisteredClaims
	// Agent restricts the session to one agent; "" allows any.
	Agent string `json:"agent,omitempty"`
}

// Guard authenticates requests. Safe for concurrent use.
type Guard struct {
	cfg    Config
	parser *jwt.Parser
}

// New returns a guard for cfg, or an error wrapping ErrConfig for keys or
// secrets that are too short, or Required with nothing to accept.
func New(cfg Config) (*Guard, error) {
	for i, k := range cfg.Keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("%w: API key %d is %d bytes, want at least %d", ErrConfig, i+1, len(k), MinKeyLen)
		}
		if strings.ContainsAny(k, " \t\r\n,") {
			return nil, fmt.Errorf("%w: API key %d contains a space or comma", ErrConfig, i+1)
		}
	}
	if cfg.Secret != nil && len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: token secret is %d bytes, want at least %d", ErrConfig, len(cfg.Secret), MinSecretLen)
	}
	if cfg.Required && len(cfg.Keys) == 0 && cfg.Secret == nil {
		return nil, fmt.Errorf("%w: authentication is required but no API key or token secret is set", ErrConfig)
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg}
	g.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(func() time.Time { return g.cfg.Now() }),
	)
	return g, nil
}

// Enabled reports whether requests must authenticate.
func (g *Guard) Enabled() bool {
	return g != nil && (g.cfg.Required || len(g.cfg.Keys) > 0 || g.cfg.Secret != nil)
}

// Credential returns the key or token r presents, or "".
func Credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, v, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(v)
		}
	}
	for _, p := range websocketProtocols(r) {
		if v, ok := strings.CutPrefix(p, SubprotocolPrefix); ok {
			return v
		}
	}
	return r.URL.Query().Get("token")
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out
}

// Authenticate checks the credential r presents. With authentication
// disabled it returns an anonymous Principal and nil.
func (g *Guard) Authenticate(r *http.Request) (Principal, error) {
	if !g.Enabled() {
		return Principal{}, nil
	}
	c := Credential(r)
	if c == "" {
		return Principal{}, ErrNoCredential
	}
	return g.Verify(c)
}

// Verify checks one credential: an API key, or an access token.
func (g *Guard) Verify(c string) (Principal, error) {
	for _, k := range g.cfg.Keys {
		if subtle.ConstantTimeCompare([]byte(c), []byte(k)) == 1 {
			return Principal{Identity: "api-key", Key: true}, nil
		}
	}
	if g.cfg.Secret == nil || strings.Count(c, ".") != 2 {
		return Principal{}, ErrBadCredential
	}
	var cl Claims
	_, err := g.parser.ParseWithClaims(c, &cl, func(t *jwt.Token) (any, error) {
		return g.cfg.Secret, nil
	})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrBadCredential, err)
	}
	if cl.Subject == "" {
		return Principal{}, fmt.Errorf("%w: token has no sub (identity)", ErrBadCredential)
	}
	return Principal{Identity: cl.Subject, Agent: cl.Agent}, nil
}

// TokenConfig describes an access token to mint.
type TokenConfig struct {
	Secret   []byte
	Identity string        // sub (required)
	Agent    string        // the agent the session may use; "" for any
	TTL      time.Duration // validity (required, > 0)
	Audience string        // default DefaultAudience
	Now      time.Time     // issue time (default time.Now())
}

// MaxTTL bounds an access token's validity: they are meant to be short
// lived, handed to one client for one session.
const MaxTTL = 24 * time.Hour

// Mint returns a signed access token.
func Mint(tc TokenConfig) (string, error) {
	switch {
	case len(tc.Secret) < MinSecretLen:
		return "", fmt.Errorf("%w: token secret is %d bytes, want at least %d", ErrConfig, len(tc.Secret), MinSecretLen)
	case tc.Identity == "":
		return "", fmt.Errorf("%w: identity required", ErrConfig)
	case tc.TTL <= 0 || tc.TTL > MaxTTL:
		return "", fmt.Errorf("%w: ttl %v: want > 0 and <= %v", ErrConfig, tc.TTL, MaxTTL)
	}
	if tc.Audience == "" {
		tc.Audience = DefaultAudience
	}
	if tc.Now.IsZero() {
		tc.Now = time.Now()
	}
	cl := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   tc.Identity,
			Audience:  jwt.ClaimStrings{tc.Audience},
			IssuedAt:  jwt.NewNumericDate(tc.Now),
			NotBefore: jwt.NewNumericDate(tc.Now),
			ExpiresAt: jwt.NewNumericDate(tc.Now.Add(tc.TTL)),
		},
		Agent: tc.Agent,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(tc.Secret)
}

type ctxKey struct{}

// FromContext returns the Principal the Guard stored in a request's
// context, and whether there is one (false when authentication is off).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// open reports whether path is served without a credential.
func (g *Guard) open(path string) bool {
	return slices.Contains(g.cfg.Open, path)
}

// Wrap returns next behind the guard: a request to a path not in
// Config.Open without a valid credential gets 401 with a WWW-Authenticate
// header and a reason, and next does not run. The authenticated
// Principal is in the request's context (FromContext). With
// authentication disabled Wrap returns next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	if !g.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		p, err := g.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="voiced"`)
			reason := "missing API key or access token"
			if errors.Is(err, ErrBadCredential) {
				reason = "invalid API key or access token"
			}
			http.Error(w, reason, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}
