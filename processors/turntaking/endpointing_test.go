package turntaking_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiced-dev/voiced/audio"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/stt/sphinx"
	"github.com/voiced-dev/voiced/processors/tts/flite"
	"github.com/voiced-dev/voiced/processors/turntaking"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/processors/vad/silero"
)

// The endpointing set: utterances, each labelled with where the user's
// turn really ends (the end of its last word), some with pauses inside
// the turn that a fixed silence timeout takes for its end. Flite's are
// made here from phrases joined by the pauses given (after conjunctions,
// inside digit strings, after fillers); the human recordings are Debian's
// pocketsphinx-testdata (read speech, some joined with a pause the way a
// reader stops between two sentences of one thought), used when installed.

// setPart is one stretch of speech of a flite item and the pause after it.
type setPart struct {
	text  string
	pause time.Duration
}

// fliteSet are the generated items: name, voice, parts.
var fliteSet = []struct {
	name, voice string
	parts       []setPart
}{
	{"pizza-and", "slt", []setPart{{"I want a large pizza and", 700 * time.Millisecond}, {"a green salad please.", 0}}},
	{"phone-digits", "slt", []setPart{{"my number is four one five", 600 * time.Millisecond}, {"five five five", 800 * time.Millisecond}, {"one two three four.", 0}}},
	{"account-digits", "awb", []setPart{{"the account number is seven seven", 400 * time.Millisecond}, {"three nine", 500 * time.Millisecond}, {"two one.", 0}}},
	{"going-to-the", "rms", []setPart{{"I was thinking of going to the", 900 * time.Millisecond}, {"beach tomorrow.", 0}}},
	{"because", "slt", []setPart{{"I need to change my flight because", 800 * time.Millisecond}, {"my meeting moved to Friday.", 0}}},
	{"um-filler", "slt", []setPart{{"so um", 900 * time.Millisecond}, {"can you help me with my order?", 0}}},
	{"but", "awb", []setPart{{"I like the blue one but", 600 * time.Millisecond}, {"it is too expensive.", 0}}},
	{"with", "rms", []setPart{{"book me a table for two with", 500 * time.Millisecond}, {"a view of the river.", 0}}},
	{"zip-code", "slt", []setPart{{"my zip code is nine four", 300 * time.Millisecond}, {"one zero three.", 0}}},
	{"or", "slt", []setPart{{"should I take the train or", 700 * time.Millisecond}, {"the bus?", 0}}},
	{"question", "awb", []setPart{{"what time does the store close tonight?", 0}}},
	{"statement", "rms", []setPart{{"I live in London.", 0}}},
	{"hello", "slt", []setPart{{"hello there.", 0}}},
	{"story", "slt", []setPart{{"tell me a story.", 0}}},
	{"yes-please", "awb", []setPart{{"yes please.", 0}}},
	{"repeat", "rms", []setPart{{"can you repeat that?", 0}}},
}

// humanSet are recordings from pocketsphinx-testdata, one turn each. A
// pause, if given, is inserted mid-sentence, at the longest gap between
// words in the middle half of the recording; a "+" joins two recordings
// with the pause given, as one turn (cards read out as a list).
var humanSet = []struct {
	name  string
	files []string
	pause time.Duration
}{
	{"librivox-0870-paused", []string{"librivox/sense_and_sensibility_01_austen_64kb-0870.wav"}, 700 * time.Millisecond},
	{"librivox-0880", []string{"librivox/sense_and_sensibility_01_austen_64kb-0880.wav"}, 0},
	{"librivox-0890-paused", []string{"librivox/sense_and_sensibility_01_austen_64kb-0890.wav"}, 500 * time.Millisecond},
	{"librivox-0920-paused", []string{"librivox/sense_and_sensibility_01_austen_64kb-0920.wav"}, 600 * time.Millisecond},
	{"librivox-0930", []string{"librivox/sense_and_sensibility_01_austen_64kb-0930.wav"}, 0},
	{"goforward", []string{"goforward.raw"}, 0},
	{"numbers", []string{"numbers.raw"}, 0},
	{"something", []string{"something.raw"}, 0},
	{"cards-001+002", []string{"cards/001.wav", "cards/002.wav"}, 500 * time.Millisecond},
	{"cards-005", []string{"cards/005.wav"}, 0},
}

// splitAtGap splits pcm at the quietest 60 ms in its middle half (a gap
// between words).
func splitAtGap(pcm []int16) ([]int16, []int16) {
	const w = 960
	best, at := math.Inf(1), len(pcm)/2
	for i := len(pcm) / 4; i+w <= len(pcm)*3/4; i += 160 {
		if r := audio.RMS(pcm[i : i+w]); r < best {
			best, at = r, i+w/2
		}
	}
	return pcm[:at], pcm[at:]
}

// humanDir is where Debian's pocketsphinx-testdata puts its recordings.
const humanDir = "/usr/share/pocketsphinx/test/data"

// setItem is one labelled utterance, 16 kHz mono.
type setItem struct {
	name  string
	human bool
	pcm   []int16       // the utterance, with low noise around it
	end   time.Duration // where the turn really ends, from the start of pcm
}

const lead = 500 * time.Millisecond // noise before each utterance

// loudSpan returns the first and last sample of pcm in a 10 ms window
// within 30 dB of its loudest window: where the speech starts and ends.
func loudSpan(pcm []int16) (int, int) {
	const w = 160
	var peak float64
	for i := 0; i+w <= len(pcm); i += w {
		peak = max(peak, audio.RMS(pcm[i:i+w]))
	}
	first, last := -1, 0
	for i := 0; i+w <= len(pcm); i += w {
		if audio.RMS(pcm[i:i+w]) >= peak/31.6 {
			if first < 0 {
				first = i
			}
			last = i + w
		}
	}
	return max(first, 0), last
}

// noise is low white noise (about -66 dBFS) the length of d: a quiet room,
// not digital silence.
func noise(r *rand.Rand, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(r.NormFloat64() * 15)
	}
	return pcm
}

func samples(d time.Duration) int { return int(d.Seconds() * 16000) }

// buildSet makes the endpointing set.
func buildSet(t testing.TB) []setItem {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	var set []setItem
	join := func(name string, human bool, parts [][]int16, pauses []time.Duration) {
		pcm := noise(r, samples(lead))
		for i, p := range parts {
			pcm = append(pcm, p...)
			if i < len(pauses) && pauses[i] > 0 {
				pcm = append(pcm, noise(r, samples(pauses[i]))...)
			}
		}
		_, last := loudSpan(pcm)
		set = append(set, setItem{name: name, human: human, pcm: pcm, end: time.Duration(last) * time.Second / 16000})
	}
	syns := map[string]*flite.Synthesizer{}
	for _, it := range fliteSet {
		syn := syns[it.voice]
		if syn == nil {
			var err error
			if syn, err = flite.New(flite.Config{Voice: it.voice}); err != nil {
				t.Skipf("flite: %v", err)
			}
			syns[it.voice] = syn
		}
		var parts [][]int16
		var pauses []time.Duration
		for _, p := range it.parts {
			var pcm []int16
			if err := syn.Synthesize(context.Background(), p.text, "", func(c []int16) error {
				pcm = append(pcm, c...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			a, b := loudSpan(pcm)
			seg := slices.Clone(pcm[a:b])
			for i := range seg {
				seg[i] += int16(r.NormFloat64() * 15)
			}
			parts, pauses = append(parts, seg), append(pauses, p.pause)
		}
		join(it.name, false, parts, pauses)
	}
	if _, err := os.Stat(humanDir); err != nil {
		t.Logf("no %s (Debian's pocketsphinx-testdata): the set has flite's items only", humanDir)
		return set
	}
	for _, it := range humanSet {
		var parts [][]int16
		for _, f := range it.files {
			pcm, err := loadHuman(filepath.Join(humanDir, f))
			if err != nil {
				t.Fatal(err)
			}
			a, b := loudSpan(pcm)
			// Keep the recording's own room noise around the speech.
			a, b = max(0, a-samples(100*time.Millisecond)), min(len(pcm), b+samples(100*time.Millisecond))
			parts = append(parts, pcm[a:b])
		}
		if len(parts) == 1 && it.pause > 0 {
			x, y := splitAtGap(parts[0])
			parts = [][]int16{x, y}
		}
		join(it.name, true, parts, []time.Duration{it.pause})
	}
	return set
}

func loadHuman(path string) ([]int16, error) {
	if strings.HasSuffix(path, ".raw") {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return audio.DecodePCM16(nil, b)
	}
	f, pcm, err := audio.LoadWAV(path)
	if err != nil {
		return nil, err
	}
	if f.SampleRate != 16000 || f.Channels != 1 {
		return nil, fmt.Errorf("%s: %+v, want 16 kHz mono", path, f)
	}
	return pcm, nil
}

// setting is one point of the curve.
type setting struct {
	name string
	turn turntaking.Config
}

// release is one user turn the stage let through, timed from the start of
// its item's pcm.
type release struct {
	at   time.Duration
	text string
}

// outcome is what the turn stage did with one item.
type outcome struct {
	item     setItem
	releases []release
}

// cut reports whether the turn was answered before it really ended.
func (o outcome) cut() bool {
	return len(o.releases) > 0 && o.releases[0].at < o.item.end
}

// delay is the time from the turn's real end to the stage's last release
// (the answer to the whole turn), and false when nothing was released
// after the end.
func (o outcome) delay() (time.Duration, bool) {
	if n := len(o.releases); n > 0 && o.releases[n-1].at >= o.item.end {
		return o.releases[n-1].at - o.item.end, true
	}
	return 0, false
}

// tee runs several turn stages side by side on the same speech events and
// transcripts (one run of the VAD and the recognizer serves them all),
// each with its own turn counter, recording what each releases. It passes
// nothing on.
type tee struct {
	stages []*turntaking.Processor
	mu     sync.Mutex
	start  time.Time
	cur    int
	outs   [][]outcome // per stage, per item
}

func (t *tee) Start(ctx context.Context, rt pipeline.Runtime, _ pipeline.Emitter) error {
	for i, s := range t.stages {
		if err := s.Start(ctx, &ownTurns{Runtime: rt}, teeOut{t, i}); err != nil {
			return err
		}
	}
	return nil
}

func (t *tee) Process(ctx context.Context, f frame.Frame, _ pipeline.Emitter) error {
	for i, s := range t.stages {
		if err := s.Process(ctx, f, teeOut{t, i}); err != nil {
			return err
		}
	}
	return nil
}

// item starts item i of the set.
func (t *tee) item(i int, it setItem) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur, t.start = i, time.Now()
	for k := range t.outs {
		t.outs[k][i].item = it
	}
}

// teeOut records the final transcripts stage k releases.
type teeOut struct {
	t *tee
	k int
}

func (o teeOut) Emit(f frame.Frame) {
	if tr, ok := f.(*frame.Transcript); ok && tr.Final {
		o.t.mu.Lock()
		out := &o.t.outs[o.k][o.t.cur]
		out.releases = append(out.releases, release{time.Since(o.t.start), tr.Text})
		o.t.mu.Unlock()
		// The agent answers: its first audio is heard answerAfter the
		// release (the answer is short; the bot's state is not
		// published, so the user's next words are not a barge-in).
		st := o.t.stages[o.k]
		time.AfterFunc(answerAfter, func() {
			st.Process(context.Background(), &frame.BotStartedSpeaking{}, o)
			st.Process(context.Background(), &frame.BotStoppedSpeaking{}, o)
		})
	}
}

// answerAfter is the time from a user turn's release to the answer's first
// audio at the client: the recognizer's final, the agent, the first
// synthesized audio and the transport on the embedded stack.
const answerAfter = 200 * time.Millisecond

func (o teeOut) EmitUp(frame.Frame) {}
func (o teeOut) Pass(f frame.Frame) { o.Emit(f) }

// ownTurns gives a stage of the tee its own turn counter: its
// interruptions are its own (no bot speaks here).
type ownTurns struct {
	pipeline.Runtime
	mu   sync.Mutex
	turn uint32
}

func (r *ownTurns) Interrupt(string) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.turn++
	return r.turn + 1
}

func (r *ownTurns) Turn() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.turn + 1
}

// runSet plays the set, item after item, to one session of the speech
// detector (stop as given), the recognizer and the turn stages of ss, in a
// synctest bubble: time is the audio's, so the delays measured are the
// turn logic's (the VAD's stop, the wait for the final, the hold), not the
// machine's speed. The recognizer's own time to its final transcript is
// not in them. It returns the outcomes per setting.
func runSet(t *testing.T, model vad.Model, rec stt.Recognizer, stop time.Duration, ss []setting, set []setItem) [][]outcome {
	t.Helper()
	var outs [][]outcome
	synctest.Test(t, func(t *testing.T) {
		tt := &tee{}
		for _, s := range ss {
			st, err := turntaking.New(s.turn)
			if err != nil {
				t.Fatal(err)
			}
			tt.stages = append(tt.stages, st)
			tt.outs = append(tt.outs, make([]outcome, len(set)))
		}
		det := vad.NewDetector(model, 16000, vad.Config{StopDuration: stop})
		defer det.Close()
		p := pipeline.New(pipeline.Options{}, det, stt.NewProcessor(rec, stt.ProcessorConfig{}), tt)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		r := rand.New(rand.NewPCG(3, 5))
		for i, it := range set {
			tt.item(i, it)
			// The utterance, then quiet long enough for any hold.
			pcm := append(slices.Clone(it.pcm), noise(r, samples(2500*time.Millisecond))...)
			for k := 0; k+320 <= len(pcm); k += 320 {
				if err := p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: pcm[k : k+320]}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		p.Push(ctx, &frame.End{})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		tt.mu.Lock()
		outs = tt.outs
		tt.mu.Unlock()
	})
	return outs
}

// pointResult summarizes one setting over the set.
type pointResult struct {
	setting
	stop            time.Duration
	cuts, missed, n int
	cutNames        []string
	p50, p90        time.Duration
}

func (r pointResult) label() string {
	return fmt.Sprintf("%s, VAD stop %d ms", r.name, r.stop.Milliseconds())
}

func summarize(s setting, stop time.Duration, outs []outcome) pointResult {
	res := pointResult{setting: s, stop: stop, n: len(outs)}
	var ds []time.Duration
	for _, o := range outs {
		if o.cut() {
			res.cuts++
			res.cutNames = append(res.cutNames, o.item.name)
		}
		if d, ok := o.delay(); ok {
			ds = append(ds, d)
		} else {
			res.missed++
		}
	}
	slices.Sort(ds)
	res.p50, res.p90 = quantile(ds, 0.5), quantile(ds, 0.9)
	return res
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// fixed is the VAD's silence stop alone; adaptive the turn stage's
// defaults on it.
var (
	fixed    = setting{"fixed", turntaking.Config{Hold: -1, HoldMax: -1}}
	adaptive = setting{"adaptive (defaults)", turntaking.Config{}}
	// Variants of the adaptive stage, evaluated alongside.
	variants = []setting{
		{"adaptive, hold 700 ms", turntaking.Config{Hold: 700 * time.Millisecond}},
	}
)

// stops are the VAD stops of the curve.
var stops = []time.Duration{200 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond, 800 * time.Millisecond}

// endpointingModels loads the real speech detector and recognizer, or
// skips (fails under VOICED_REQUIRE_MODELS=1) when they are not installed.
func endpointingModels(t *testing.T) (vad.Model, stt.Recognizer) {
	t.Helper()
	missing := func(err error) {
		if os.Getenv("VOICED_REQUIRE_MODELS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	m, err := silero.New(silero.Config{})
	if err != nil {
		missing(err)
	}
	rec, err := sphinx.New(sphinx.Config{})
	if err != nil {
		missing(err)
	}
	return m, rec
}

// TestEndpointing runs the default settings over the labelled set and
// checks them against the VAD's fixed 500 ms stop: they must cut fewer
// users off, and answer no later (response p50). It takes a minute or two of CPU, so it runs only with
// VOICED_ENDPOINTING=1; VOICED_ENDPOINTING_REPORT=FILE runs the whole
// curve (fixed and adaptive endpointing on a range of VAD stops) and writes
// it there as Markdown (make bench writes bench/results/endpointing.md).
func TestEndpointing(t *testing.T) {
	report := os.Getenv("VOICED_ENDPOINTING_REPORT")
	if report == "" && os.Getenv("VOICED_ENDPOINTING") != "1" {
		t.Skip("set VOICED_ENDPOINTING=1 (or VOICED_ENDPOINTING_REPORT=FILE) to run the recognizer over the endpointing set")
	}
	model, rec := endpointingModels(t)
	set := buildSet(t)
	if report == "" {
		// The bar: the adaptive stage on the shipped VAD stop
		// answers faster than the fixed 500 ms stop, and cuts fewer
		// users off.
		outs := runSet(t, model, rec, 500*time.Millisecond, []setting{fixed}, set)
		base := summarize(fixed, 500*time.Millisecond, outs[0])
		outs = runSet(t, model, rec, defaultStop, []setting{adaptive}, set)
		res := summarize(adaptive, defaultStop, outs[0])
		logOutcomes(t, outs[0])
		for _, r := range []pointResult{base, res} {
			t.Logf("%s: %d/%d cut off %v, %d not answered, response p50 %v p90 %v", r.label(), r.cuts, r.n, r.cutNames, r.missed, r.p50, r.p90)
		}
		if res.cuts >= base.cuts || res.p50 > base.p50 {
			t.Errorf("the defaults (%s) are no better than %s", res.label(), base.label())
		}
		return
	}
	var rows []pointResult
	for _, stop := range stops {
		ss := append([]setting{fixed, adaptive}, variants...)
		outs := runSet(t, model, rec, stop, ss, set)
		for i, s := range ss {
			res := summarize(s, stop, outs[i])
			t.Logf("%s: %d/%d cut off %v, %d not answered, p50 %v p90 %v", res.label(), res.cuts, res.n, res.cutNames, res.missed, res.p50, res.p90)
			rows = append(rows, res)
		}
	}
	if err := os.WriteFile(report, []byte(markdown(set, rows)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func logOutcomes(t *testing.T, outs []outcome) {
	for _, o := range outs {
		var rs []string
		for _, r := range o.releases {
			rs = append(rs, fmt.Sprintf("%q at %+d ms", r.text, (r.at-o.item.end).Milliseconds()))
		}
		t.Logf("%s: %s", o.item.name, strings.Join(rs, ", "))
	}
}

// defaultStop is the VAD stop the shipped configuration pairs with the
// turn stage (internal/config/default.toml).
const defaultStop = 300 * time.Millisecond

func markdown(set []setItem, rows []pointResult) string {
	var b strings.Builder
	human := 0
	for _, it := range set {
		if it.human {
			human++
		}
	}
	fmt.Fprintf(&b, "# Endpointing: premature turn ends vs. response delay\n\n")
	fmt.Fprintf(&b, "Written by `VOICED_ENDPOINTING_REPORT=bench/results/endpointing.md go test -run TestEndpointing ./processors/turntaking/` (`make bench`).\n\n")
	fmt.Fprintf(&b, "The set: %d utterances, %d generated with flite (phrases joined with 300-900 ms pauses after conjunctions, fillers and inside digit strings, and complete sentences without pauses) and %d human recordings from Debian's pocketsphinx-testdata (two of them pairs joined by a pause as one turn). Each is labelled with where the turn really ends (its last word). ", len(set), len(set)-human, human)
	fmt.Fprintf(&b, "They are played, one after the other, to one session of the Silero VAD, pocketsphinx and the turn stage, in a synctest bubble: times are the audio's, so the delays are the turn logic's (VAD stop, wait for the final, hold), not this machine's speed. Voice-to-voice adds the recognizer's final (tens of ms), the agent and the first synthesized audio.\n\n")
	fmt.Fprintf(&b, "- **cut off**: the turn was answered before it really ended (the user was interrupted mid-turn).\n")
	fmt.Fprintf(&b, "- **response p50/p90**: from the real end of the turn to the release of the user's whole turn to the agent.\n")
	fmt.Fprintf(&b, "- **fixed**: the VAD's silence stop alone (`hold = \"-1s\"`); **adaptive**: the turn stage's defaults (holds for unfinished-sounding transcripts, adapted per user) on that VAD stop.\n\n")
	fmt.Fprintf(&b, "| setting | cut off | response p50 | response p90 | not answered | items cut off |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d/%d | %d ms | %d ms | %d | %s |\n", r.label(), r.cuts, r.n, r.p50.Milliseconds(), r.p90.Milliseconds(), r.missed, strings.Join(r.cutNames, ", "))
	}
	b.WriteString("\nItems:\n\n")
	for _, it := range set {
		kind := "flite"
		if it.human {
			kind = "human"
		}
		fmt.Fprintf(&b, "- `%s` (%s): turn ends at %d ms\n", it.name, kind, (it.end - lead).Milliseconds())
	}
	return b.String()
}
