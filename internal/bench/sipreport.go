package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sipMarker starts the part of sip.md that `voiced bench sip` writes; what
// is above it is kept.
const sipMarker = "<!-- Written by `voiced bench sip` (make bench-sip): each run replaces everything below this line. -->"

// WriteSIPReport writes r as dir/sip.json and as the end of dir/sip.md:
// everything from sipMarker on (or from the "Not measured yet" section it
// replaces, the first time) is rewritten; the rest of the file is kept.
func WriteSIPReport(dir string, r *SIPResult, note string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sip.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	path := filepath.Join(dir, "sip.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	head := string(old)
	if i := strings.Index(head, sipMarker); i >= 0 {
		head = head[:i]
	} else if i := strings.Index(head, "## Not measured yet"); i >= 0 {
		head = head[:i]
	}
	if head != "" && !strings.HasSuffix(head, "\n\n") {
		head = strings.TrimRight(head, "\n") + "\n\n"
	}
	var b bytes.Buffer
	b.WriteString(head)
	b.WriteString(sipMarker + "\n\n")
	sipReport(&b, r, note)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func sipReport(b *bytes.Buffer, r *SIPResult, note string) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Measured with `voiced bench sip`\n\n")
	p("- date: %s\n- commit: %s\n- machine: %s, %d cores, %s; %s\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"), r.Commit, r.CPU, r.Cores, r.GoVersion, r.SippVersion)
	p("- load average (1, 5, 15 min, as `uptime` gives it) at start: %s; at end: %s. The machine is shared: "+
		"other work (builds, a long test run) ran at the same time, and this run (voiced and sipp) had nice %d, "+
		"so these figures are pessimistic.\n", r.LoadBefore, r.LoadAfter, r.Nice)
	if note != "" {
		p("- note: %s\n", note)
	}
	p("\nOne process: the real server (`internal/server`, `config.Default()`, SIP over UDP on 127.0.0.1, HTTP on 127.0.0.1) "+
		"with the real Silero VAD on every call and the soak's fast fakes (STT final %s, model first token %s then %g tokens/s, "+
		"TTS first audio %s at RTF %g; the answer is about 1.8 s of audio); load-aware admission off. "+
		"The caller's sentence is flite's \"Hello, what is the weather like today in Paris?\" (%s).\n\n",
		ms(soakProfile.STTFinal)+" ms", ms(soakProfile.LLMFirst)+" ms", soakProfile.TokensPerSecond, ms(soakProfile.TTSFirst)+" ms", soakProfile.TTSRTF, r.Speech.Round(10*time.Millisecond))

	p("### Voice-to-voice at the caller: SIP next to the WebSocket\n\n")
	p("%d turns over each, interleaved (a SIP call, then a WebSocket session, …), one at a time on the otherwise idle server. "+
		"SIP: a Go caller (`internal/bench/sipuac.go`) sends an INVITE offering PCMU, ACKs the 200 OK, sends half a second of "+
		"silence then the sentence (resampled to 8 kHz, μ-law) as RTP paced 20 ms, then silence, and hangs up after the answer. "+
		"WebSocket: the same, PCM16 at 16 kHz, 20 ms a message. Voice-to-voice is from sending the packet (message) that holds the "+
		"last audible sample of the sentence (above −40 dBFS) to the arrival of the first reply packet with an audible sample, "+
		"as in the WebSocket end-to-end figure of README.md section 5. It includes the VAD's stop duration (`[vad] stop_duration`, 300 ms in the default configuration the bench serves), counted from the "+
		"last chunk Silero finds voiced, which comes before the last sample above −40 dBFS, "+
		"and the fakes' STT, model and TTS times.\n\n", max(len(r.SIPV2V), len(r.WSV2V)))
	sd, wd := Summarize(append([]time.Duration(nil), r.SIPV2V...)), Summarize(append([]time.Duration(nil), r.WSV2V...))
	p("| path | turns | p50 ms | p90 ms | min ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
	p("| SIP (PCMU 8 kHz, RTP) | %d | %s | %s | %s | %s |\n", sd.N, ms(sd.P50), ms(sd.P90), ms(sd.Min), ms(sd.Max))
	p("| WebSocket (PCM16 16 kHz) | %d | %s | %s | %s | %s |\n", wd.N, ms(wd.P50), ms(wd.P90), ms(wd.Min), ms(wd.Max))
	p("| SIP − WebSocket | | %s | %s | | |\n\n", ms(sd.P50-wd.P50), ms(sd.P90-wd.P90))
	verdict := "met"
	if d := sd.P50 - wd.P50; d > 40*time.Millisecond {
		verdict = fmt.Sprintf("missed by %s ms at p50", ms(d-40*time.Millisecond))
	}
	p("Goal: SIP within 40 ms of the WebSocket (p50): **%s**.", verdict)
	if len(r.V2VFailures) > 0 {
		p(" Turns that failed: %s.", strings.Join(r.V2VFailures, "; "))
	}
	if r.V2VEarly > 0 {
		p(" %d audible reply packets arrived while a caller still spoke (the VAD ended a turn early).", r.V2VEarly)
	}
	if d := Summarize(append([]time.Duration(nil), r.InviteOK1...)); d.N > 0 {
		p(" The same SIP calls' INVITE → 200 OK at the Go caller: p50 %s ms, max %s ms.", ms(d.P50), ms(d.Max))
	}
	p("\n\n")

	p("### Concurrent calls\n\n")
	p("For each level N, sipp (another process, on the same 2 cores) places %d×N calls over UDP, at most N at once, %d a second "+
		"(`sipp -sf uac_bench.xml -s demo -l N -r %d -m %d×N -t u1 -trace_rtt -trace_stat`; the scenario is `SippCallerScenario` "+
		"in `internal/bench/sipbench.go`). Each call offers PCMU alone and plays, with `play_pcap_audio`, half a second of silence, "+
		"then %d× the sentence followed by %s of silence while the bot answers; then BYE. Between levels the server settles "+
		"(every call ended, a GC with the heap and glibc's free memory handed back) and its RSS is the level's baseline.\n\n",
		r.Rounds, r.Rate, r.Rate, r.Rounds, r.Turns, r.Answer)
	p("- *up*: the server's live sessions, sampled once a second: the peak and the median of the samples while sipp ran.\n")
	p("- *input lateness*: each call's p99 of how long its input audio waited at the turn detector (session.Builder's "+
		"lateness observer, through Builder.OnInputLateness); the median and the worst over the level's calls, and how many "+
		"calls were over %s ms. Goal: ≥ 100 calls with every call's p99 < 20 ms.\n", ms(r.Limit))
	p("- *RSS/call* = (peak RSS during the level − the level's baseline) / peak calls up.\n")
	p("- *CPU*: CPU time over the level's wall time, in cores (2 = the whole machine), for voiced and for sipp (whose " +
		"`play_pcap_audio` runs a thread per playing call); *waiting*: the time voiced's threads were runnable but waited " +
		"for a CPU (`/proc/self/task/*/schedstat`) over the wall time, in threads: what the rest of the machine took from it.\n")
	p("- *INVITE → 200*: sipp's response time (rtd), which it counts in whole milliseconds (0 = under 1 ms).\n")
	p("- *answered*: the server's turn reports (one per answer started); each successful call asks %d.\n\n", r.Turns)
	p("| N | placed | up peak | up median | ok | failed | answered | lateness p99 median ms | worst ms | calls > %s ms | baseline MiB | peak RSS MiB | RSS/call MiB | voiced CPU | waiting | sipp CPU | INVITE→200 p50 ms | p99 ms | max ms | wall s | load after |\n",
		ms(r.Limit))
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, l := range r.Levels {
		p("| %d | %d | %d | %d | %d | %d | %d | %s | %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %.0f | %s |\n",
			l.Calls, l.Offered, l.Peak, l.Held, l.Successful, l.Failed, l.TurnsAnswered, ms(l.Lateness.P50), ms(l.Lateness.Max), l.Late,
			float64(l.Baseline)/(1<<20), float64(l.RSS)/(1<<20), float64(l.PerCall)/(1<<20), l.CPU, l.Waiting, l.SippCPU,
			ms(l.InviteOK.P50), ms(l.InviteOK.P99), ms(l.InviteOK.Max), l.Wall.Seconds(), l.Load)
	}
	p("\n")
	best := 0
	for _, l := range r.Levels {
		if l.Late == 0 && l.Failed == 0 && l.Lateness.N > 0 && l.Peak > best {
			best = l.Peak
		}
	}
	if best >= 100 {
		p("Goal (≥ 100 calls, every call's input lateness p99 < %s ms): **met** — up to %d calls at once.\n", ms(r.Limit), best)
	} else {
		p("Goal (≥ 100 calls, every call's input lateness p99 < %s ms): **missed** — the most calls at once with every call "+
			"under it and none failed: %d.\n", ms(r.Limit), best)
	}
	for _, l := range r.Levels {
		if l.Note != "" {
			p("\nN = %d: %s.\n", l.Calls, l.Note)
		}
	}
}
