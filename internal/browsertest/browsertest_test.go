package browsertest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
)

const page = `<!doctype html><title>browsertest</title>
<input id="in">
<script>
window.typed = [];
document.getElementById("in").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { window.typed.push(e.target.value); e.target.value = ""; }
});
console.log("hello from the page", 42);
window.later = false;
setTimeout(() => { window.later = true; }, 200);
</script>`

const throwing = `<!doctype html><script>throw new Error("boom from the page")</script>`

// micPage measures the peak level of the microphone over 1.5 s.
const micPage = `<!doctype html><script>
window.mic = { peak: 0, ms: 0, error: null };
(async () => {
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    const ac = new AudioContext();
    const an = ac.createAnalyser();
    an.fftSize = 2048;
    ac.createMediaStreamSource(s).connect(an);
    const buf = new Float32Array(an.fftSize);
    const t0 = performance.now();
    const id = setInterval(() => {
      an.getFloatTimeDomainData(buf);
      for (const v of buf) window.mic.peak = Math.max(window.mic.peak, Math.abs(v));
      window.mic.ms = performance.now() - t0;
      if (window.mic.ms > 1500) clearInterval(id);
    }, 20);
  } catch (e) { window.mic.error = String(e); }
})();
</script>`

func serve(t *testing.T) string {
	mux := http.NewServeMux()
	html := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("GET /{$}", html(page))
	mux.HandleFunc("GET /throw", html(throwing))
	mux.HandleFunc("GET /mic", html(micPage))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestBrowser(t *testing.T) {
	url := serve(t)
	b := Start(t, Options{})
	if got := b.Navigate(url + "/"); got != http.StatusOK {
		t.Fatalf("status %d, want 200", got)
	}
	if !b.WaitConsole(10*time.Second, "log: hello from the page 42") {
		t.Errorf("console.log not collected; console: %q", b.Console())
	}

	var sum int
	b.Eval("1 + 2", &sum)
	if sum != 3 {
		t.Errorf("1 + 2 = %d", sum)
	}
	var resolved string
	b.Eval(`Promise.resolve("ok")`, &resolved)
	if resolved != "ok" {
		t.Errorf("awaited promise gave %q", resolved)
	}
	var undef any = "unchanged"
	b.Eval("undefined", &undef)
	if undef != nil {
		t.Errorf("undefined decoded as %v", undef)
	}

	if !b.Wait(10*time.Second, `() => window.later`) {
		t.Error("window.later never became true")
	}
	if b.Wait(300*time.Millisecond, `() => false`) {
		t.Error("a predicate that is never true was reported true")
	}
	if !b.Wait(time.Second, `(n, s) => n === 7 && s === "x"`, 7, "x") {
		t.Error("arguments did not reach the predicate")
	}

	b.Type("#in", "typed text\r")
	var typed []string
	b.Eval("window.typed", &typed)
	if !slices.Equal(typed, []string{"typed text"}) {
		t.Errorf("typed %q, want [\"typed text\"]", typed)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	b.Screenshot(shot)
	if png, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot is not a PNG (%v)", err)
	}

	if got := b.Navigate(url + "/missing"); got != http.StatusNotFound {
		t.Errorf("status %d for a missing page, want 404", got)
	}
	if len(b.Exceptions()) != 0 {
		t.Errorf("exceptions before any was thrown: %q", b.Exceptions())
	}
	b.Navigate(url + "/throw")
	if !b.WaitConsole(10*time.Second, "boom from the page") {
		t.Errorf("uncaught exception not collected; console: %q", b.Console())
	}
	if ex := b.Exceptions(); len(ex) != 1 {
		t.Errorf("exceptions %q, want one", ex)
	}

	pid := b.PID()
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	b.Close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("browser process %d still exists after Close (kill 0: %v)", pid, err)
	}
	b.Close() // idempotent
}

// TestMicrophone checks the fake microphone plays the given WAV file: a tone
// is loud, and silence is silent (Chromium's default fake device beeps).
func TestMicrophone(t *testing.T) {
	url := serve(t)
	dir := t.TempDir()
	const rate = 16000
	tone := make([]int16, 3*rate)
	for i := range tone {
		tone[i] = int16(16000 * math.Sin(2*math.Pi*440*float64(i)/rate))
	}
	for _, c := range []struct {
		name string
		pcm  []int16
		min  float64
		max  float64
	}{
		{"tone", tone, 0.2, 1.01},
		{"silence", make([]int16, 3*rate), 0, 0.01},
	} {
		t.Run(c.name, func(t *testing.T) {
			wav := filepath.Join(dir, c.name+".wav")
			if err := audio.SaveWAV(wav, frame.Format{SampleRate: rate, Channels: 1}, c.pcm); err != nil {
				t.Fatal(err)
			}
			b := Start(t, Options{Microphone: wav, LoopMicrophone: true, Dump: "window.mic"})
			b.Navigate(url + "/mic")
			if !b.Wait(20*time.Second, `() => window.mic.error !== null || window.mic.ms > 1500`) {
				t.Fatal("the microphone was not measured")
			}
			var mic struct {
				Peak  float64
				Error *string
			}
			b.Eval("window.mic", &mic)
			if mic.Error != nil {
				t.Fatalf("getUserMedia: %s", *mic.Error)
			}
			if mic.Peak < c.min || mic.Peak > c.max {
				t.Errorf("microphone peak %.4f, want within [%.2f, %.2f]", mic.Peak, c.min, c.max)
			}
			t.Logf("peak %.4f", mic.Peak)
		})
	}
}
