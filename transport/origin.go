package transport

import (
	"net/http"
	"net/url"
	"strings"
)

// OriginAllowed reports whether r may open a session: requests without an
// Origin header (not from a browser) and from the server's own host are
// allowed, and so are the origins listed in allowed (scheme://host:port,
// or "*" for any).
func OriginAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range allowed {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
