// Package browsertest drives Debian's headless Chromium from Go tests over
// the Chrome DevTools Protocol (github.com/chromedp/chromedp), so that the
// browser tests need no Node.js. A test starts one browser per Browser, with
// a fresh profile and, when asked, a WAV file as its fake microphone; it
// navigates, evaluates JavaScript, types, and waits for conditions in the
// page with a deadline. When the test fails, the page's console (calls,
// uncaught exceptions, browser log entries) and an optional state expression
// are logged. The browser is always killed when the test ends.
//
// A Browser belongs to the test goroutine that started it: its methods call
// t.Fatal on errors and must not be called from other goroutines.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultChromium is where Debian's chromium package installs the browser.
const DefaultChromium = "/usr/bin/chromium"

// Chromium returns the path of the browser to run: $CHROMIUM, or
// DefaultChromium. When there is none it skips t, or fails it when the
// environment requires every dependency (VOICED_REQUIRE_MODELS=1 or
// VOICED_REQUIRE_SERVICES=1, as `make test` sets).
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = DefaultChromium
	}
	full, err := exec.LookPath(path)
	if err != nil {
		why := fmt.Sprintf("no Chromium at %s (apt-get install chromium; make deps): %v", path, err)
		if os.Getenv("VOICED_REQUIRE_MODELS") == "1" || os.Getenv("VOICED_REQUIRE_SERVICES") == "1" {
			t.Fatal(why)
		}
		t.Skip(why + "; set VOICED_REQUIRE_MODELS=1 to fail instead")
	}
	return full
}

// Options configure a browser. The zero value is a headless browser with
// Chromium's default fake microphone (a beep).
type Options struct {
	// Microphone is a WAV file (PCM16) that the fake microphone plays. By
	// default it plays once and is then silent; LoopMicrophone repeats it.
	Microphone     string
	LoopMicrophone bool

	// Flags are extra command-line switches, without the leading "--"; a
	// value of true is a bare switch. They override the defaults of the
	// same name, e.g. {"disable-features": "Translate,WebRtcHideLocalIpsWithMdns"}.
	Flags map[string]any

	// Timeout bounds the browser's whole life (default 3 minutes): whatever
	// hangs, the browser is killed then and the test fails.
	Timeout time.Duration

	// Dump is a JavaScript expression whose JSON value is logged, after the
	// console, when the test fails (for example "window.voicedState").
	Dump string
}

// Browser is one headless Chromium process with one tab.
type Browser struct {
	t      testing.TB
	ctx    context.Context // the tab; the browser lives as long as it
	cancel context.CancelFunc
	start  time.Time
	dump   string

	consoleDone chan struct{} // closed when the collector has stopped
	log         *consoleLog

	closeOnce sync.Once
	pid       int
}

// Start launches Chromium headless and opens a blank tab. The browser is
// killed, and its profile removed, when t ends (or on Close).
func Start(t testing.TB, o Options) *Browser {
	t.Helper()
	path := Chromium(t)
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	flags := map[string]any{
		// Debian's package as a non-root user in a container has no
		// usable sandbox; the pages are our own.
		"no-sandbox":                       true,
		"disable-gpu":                      true,
		"disable-background-networking":    true,
		"disable-component-update":         true,
		"use-fake-ui-for-media-stream":     true,
		"use-fake-device-for-media-stream": true,
		"autoplay-policy":                  "no-user-gesture-required",
	}
	if o.Microphone != "" {
		if _, err := os.Stat(o.Microphone); err != nil {
			t.Fatalf("browsertest: microphone file: %v", err)
		}
		mic := o.Microphone
		if !o.LoopMicrophone {
			mic += "%noloop"
		}
		flags["use-file-for-fake-audio-capture"] = mic
	}
	for k, v := range o.Flags {
		flags[k] = v
	}
	opts := append([]chromedp.ExecAllocatorOption(nil), chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts, chromedp.ExecPath(path), chromedp.WindowSize(1280, 900))
	for k, v := range flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	// No UserDataDir: chromedp makes a fresh temporary profile, and when the
	// browser ends it kills any child still using it and removes it.

	life, cancelLife := context.WithTimeout(context.Background(), o.Timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	b := &Browser{
		t:     t,
		ctx:   tab,
		start: time.Now(),
		dump:  o.Dump,
		cancel: func() {
			cancelTab()
			cancelAlloc() // waits for the process to exit
			cancelLife()
		},
		consoleDone: make(chan struct{}),
		log:         newConsoleLog(),
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.logState()
		}
		b.Close()
	})
	// The first action starts the browser and binds it to tab.
	if err := chromedp.Do(tab); err != nil {
		close(b.consoleDone)
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	if p := chromedp.FromContext(tab).Browser.Process(); p != nil {
		b.pid = p.Pid
	}
	messages := chromedp.Console(tab)
	go func() {
		defer close(b.consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			line := fmt.Sprintf("[%6d ms] %s", time.Since(b.start).Milliseconds(), m)
			b.log.add(line, m.IsException(), m.Text)
		}
	}()
	return b
}

// PID is the browser's process id (0 if unknown).
func (b *Browser) PID() int { return b.pid }

// Close kills the browser and waits for it to exit. It is idempotent, and
// runs by itself when the test ends.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		b.cancel()
		<-b.consoleDone
	})
}

// Navigate loads url and waits for its load event; it returns the HTTP
// status of the document (0 for a non-HTTP URL).
func (b *Browser) Navigate(url string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		b.t.Fatalf("browsertest: navigating to %s: %v", url, err)
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Eval evaluates a JavaScript expression in the page and decodes its JSON
// value into out (nil: ignore it). A promise is awaited.
func (b *Browser) Eval(expr string, out any) {
	b.t.Helper()
	if err := b.eval(expr, out); err != nil {
		b.t.Fatalf("browsertest: evaluating %s: %v", short(expr), err)
	}
}

func (b *Browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if len(raw) == 0 { // undefined
		raw = []byte("null")
	}
	return json.Unmarshal(raw, out)
}

// Wait polls a JavaScript predicate every 50 ms until it is truthy, and
// reports whether it became so within timeout. fn is a function; args are
// passed to it as JSON values, e.g.
//
//	b.Wait(5*time.Second, `(n) => window.count > n`, 3)
func (b *Browser) Wait(timeout time.Duration, fn string, args ...any) bool {
	b.t.Helper()
	// The page's own timer ends the poll; the context is a backstop.
	ctx, cancel := context.WithTimeout(b.ctx, timeout+10*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[chromedp.Void](fn,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(timeout),
		chromedp.WithPollingArgs(args...)))
	switch {
	case err == nil:
		return true
	case errors.Is(err, chromedp.ErrPollingTimeout):
		return false
	default:
		b.t.Fatalf("browsertest: waiting for %s: %v", short(fn), err)
		return false
	}
}

// Type focuses the element that the CSS selector matches and types text
// into it as key presses; "\r" presses Enter.
func (b *Browser) Type(selector, text string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(selector), text)); err != nil {
		b.t.Fatalf("browsertest: typing into %s: %v", selector, err)
	}
}

// Screenshot writes a PNG of the whole page to path.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Console returns the page's console so far: calls of the console API,
// uncaught exceptions and browser log entries (failed loads, for one), each
// as "[ms since start] type: text".
func (b *Browser) Console() []string { return b.log.lines() }

// WaitConsole reports whether a console line containing substr arrives
// within timeout (or has already arrived).
func (b *Browser) WaitConsole(timeout time.Duration, substr string) bool {
	return b.log.wait(timeout, substr, b.consoleDone)
}

// Exceptions returns the text of the uncaught exceptions and unhandled
// promise rejections the page has had.
func (b *Browser) Exceptions() []string { return b.log.exceptionTexts() }

// consoleLog is the page's console as collected: one goroutine adds,
// any reads or waits.
type consoleLog struct {
	mu         sync.Mutex
	all        []string
	exceptions []string
	changed    chan struct{} // closed and replaced on each add
}

func newConsoleLog() *consoleLog { return &consoleLog{changed: make(chan struct{})} }

func (c *consoleLog) add(line string, exception bool, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, line)
	if exception {
		c.exceptions = append(c.exceptions, text)
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *consoleLog) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.all...)
}

func (c *consoleLog) exceptionTexts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.exceptions...)
}

// wait reports whether a line containing substr is there, or arrives
// before timeout or done.
func (c *consoleLog) wait(timeout time.Duration, substr string, done <-chan struct{}) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		found := slices.ContainsFunc(c.all, func(l string) bool { return strings.Contains(l, substr) })
		changed := c.changed
		c.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return slices.ContainsFunc(c.lines(), func(l string) bool { return strings.Contains(l, substr) })
		case <-deadline.C:
			return false
		}
	}
}

// logState logs the console and the Dump expression, for a failed test.
func (b *Browser) logState() {
	var sb strings.Builder
	sb.WriteString("---- page console ----\n")
	for _, l := range b.Console() {
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	if b.dump != "" && b.ctx.Err() == nil {
		var v json.RawMessage
		if err := b.eval(b.dump, &v); err != nil {
			fmt.Fprintf(&sb, "---- %s: %v\n", b.dump, err)
		} else {
			fmt.Fprintf(&sb, "---- %s ----\n%s\n", b.dump, v)
		}
	}
	b.t.Log(sb.String())
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
