package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/voiced-dev/voiced/internal/auth"
	"github.com/voiced-dev/voiced/internal/config"
	"github.com/voiced-dev/voiced/transport"
	"github.com/voiced-dev/voiced/transport/rtvi"
	webdemo "github.com/voiced-dev/voiced/web-demo"
)

// NewGuard returns the authentication of [server.auth]: API keys from the
// variable api_key_env names (comma-separated), the access tokens' secret
// from the one token_secret_env names. With neither set (and required
// false) authentication is off. getenv is os.Getenv outside tests.
func NewGuard(c config.ServerAuth, getenv func(string) string) (*auth.Guard, error) {
	var keys []string
	for k := range strings.SplitSeq(getenv(c.APIKeyEnv), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	var secret []byte
	if v := getenv(c.TokenSecretEnv); v != "" {
		secret = []byte(v)
	}
	g, err := auth.New(auth.Config{
		Keys:     keys,
		Secret:   secret,
		Audience: c.Audience,
		Required: c.Required,
		Open:     openPaths(),
	})
	if err != nil {
		return nil, fmt.Errorf("server.auth (%s, %s): %w", c.APIKeyEnv, c.TokenSecretEnv, err)
	}
	return g, nil
}

// openPaths are served without a credential: /healthz, for load
// balancers, and the demo page's static files (the page itself holds no
// secret; it needs a token to talk to /ws or /webrtc/offer).
func openPaths() []string {
	open := []string{"/healthz", "/"}
	fs.WalkDir(webdemo.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			open = append(open, "/"+p)
		}
		return nil
	})
	return open
}

// middleware puts next behind the checks every route gets, outermost
// first: the Host check, authentication, the body bound, and headers.
func (s *Server) middleware(next http.Handler) http.Handler {
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.Server.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	}))
	if s.authErr != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "authentication is misconfigured", http.StatusInternalServerError)
		})
	} else {
		inner, guarded := h, s.guard.Wrap(agentCheck(s.cfg, h))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A CORS preflight carries no credentials, by the Fetch
			// standard; it only asks which methods a route takes.
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				inner.ServeHTTP(w, r)
				return
			}
			guarded.ServeHTTP(w, r)
		})
	}
	hosts := s.cfg.Server.AllowedHosts
	// Pipecat's clients call these from their app's page, often on
	// another origin: CORS outside authentication, as a preflight carries
	// no credential (docs/rtvi.md).
	cors := rtvi.CORS(s.cfg.Server.Origins, hosts, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !transport.HostAllowed(r.Host, hosts) {
			http.Error(w, fmt.Sprintf("host %q is not served here (server.allowed_hosts)", r.Host), http.StatusMisdirectedRequest)
			return
		}
		if corsPath(r.URL.Path) {
			cors.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// corsPath reports whether path is called cross-origin by Pipecat's
// clients: the start convention and SmallWebRTC's offer routes.
func corsPath(path string) bool {
	return path == "/start" || path == "/api/offer" || strings.HasPrefix(path, "/sessions/")
}

// demoCSP confines the demo page to its own files. The page may be told
// to talk to another server (?ws=, ?offer=), so connections may go
// anywhere; nothing may frame it.
const demoCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self' ws: wss: http: https:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"

// demoHeaders adds the demo page's security headers.
func demoHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", demoCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "microphone=(self)")
		next.ServeHTTP(w, r)
	})
}

// agentCheck refuses (403) an access token whose agent claim names an
// agent this server's configuration does not run: a token minted for one
// deployment's agent does not open sessions with another's. Sessions do
// not choose among the agents yet, so a claim naming any configured agent
// passes.
func agentCheck(cfg config.Config, next http.Handler) http.Handler {
	names := map[string]bool{}
	if len(cfg.Agents) == 0 {
		names[cfg.Agent.Name] = true
	}
	for _, a := range cfg.Agents {
		if a.IsEnabled() {
			names[a.Name] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); ok && p.Agent != "" && !names[p.Agent] {
			http.Error(w, fmt.Sprintf("this access token is for agent %q, which this server does not run", p.Agent), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
