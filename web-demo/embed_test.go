package webdemo

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestPageAssetsResolve checks that every file the page loads is embedded:
// the src/href attributes of index.html and the worklet module app.js adds.
func TestPageAssetsResolve(t *testing.T) {
	fsys := FS()
	page := readFile(t, fsys, "index.html")
	app := readFile(t, fsys, "app.js")

	var refs []string
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if strings.HasPrefix(m[1], "data:") {
			continue
		}
		refs = append(refs, m[1])
	}
	for _, m := range regexp.MustCompile(`addModule\("([^"]+)"\)`).FindAllStringSubmatch(app, -1) {
		refs = append(refs, m[1])
	}
	want := map[string]bool{"style.css": false, "app.js": false, "worklets.js": false}
	for _, ref := range refs {
		if _, err := fs.Stat(fsys, ref); err != nil {
			t.Errorf("page references %q, which is not embedded: %v", ref, err)
		}
		if _, ok := want[ref]; ok {
			want[ref] = true
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("page never loads %q", name)
		}
	}
}

// TestOffline checks that no embedded file points at another host, so the
// demo works without a network.
func TestOffline(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		text := readFile(t, FS(), path)
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue // a JavaScript comment may cite a URL
			}
			if m := external.FindString(line); m != "" {
				t.Errorf("%s refers to an external address %q", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("walked %d files, want at least index.html, app.js, worklets.js, style.css", n)
	}
}

// TestWorkletNames checks that the processors app.js creates are the ones
// worklets.js registers.
func TestWorkletNames(t *testing.T) {
	registered := map[string]bool{}
	for _, m := range regexp.MustCompile(`registerProcessor\("([^"]+)"`).FindAllStringSubmatch(readFile(t, FS(), "worklets.js"), -1) {
		registered[m[1]] = true
	}
	used := regexp.MustCompile(`new AudioWorkletNode\([^,]+, "([^"]+)"`).FindAllStringSubmatch(readFile(t, FS(), "app.js"), -1)
	if len(used) != 2 {
		t.Fatalf("app.js creates %d worklet nodes, want 2 (capture and playback)", len(used))
	}
	for _, m := range used {
		if !registered[m[1]] {
			t.Errorf("app.js creates worklet %q, which worklets.js does not register (has %v)", m[1], registered)
		}
	}
}

func readFile(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}
