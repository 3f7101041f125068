package main

import (
	"os"
	"strings"
	"testing"
)

// TestReport reads part of a real govulncheck run (x/net v0.59.0, Go
// 1.26.8): the x/net vulnerability the code calls fails the check, the
// standard library's are warnings, cel-go's (required, never called) is
// only counted.
func TestReport(t *testing.T) {
	f, err := os.Open("testdata/govulncheck.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := read(f)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := r.write(&out); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	got := out.String()
	for _, want := range []string{
		"FAIL: GO-2026-6603 in golang.org/x/net@v0.59.0 (fixed in v0.60.0): HTTP/2 server memory exhaustion due to Trailer headers in net/http\n",
		"warning: GO-2026-6600 in the standard library (Go 1.26.8, fixed in v1.26.9): Recognize yield as regexp preceder keyword in html/template\n",
		"warning: GO-2026-6603 in the standard library",
		"1 more in code the project imports or requires but does not call\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "FAIL:"); n != 1 {
		t.Errorf("%d failures, want 1:\n%s", n, got)
	}
}

// TestReportClean: nothing called in a required module passes.
func TestReportClean(t *testing.T) {
	r, err := read(strings.NewReader(`{"config":{"protocol_version":"v1.0.0"}}
{"finding":{"osv":"GO-2026-6600","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"html/template","function":"Execute","receiver":"*Template"},{"module":"example.com/m","package":"example.com/m","function":"main"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := r.write(&out); code != 0 {
		t.Errorf("exit code %d, want 0:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "example.com/m.main reaches html/template.Template.Execute") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestReportGarbage: output that is not govulncheck's is an error.
func TestReportGarbage(t *testing.T) {
	if _, err := read(strings.NewReader(`{"finding": [`)); err == nil {
		t.Error("no error for truncated output")
	}
}
