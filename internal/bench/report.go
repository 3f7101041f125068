package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Results is everything one harness run measured.
type Results struct {
	Date       time.Time      `json:"date"`
	Commit     string         `json:"commit"`
	CPU        string         `json:"cpu"`
	Cores      int            `json:"cores"`
	GoVersion  string         `json:"go_version"`
	Quick      bool           `json:"quick"`
	LoadBefore string         `json:"load_before"` // /proc/loadavg at the start
	LoadAfter  string         `json:"load_after"`
	Frames     []FrameResult  `json:"frames"`
	Turns      []TurnRun      `json:"turns"`
	Density    []DensityLevel `json:"density"`
	DensityErr string         `json:"density_error,omitempty"`
	Limit      time.Duration  `json:"limit"`
}

// E2E is the WebSocket end-to-end measurement written by the e2e tests
// (VOICED_E2E_RESULTS), in milliseconds.
type E2E struct {
	VoiceToVoiceMs        []float64 `json:"voice_to_voice_ms"`
	BargeInMs             []float64 `json:"barge_in_ms"`
	AudioAfterInterruptMs []float64 `json:"audio_after_interrupt_ms"`
}

// Peer figures measured on this machine class for the same workloads.
const (
	peerFrames = "| bare Go channel chain (peer figure) | 0.8 µs |\n" +
		"| Beluga AI (one goroutine, no barge-in) | 0.4–0.6 µs |\n" +
		"| AgenticGoKit | 7 µs |\n" +
		"| LiveKit Agents (Node streams) | 8 µs |\n" +
		"| Pipecat | 126 µs |\n"
	turnSegments = "endpointing,STT,LLM → 1st sentence,TTS → 1st frame,transport"
)

// WriteReport writes README.md and the SVG charts into dir. micro is `go
// test -bench` output (may be nil), e2e the end-to-end results (may be nil).
func WriteReport(dir string, r *Results, micro []byte, e2e *E2E) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	charts := map[string]string{}
	var md strings.Builder
	w := &md
	fmt.Fprintf(w, "# voiced benchmark results\n\n")
	fmt.Fprintf(w, "- date: %s\n- commit: %s\n- machine: %s, %d cores, %s/%s, %s\n",
		r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Commit, r.CPU, r.Cores, runtime.GOOS, runtime.GOARCH, r.GoVersion)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) at start: %s; at end: %s. The machine is shared with other engineers' builds and tests, so absolute figures, the density ones most, are pessimistic.\n", r.LoadBefore, r.LoadAfter)
	if r.Quick {
		fmt.Fprintf(w, "- **quick run** (`--quick`): fewer turns and shorter density levels.\n")
	}
	fmt.Fprintf(w, "\nProduced by `make bench` (scripts/bench.sh → `voiced bench`). Raw data: `results.json`, `micro.txt`, `e2e.json`.\n\n")

	if len(r.Frames) > 0 {
		frameSection(w, r, charts)
	}
	if len(r.Turns) > 0 {
		turnSection(w, r, e2e, charts)
	}
	densitySection(w, r, charts)
	if len(micro) > 0 {
		microSection(w, micro)
	}
	if e2e != nil {
		e2eSection(w, e2e)
	}
	for name, svg := range charts {
		if err := os.WriteFile(dir+"/"+name, []byte(svg), 0o644); err != nil {
			return err
		}
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(dir+"/results.json", js, 0o644); err != nil {
		return err
	}
	return os.WriteFile(dir+"/README.md", []byte(md.String()), 0o644)
}

func frameSection(w io.Writer, r *Results, charts map[string]string) {
	fmt.Fprintf(w, "## 1. Pipeline overhead per frame\n\n")
	fmt.Fprintf(w, "20 ms frames of 16 kHz audio pushed through N pass-through stages. *Throughput* is wall time per frame with up to %d frames in flight (the peers' figure); *latency* is each frame's time from Push to leaving the last stage (stamped in the frame), with %d in flight (*loaded*, mostly queueing) and one at a time (*idle*, what a single audio frame waits). Allocations count the whole process during the run. `channels` is a bare chain of goroutines and buffered channels doing the same, measured here; N = 0 for voiced is one stage delivering to the sink.\n\n",
		r.Frames[0].InFlight, r.Frames[0].InFlight)
	fmt.Fprintf(w, "| impl | stages | throughput µs/frame | allocs/frame | B/frame | loaded p50 µs | loaded p99 µs | idle p50 µs | idle p99 µs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range r.Frames {
		fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.0f | %s | %s | %s | %s |\n", f.Impl, f.Stages, f.NsPerFrame/1000, f.AllocsPerFrame, f.BytesPerFrame,
			us(f.LoadedDist.P50), us(f.LoadedDist.P99), us(f.IdleDist.P50), us(f.IdleDist.P99))
	}
	fmt.Fprintf(w, "\nPeers for 5 stages, 20 ms frames, 64 in flight, measured on this machine class:\n\n| implementation | per frame |\n|---|---:|\n")
	for _, f := range r.Frames {
		if f.Stages == 5 {
			fmt.Fprintf(w, "| **%s (this run)** | %.2f µs |\n", f.Impl, f.NsPerFrame/1000)
		}
	}
	fmt.Fprintf(w, "%s\n", peerFrames)
	var series []Series
	for _, f := range r.Frames {
		if f.Stages == 5 {
			series = append(series, Series{Name: f.Impl + " idle", Values: f.Idle}, Series{Name: f.Impl + " loaded", Values: f.Loaded, Dash: true})
		}
	}
	charts["frame_cdf.svg"] = CDFChart("Per-frame latency through 5 stages", series)
	fmt.Fprintf(w, "![per-frame latency CDF](frame_cdf.svg)\n\n")
}

func turnSection(w io.Writer, r *Results, e2e *E2E, charts map[string]string) {
	fmt.Fprintf(w, "## 2. Turn latency with fake providers\n\n")
	fmt.Fprintf(w, "The real session pipeline (`session.Builder`: transport input, VAD turn state machine, STT stage, agent stage, TTS stage, `transport.Playout`) over an in-memory transport, fed 20 ms frames in real time: 800 ms of a tone, then silence until 300 ms after the answer starts (the next turn barges in on the rest). The VAD model is a scripted level detector (tone vs digital silence) so the endpoint is exact; STT, LLM and TTS are `processors/stt/fake`, `agents/llm/fake` and `processors/tts/fake` with the profile's latencies (the model also checks it was asked the recognizer's transcript). The cloud-protocol profile speaks the OpenAI audio protocol instead (`processors/stt/openai` uploads each utterance as WAV, `processors/tts/openai` decodes streamed MP3) to local fake servers that wait the same latencies: its overhead is what the protocols cost.\n\n")
	fmt.Fprintf(w, "- *voice-to-voice*: from the push of the last voiced frame to the playout's first write of the answer.\n")
	fmt.Fprintf(w, "- *overhead* = voice-to-voice − the endpointing the audio imposes (last voiced frame → arrival of the frame on which the VAD decided) − the providers' configured time on the path (STT final + model time to the end of the first sentence + TTS first audio). It is what the pipeline itself adds. Target: p99 ≤ 5 ms.\n")
	fmt.Fprintf(w, "- *stop → audio*: from `UserStoppedSpeaking` to the first audio written (peer: LiveKit Agents Node, end of speech → first TTS frame with instant fakes, p50 5.2 ms / p90 8.7 ms on this machine).\n\n")
	fmt.Fprintf(w, "| profile | STT / LLM / TTS (ms) | VAD stop | turns | missed | errors | voice-to-voice p50 | p90 | max | overhead p50 | overhead p99 | overhead max | stop → audio p50 | p90 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var vs []Series
	var bars []Bar
	for _, t := range r.Turns {
		p := t.Profile
		var v2v, over, s2a []time.Duration
		for _, tr := range t.Turns {
			v2v = append(v2v, tr.VoiceToVoice)
			over = append(over, tr.Overhead)
			s2a = append(s2a, tr.StopToAudio)
		}
		stop := p.StopDuration
		if stop == 0 {
			stop = 500 * time.Millisecond
		}
		dv, do, ds := Summarize(slices.Clone(v2v)), Summarize(slices.Clone(over)), Summarize(slices.Clone(s2a))
		fmt.Fprintf(w, "| %s | %d / %d (+%g tok/s) / %d (RTF %g) | %d ms | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			p.Name, p.STTFinal.Milliseconds(), p.LLMFirst.Milliseconds(), p.TokensPerSecond, p.TTSFirst.Milliseconds(), p.TTSRTF, stop.Milliseconds(),
			len(t.Turns), t.Missed, t.Errors, ms(dv.P50), ms(dv.P90), ms(dv.Max), ms(do.P50), ms(do.P99), ms(do.Max), ms(ds.P50), ms(ds.P90))
		vs = append(vs, Series{Name: p.Name, Values: v2v})
		for i, tr := range t.Turns {
			if i >= 8 {
				break
			}
			bars = append(bars, Bar{Label: fmt.Sprintf("%s #%d", p.Name, i+1), Segments: []time.Duration{tr.Endpointing, tr.STT, tr.LLM, tr.TTS, tr.Transport}})
		}
	}
	fmt.Fprintf(w, "\nMedian breakdown (ms from the user's last voiced frame):\n\n| profile | endpointing | STT final | LLM → 1st sentence | TTS → 1st frame | transport | total | against 800 ms |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, t := range r.Turns {
		med := func(f func(TurnResult) time.Duration) time.Duration {
			var v []time.Duration
			for _, tr := range t.Turns {
				v = append(v, f(tr))
			}
			return Summarize(v).P50
		}
		tot := med(func(tr TurnResult) time.Duration { return tr.VoiceToVoice })
		verdict := "within"
		if tot > 800*time.Millisecond {
			verdict = fmt.Sprintf("over by %s ms", ms(tot-800*time.Millisecond))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", t.Profile.Name,
			ms(med(func(tr TurnResult) time.Duration { return tr.Endpointing })),
			ms(med(func(tr TurnResult) time.Duration { return tr.STT })),
			ms(med(func(tr TurnResult) time.Duration { return tr.LLM })),
			ms(med(func(tr TurnResult) time.Duration { return tr.TTS })),
			ms(med(func(tr TurnResult) time.Duration { return tr.Transport })), ms(tot), verdict)
	}
	fmt.Fprintf(w, "\nWith %d turns or fewer a p99 is the worst turn. On a fake clock the pipeline adds exactly nothing to the providers' latencies (internal/bench/turn_test.go); what is measured here is goroutine wake-ups and timer slack on a loaded 2-core machine, and the fakes' own timers firing late counts as overhead too, so the figure is an upper bound.\n", 100)
	fmt.Fprintf(w, "\nThe endpointing segment is the VAD's stop duration (rounded up to its 32 ms chunks) plus pipeline time; the budget is spent mostly by it and the providers. With the default 500 ms stop, a typical cloud stack cannot meet 800 ms however small the pipeline's share; a shorter stop (or a semantic turn detector) is what buys the budget back.\n\n")
	charts["waterfall.svg"] = WaterfallChart("Voice-to-voice per turn", strings.Split(turnSegments, ","), bars, 800*time.Millisecond)
	if e2e != nil && len(e2e.VoiceToVoiceMs) > 0 {
		var v []time.Duration
		for _, x := range e2e.VoiceToVoiceMs {
			v = append(v, time.Duration(x*float64(time.Millisecond)))
		}
		vs = append(vs, Series{Name: "e2e WebSocket", Values: v, Dash: true})
	}
	charts["v2v_cdf.svg"] = CDFChart("Voice-to-voice", vs)
	fmt.Fprintf(w, "![latency waterfall](waterfall.svg)\n\n![voice-to-voice CDF](v2v_cdf.svg)\n\n")
}

func densitySection(w io.Writer, r *Results, charts map[string]string) {
	if len(r.Density) == 0 && r.DensityErr == "" {
		return
	}
	fmt.Fprintf(w, "## 3. Session density\n\n")
	fmt.Fprintf(w, "K concurrent sessions, each fed a flite-spoken question then 2.5 s of silence, looped, in real time (20 ms frames, staggered starts and offsets), through the full session pipeline with the **real Silero VAD** (ONNX Runtime, one thread per inference) and fake STT/LLM/TTS with the cloud latencies (so every session converses: answers are synthesized and paced out). *Input lateness*: how long after its audio was due each 32 ms VAD chunk was scored. *Output lateness*: how long after the client needed it each 20 ms of answer audio was written (0 while the playout runs ahead). A level passes while the worse p99 stays ≤ %d ms; a failing level is run a second time (on this shared machine a single stall of the whole process, another engineer's link step, decides a p99) and both tries are listed. CPU is process CPU time per wall second (1.0 = one core). Each level runs for its duration after all K sessions have started (*startup*), the first seconds unmeasured.\n\n", r.Limit.Milliseconds())
	if r.DensityErr != "" {
		fmt.Fprintf(w, "**Not run:** %s\n\n", r.DensityErr)
	}
	if len(r.Density) == 0 {
		return
	}
	fmt.Fprintf(w, "| sessions | input p50 ms | input p99 ms | output p99 ms | CPU (cores) | CPU/session (%% core) | RSS MB | RSS/session KB | Go heap/session KB | goroutines | answers | errors | load1 | startup s | pass |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	best := 0
	var bestL DensityLevel
	for _, l := range r.Density {
		pass := "yes"
		if !l.Pass {
			pass = "**no**"
		} else if l.Sessions > best {
			best, bestL = l.Sessions, l
		}
		switch {
		case l.Retried:
			pass += " (retried)"
		case l.Retry:
			pass += " (2nd try)"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f | %.2f | %d | %d | %d | %d | %d | %d | %.2f | %.1f | %s |\n", l.Sessions,
			ms(l.InputLate.P50), ms(l.InputLate.P99), ms(l.OutputLate.P99), l.CPU, 100*l.CPU/float64(l.Sessions),
			l.RSSBytes>>20, l.RSSPerSession>>10, l.HeapPerSession>>10, l.Goroutines, l.Answers, l.Errors, l.Load1, l.Startup.Seconds(), pass)
	}
	if best > 0 {
		perCore := 100 * bestL.CPU / float64(best)
		fmt.Fprintf(w, "\n**%d sessions passed on %d cores: %.0f sessions per core** (measured; LiveKit recommends about 6 per core). At %.2f%% of a core per session, CPU alone would allow about %.0f per core.", best, r.Cores, float64(best)/float64(r.Cores), perCore, 100/perCore)
		if last := r.Density[len(r.Density)-1]; last.Pass {
			fmt.Fprintf(w, " The highest level tried still passed: the limit is above it.")
		}
		fmt.Fprintf(w, "\n\n")
	} else {
		fmt.Fprintf(w, "\nNo level passed.\n\n")
	}
	for _, l := range r.Density {
		if l.FirstError != "" {
			fmt.Fprintf(w, "At %d sessions the first error frame was: `%s`.\n\n", l.Sessions, l.FirstError)
		}
	}
	charts["density.svg"] = DensityChart(r.Density, r.Limit)
	fmt.Fprintf(w, "![density curve](density.svg)\n\n")
}

func microSection(w io.Writer, micro []byte) {
	rows := parseBench(micro)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "## 4. Go micro-benchmarks (median of runs)\n\n| benchmark | ns/op | B/op | allocs/op | other |\n|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		var other []string
		for _, k := range r.extraOrder {
			other = append(other, fmt.Sprintf("%s %s", fmtNum(median(r.extra[k])), k))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.name, fmtNum(median(r.ns)), fmtNum(median(r.bytes)), fmtNum(median(r.allocs)), strings.Join(other, ", "))
	}
	fmt.Fprintf(w, "\n")
}

func e2eSection(w io.Writer, r *E2E) {
	fmt.Fprintf(w, "## 5. Voice-to-voice at the client (WebSocket, loopback, embedded components)\n\n")
	fmt.Fprintf(w, "A Go WebSocket client streams flite-synthesized speech in real time, 20 ms per message, like a microphone, followed by silence (TestE2EConversation, TestE2EBargeIn). Voice-to-voice is from the moment the client sent the last audible sample of the user's speech (above −40 dBFS) to the arrival of the first audible reply audio, with real Silero VAD, pocketsphinx STT, the scripted model and flite TTS. It includes the VAD's stop duration (500 ms by default), which dominates it. Barge-in is from the start of the interrupting speech to the `interrupted` event; the old answer's audio received after `interrupted` is bounded by the server's 100 ms playout lead.\n\n")
	fmt.Fprintf(w, "| measure | n | p50 ms | p90 ms | min ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, v []float64) {
		if len(v) == 0 {
			return
		}
		s := slices.Clone(v)
		slices.Sort(s)
		q := func(p float64) float64 { return s[min(len(s)-1, max(0, int(p*float64(len(s))+0.999999)-1))] }
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.0f | %.0f |\n", name, len(s), q(0.5), q(0.9), s[0], s[len(s)-1])
	}
	row("voice-to-voice", r.VoiceToVoiceMs)
	row("barge-in → `interrupted`", r.BargeInMs)
	row("old audio after `interrupted`", r.AudioAfterInterruptMs)
	fmt.Fprintf(w, "\n")
}

type benchRow struct {
	name              string
	ns, bytes, allocs []float64
	extra             map[string][]float64
	extraOrder        []string
}

// parseBench reads `go test -bench` output.
func parseBench(b []byte) []*benchRow {
	var order []*benchRow
	byName := map[string]*benchRow{}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(line, "pkg: github.com/voiced-dev/voiced/")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		name = pkg + " " + name
		r := byName[name]
		if r == nil {
			r = &benchRow{name: name, extra: map[string][]float64{}}
			byName[name] = r
			order = append(order, r)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch u := fields[i+1]; u {
			case "ns/op":
				r.ns = append(r.ns, v)
			case "B/op":
				r.bytes = append(r.bytes, v)
			case "allocs/op":
				r.allocs = append(r.allocs, v)
			default:
				if _, ok := r.extra[u]; !ok {
					r.extraOrder = append(r.extraOrder, u)
				}
				r.extra[u] = append(r.extra[u], v)
			}
		}
	}
	return order
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtNum(v float64) string {
	switch {
	case v < 0:
		return "–"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// machine fills the run's description of the machine and the code.
func (r *Results) machine() {
	r.Date = time.Now()
	if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(b))
		if exec.Command("git", "diff", "--quiet", "HEAD").Run() != nil {
			r.Commit += " (with uncommitted changes)"
		}
	} else {
		r.Commit = "unknown"
	}
	r.CPU, r.Cores, r.GoVersion = cpuModel(), runtime.NumCPU(), runtime.Version()
	r.LoadBefore = loadLine()
}

func loadLine() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}
