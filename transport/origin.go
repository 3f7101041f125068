package transport

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// OriginAllowed reports whether r may open a session. Requests without an
// Origin header (not from a browser) are allowed, and so are the origins
// listed in allowed (scheme://host:port, or "*" for any). A page served by
// this server (Origin's host equal to the Host header) is allowed only when
// that host is one the server answers to (HostAllowed with hosts): the
// Host header is the attacker's own name under DNS rebinding, so equality
// alone proves nothing.
func OriginAllowed(r *http.Request, allowed []string, hosts ...string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range allowed {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) && HostAllowed(r.Host, hosts)
}

// HostAllowed reports whether a server may answer a request for host (a
// Host header, with or without its port). IP addresses are always
// allowed (DNS rebinding needs a name), and so are "localhost" and names
// under ".localhost" (RFC 6761, resolved to loopback by browsers); other
// names must be listed in hosts, case-insensitively, or hosts must hold
// "*". A listed ".example.com" allows every name under example.com.
func HostAllowed(host string, hosts []string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	h = strings.ToLower(h)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	for _, a := range hosts {
		a = strings.ToLower(a)
		switch {
		case a == "*", a == h:
			return true
		case strings.HasPrefix(a, ".") && strings.HasSuffix(h, a):
			return true
		}
	}
	return false
}
