package provider

import (
	"net/http"
	"strings"
	"time"
)

// HTTPClient returns an HTTP client whose connections are kept alive and
// pooled between calls, so that a turn does not pay a TCP and TLS
// handshake. Providers that speak HTTP share this shape; each gets its own
// client (and pool).
func HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 16
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}

// HTTPURL reports whether u is an http:// or https:// base URL.
func HTTPURL(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}
