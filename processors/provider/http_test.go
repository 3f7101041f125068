package provider

import "testing"

func TestHTTPURL(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8000/v1":  true,
		"https://api.openai.com/v1": true,
		"ws://127.0.0.1/v1":         false,
		"api.openai.com/v1":         false,
		"":                          false,
	} {
		if got := HTTPURL(u); got != want {
			t.Errorf("HTTPURL(%q) = %v, want %v", u, got, want)
		}
	}
	if c := HTTPClient(); c.Transport == nil {
		t.Fatal("HTTPClient has no pooled transport")
	}
}
