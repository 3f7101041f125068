// Command vulnreport reads govulncheck's JSON output (-format json) on its
// standard input and says which vulnerabilities the code reaches. It exits
// 1 when the code calls a vulnerable function of a module the project
// requires: upgrading that module fixes it, and make check fails until it
// is done. Vulnerabilities of the standard library are reported with the
// Go release that fixes them, without failing: building with that Go fixes
// them, and which Go builds the server is the builder's choice. Those in
// packages the project imports without calling the vulnerable code are
// only counted.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	r, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnreport:", err)
		os.Exit(2)
	}
	os.Exit(r.write(os.Stdout))
}

// message is one object of govulncheck's JSON stream (the fields used).
type message struct {
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
		} `json:"trace"`
	} `json:"finding"`
}

// vuln is a vulnerability the code calls, in one module.
type vuln struct {
	id, module, version, fixed, summary string
	fn                                  string // the vulnerable function reached
	caller                              string // the project's function that reaches it
}

type report struct {
	called    []vuln
	uncalled  map[string]bool // IDs found only in imported or required code
	summaries map[string]string
}

// read decodes govulncheck's stream.
func read(in io.Reader) (*report, error) {
	r := &report{uncalled: map[string]bool{}, summaries: map[string]string{}}
	seen := map[string]bool{}
	dec := json.NewDecoder(in)
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("govulncheck output: %w", err)
		}
		if m.OSV != nil {
			r.summaries[m.OSV.ID] = m.OSV.Summary
		}
		f := m.Finding
		if f == nil || len(f.Trace) == 0 {
			continue
		}
		t := f.Trace[0]
		if t.Function == "" {
			r.uncalled[f.OSV] = true
			continue
		}
		key := f.OSV + " " + t.Module
		if seen[key] {
			continue
		}
		seen[key] = true
		fn := t.Package + "." + t.Function
		if t.Receiver != "" {
			fn = t.Package + "." + strings.TrimPrefix(t.Receiver, "*") + "." + t.Function
		}
		last := f.Trace[len(f.Trace)-1]
		r.called = append(r.called, vuln{
			id: f.OSV, module: t.Module, version: t.Version, fixed: f.FixedVersion,
			fn: fn, caller: last.Package + "." + last.Function,
		})
	}
	for _, v := range r.called {
		delete(r.uncalled, v.id)
	}
	for i := range r.called {
		r.called[i].summary = r.summaries[r.called[i].id]
	}
	slices.SortFunc(r.called, func(a, b vuln) int {
		return strings.Compare(a.module+" "+a.id, b.module+" "+b.id)
	})
	return r, nil
}

// write prints the report and returns the exit code: 1 when a required
// module's vulnerable code is called.
func (r *report) write(w io.Writer) int {
	code := 0
	for _, v := range r.called {
		fixed := "no fix yet"
		if v.fixed != "" {
			fixed = "fixed in " + v.fixed
		}
		if v.module == "stdlib" {
			fmt.Fprintf(w, "warning: %s in the standard library (Go %s, %s): %s\n\t%s reaches %s: build with a Go that has the fix\n",
				v.id, strings.TrimPrefix(v.version, "v"), fixed, v.summary, v.caller, v.fn)
			continue
		}
		code = 1
		fmt.Fprintf(w, "FAIL: %s in %s@%s (%s): %s\n\t%s reaches %s: upgrade the module\n",
			v.id, v.module, v.version, fixed, v.summary, v.caller, v.fn)
	}
	if n := len(r.uncalled); n > 0 {
		fmt.Fprintf(w, "%d more in code the project imports or requires but does not call\n", n)
	}
	if code == 0 {
		fmt.Fprintln(w, "govulncheck: no module the project requires has a vulnerability its code calls")
	}
	return code
}
