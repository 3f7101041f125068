package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func wellFormed(t *testing.T, name, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	elems := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			elems++
		}
	}
	if elems < 10 || !strings.HasPrefix(svg, "<svg ") {
		t.Errorf("%s: %d elements", name, elems)
	}
}

// TestWriteReport: the report has every section, the peer figures next to
// ours, and well-formed charts.
func TestWriteReport(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	r := &Results{Commit: "abc123", CPU: "test CPU", Cores: 2, LoadBefore: "1.00, 2.00, 3.00", LoadAfter: "0.5, 1, 1", Limit: ms(20)}
	for _, impl := range []string{"voiced", "channels"} {
		for _, n := range []int{0, 5} {
			lat := []time.Duration{time.Microsecond, 2 * time.Microsecond, 40 * time.Microsecond}
			r.Frames = append(r.Frames, FrameResult{Impl: impl, Stages: n, InFlight: 64, NsPerFrame: 1234, Idle: lat, Loaded: lat,
				IdleDist: Summarize(append([]time.Duration(nil), lat...)), LoadedDist: Summarize(append([]time.Duration(nil), lat...))})
		}
	}
	r.Turns = []TurnRun{{Profile: Cloud("cloud", 0, 2), Turns: []TurnResult{
		{VoiceToVoice: ms(1196), Endpointing: ms(540), STT: ms(150), LLM: ms(350), TTS: ms(155), Transport: ms(1), Overhead: ms(6)},
		{VoiceToVoice: ms(1200), Endpointing: ms(540), STT: ms(151), LLM: ms(352), TTS: ms(155), Transport: ms(2), Overhead: ms(8)},
	}}}
	r.Density = []DensityLevel{
		{Sessions: 10, InputLate: Dist{P99: ms(2)}, CPU: 0.1, Pass: true},
		{Sessions: 50, InputLate: Dist{P99: ms(30)}, CPU: 0.5, FirstError: "stt: boom"},
	}
	micro := []byte("pkg: github.com/voiced-dev/voiced/pipeline\nBenchmarkPipeline/stages=5-2  1000  1500 ns/op  0 B/op  0 allocs/op\nBenchmarkPipeline/stages=5-2  1000  1300 ns/op  0 B/op  0 allocs/op\n")
	dir := t.TempDir()
	if err := WriteReport(dir, r, micro, &E2E{VoiceToVoiceMs: []float64{700, 720}}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"commit: abc123", "1.00, 2.00, 3.00", "| Pipecat | 126 µs |", "**voiced (this run)** | 1.23 µs",
		"| cloud | 150 / 350", "over by 396 ms", "**10 sessions passed on 2 cores: 5 sessions per core**",
		"`stt: boom`", "pipeline BenchmarkPipeline/stages=5 | 1500 |", "| voice-to-voice | 2 | 700 | 720 |",
		"![density curve](density.svg)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("README lacks %q", want)
		}
	}
	for _, name := range []string{"frame_cdf.svg", "waterfall.svg", "v2v_cdf.svg", "density.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, name, string(b))
	}
	if _, err := os.Stat(filepath.Join(dir, "results.json")); err != nil {
		t.Error(err)
	}
}

// TestPacedWriter: writes within the playout's lead are on time; a stall
// counts as lateness once and the client's clock restarts after it.
func TestPacedWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := window(time.Now().Add(-time.Second), time.Now().Add(time.Hour))
		w := &pacedWriter{rec: rec}
		chunk := make([]int16, 320)
		w.episode()
		for range 5 { // 100 ms ahead at once
			w.WriteAudio(chunk)
		}
		time.Sleep(130 * time.Millisecond) // the client needed chunk 5 at 100 ms
		w.WriteAudio(chunk)
		time.Sleep(20 * time.Millisecond)
		w.WriteAudio(chunk) // due at 150 ms after the restart: on time
		want := []time.Duration{0, 0, 0, 0, 0, 30 * time.Millisecond, 0}
		if len(rec.out) != len(want) {
			t.Fatalf("got %v", rec.out)
		}
		for i := range want {
			if rec.out[i] != want[i] {
				t.Errorf("write %d: late %v, want %v", i, rec.out[i], want[i])
			}
		}
	})
}

// TestTimedAnalyzer: a 32 ms chunk is due when the 20 ms frame completing
// it has arrived; scoring it later than that is lateness.
func TestTimedAnalyzer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := window(start.Add(-time.Second), start.Add(time.Hour))
		an, err := timedModel{m: levelModel{}, start: start, rec: rec}.NewAnalyzer(16000)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]int16, 512)
		time.Sleep(45 * time.Millisecond) // chunk 1 ends at sample 512, in frame 2 (due 40 ms)
		an.Speech(chunk)
		time.Sleep(15 * time.Millisecond) // chunk 2 ends at 1024, in frame 4 (due 80 ms): early
		an.Speech(chunk)
		want := []time.Duration{5 * time.Millisecond, 0}
		if len(rec.in) != 2 || rec.in[0] != want[0] || rec.in[1] != want[1] {
			t.Errorf("lateness %v, want %v", rec.in, want)
		}
	})
}

func window(from, until time.Time) *lateRec {
	r := &lateRec{}
	r.from.Store(from.UnixNano())
	r.until.Store(until.UnixNano())
	return r
}
