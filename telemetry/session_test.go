package telemetry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

var base = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }

// Stages of the fake session's pipeline.
const (
	stInput = iota
	stVAD
	stSTT
	stAgent
	stTTS
	stPlayout
	stages
)

var stageNames = [...]string{"input", "vad", "stt", "agent", "tts", "playout"}

func stageName(i int) string {
	if i < 0 || i >= len(stageNames) {
		return ""
	}
	return stageNames[i]
}

// made is the hop on which a stage creates f at ms.
func made(ms, stage int, f frame.Frame) pipeline.Hop {
	return pipeline.Hop{Frame: f, From: stage, To: stage + 1, At: at(ms), First: true}
}

// passed is a later hop of f, which observers must ignore.
func passed(ms, stage int, f frame.Frame) pipeline.Hop {
	return pipeline.Hop{Frame: f, From: stage, To: stage + 1, At: at(ms)}
}

func meta(turn uint32) frame.Meta { return frame.Meta{Turn: turn} }

// twoTurns is a conversation: the user asks, the bot answers two sentences
// and finishes; the user asks again and barges in during the answer; then
// types a question and ends the session while it is being answered.
func twoTurns() []pipeline.Hop {
	audio := &frame.InputAudio{Meta: meta(1), Format: frame.Mono16k, Samples: make([]int16, 320)}
	final1 := &frame.Transcript{Meta: meta(2), Text: "hello there", Final: true}
	return []pipeline.Hop{
		{Frame: audio, From: -1, To: 0, At: at(0), First: true},
		passed(0, stInput, audio),
		// Turn 1 (pipeline turn 2).
		made(100, stVAD, &frame.Interruption{Meta: meta(2), Reason: "user started speaking"}),
		made(100, stVAD, &frame.UserStartedSpeaking{Meta: meta(2), Confidence: 0.9}),
		made(900, stVAD, &frame.UserStoppedSpeaking{Meta: meta(2), At: at(700)}),
		made(1000, stSTT, &frame.Transcript{Meta: meta(2), Text: "hello", Final: false}),
		made(1100, stSTT, final1),
		passed(1101, stAgent, final1),
		made(1150, stAgent, &frame.LLMResponseStart{Meta: meta(2)}),
		made(1200, stAgent, &frame.LLMText{Meta: meta(1), Text: "stale"}),
		made(1300, stAgent, &frame.LLMText{Meta: meta(2), Text: "Hi."}),
		made(1350, stAgent, &frame.LLMText{Meta: meta(2), Text: " How are you?"}),
		made(1400, stTTS, &frame.TTSText{Meta: meta(2), Text: "Hi."}),
		made(1450, stAgent, &frame.LLMResponseEnd{Meta: meta(2)}),
		made(1500, stTTS, &frame.OutputAudio{Meta: meta(2)}),
		made(1520, stTTS, &frame.OutputAudio{Meta: meta(2), Spoken: "Hi."}),
		made(1530, stTTS, &frame.TTSText{Meta: meta(2), Text: "How are you?"}),
		made(1550, stPlayout, &frame.BotStartedSpeaking{Meta: meta(2)}),
		made(1600, stTTS, &frame.OutputAudio{Meta: meta(2)}),
		made(1650, stTTS, &frame.OutputAudio{Meta: meta(2)}),
		made(1700, stTTS, &frame.OutputAudio{Meta: meta(2), Spoken: "How are you?"}),
		{Frame: &frame.BotSpoke{Meta: meta(2), Text: "Hi."}, From: stPlayout, To: stTTS, Dir: pipeline.Upstream, At: at(1800), First: true},
		made(2500, stPlayout, &frame.BotStoppedSpeaking{Meta: meta(2)}),
		// Turn 2 (pipeline turn 3), interrupted.
		made(3000, stVAD, &frame.Interruption{Meta: meta(3), Reason: "user started speaking"}),
		made(3000, stVAD, &frame.UserStartedSpeaking{Meta: meta(3)}),
		made(3800, stVAD, &frame.UserStoppedSpeaking{Meta: meta(3), At: at(3600)}),
		made(3900, stSTT, &frame.Transcript{Meta: meta(3), Text: "tell me a story", Final: true}),
		made(3950, stAgent, &frame.LLMResponseStart{Meta: meta(3)}),
		made(4100, stAgent, &frame.LLMText{Meta: meta(3), Text: "Once upon a time."}),
		made(4200, stTTS, &frame.TTSText{Meta: meta(3), Text: "Once upon a time."}),
		made(4250, stTTS, &frame.Error{Meta: meta(3), Err: errors.New("tts: glitch")}),
		made(4300, stTTS, &frame.OutputAudio{Meta: meta(3)}),
		made(4350, stPlayout, &frame.BotStartedSpeaking{Meta: meta(3)}),
		made(4600, stVAD, &frame.Interruption{Meta: meta(4), Reason: "user started speaking"}),
		made(4600, stVAD, &frame.UserStartedSpeaking{Meta: meta(4)}),
		made(4650, stTTS, &frame.OutputAudio{Meta: meta(3), Spoken: "Once upon a time."}),
		made(4700, stPlayout, &frame.BotStoppedSpeaking{Meta: meta(4), Interrupted: true}),
		// Turn 3 (pipeline turn 5), typed, cut by the end of the session.
		{Frame: &frame.Interruption{Meta: meta(5), Reason: "user typed"}, From: -1, To: 0, At: at(5000), First: true},
		{Frame: &frame.Transcript{Meta: meta(5), Text: "what time is it", Final: true, Typed: true}, From: -1, To: 0, At: at(5000), First: true},
		made(5050, stAgent, &frame.LLMResponseStart{Meta: meta(5)}),
		{Frame: &frame.End{Meta: meta(5), Reason: "client ended"}, From: -1, To: 0, At: at(5100), First: true},
		made(5200, stAgent, &frame.Metrics{Meta: meta(5)}),
	}
}

func TestSessionTraceGolden(t *testing.T) {
	r := newRecorder(t)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "s1", Transport: "websocket", StageName: stageName})
	for _, h := range twoTurns() {
		st.OnHop(h)
	}
	st.End(nil)
	st.End(errors.New("ignored: already ended"))
	st.OnHop(made(6000, stVAD, &frame.UserStoppedSpeaking{Meta: meta(6), At: at(5900)}))

	want := []string{
		"voiced.endpointing <- voiced.turn [700..900]",
		"voiced.turn <- voiced.session [700..2500] voiced.transcript.length=11 voiced.turn.ended_by=answered voiced.turn.index=1 voiced.turn.input=speech voiced.turn.interrupted=false voiced.turn.sentences=2 voiced.turn=2",
		"voiced.stt <- voiced.turn [900..1100] voiced.transcript.length=11",
		"voiced.llm <- voiced.turn [1150..1450] voiced.llm.text_length=16",
		"  event first_token @1300",
		"voiced.tts <- voiced.turn [1400..1520] voiced.tts.text_length=3",
		"  event first_audio @1500",
		"voiced.tts <- voiced.turn [1530..1700] voiced.tts.text_length=12",
		"  event first_audio @1600",
		"voiced.playout <- voiced.turn [1550..2500] voiced.interrupted=false",
		"voiced.endpointing <- voiced.turn [3600..3800]",
		"voiced.turn <- voiced.session [3600..4600] voiced.transcript.length=15 voiced.turn.ended_by=interrupted voiced.turn.index=2 voiced.turn.input=speech voiced.turn.interrupted=true voiced.turn.sentences=1 voiced.turn=3",
		"  event exception @4250 exception.message=tts: glitch exception.type=*errors.errorString voiced.fatal=false voiced.stage=tts",
		"  event interruption @4600 voiced.reason=user started speaking",
		"voiced.stt <- voiced.turn [3800..3900] voiced.transcript.length=15",
		"voiced.llm <- voiced.turn [3950..4600] voiced.cut=true",
		"  event first_token @4100",
		"voiced.tts <- voiced.turn [4200..4600] voiced.cut=true voiced.tts.text_length=17",
		"  event first_audio @4300",
		"voiced.playout <- voiced.turn [4350..4600] voiced.cut=true",
		"voiced.turn <- voiced.session [5000..?] voiced.transcript.length=15 voiced.turn.ended_by=session_end voiced.turn.index=3 voiced.turn.input=text voiced.turn.interrupted=false voiced.turn.sentences=0 voiced.turn=5",
		"voiced.llm <- voiced.turn [5050..?] voiced.cut=true",
		"voiced.session voiced.session.id=s1 voiced.session.turns=3 voiced.transport=websocket",
		"  event interruption @4600 voiced.reason=user started speaking voiced.turn.index=2",
		"  event end @5100 voiced.reason=client ended",
	}
	diffLines(t, r.dump(t, base), want)

	// One trace.
	spans := r.spans.GetSpans()
	for _, s := range spans {
		if s.SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
			t.Fatalf("span %s is in another trace", s.Name)
		}
	}

	m := r.metrics(t)
	for k, v := range map[string]float64{
		"voiced.sessions{voiced.transport=websocket}":        1,
		"voiced.sessions.active{voiced.transport=websocket}": 0,
		"voiced.turns{}":         3,
		"voiced.interruptions{}": 1,
		"voiced.errors{voiced.fatal=false voiced.stage=tts}": 1,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("metric %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func TestSessionTraceFatalErrorAndStatus(t *testing.T) {
	r := newRecorder(t)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "s2", Transport: "websocket"})
	st.OnHop(made(100, 2, &frame.Error{Meta: meta(1), Err: errors.New("stt: gone"), Fatal: true}))
	st.End(errors.New("pipeline: stt: gone"))
	got := r.dump(t, base)
	want := []string{
		"voiced.session voiced.session.id=s2 voiced.session.turns=0 voiced.transport=websocket",
		"  event exception @100 exception.message=stt: gone exception.type=*errors.errorString voiced.fatal=true voiced.stage=2",
		"  event exception exception.message=pipeline: stt: gone exception.type=*errors.errorString",
		"  status Error pipeline: stt: gone",
	}
	diffLines(t, got, want)
	if v := r.metrics(t)["voiced.errors{voiced.fatal=true voiced.stage=2}"]; v != 1 {
		t.Errorf("errors = %v, want 1", v)
	}
}

func TestSessionTraceCanceledIsNotAnError(t *testing.T) {
	r := newRecorder(t)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "s3"})
	st.End(context.Canceled)
	spans := r.spans.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != 0 {
		t.Fatalf("spans = %+v, want one root with unset status", spans)
	}
}

func TestNilTelemetry(t *testing.T) {
	var tel *Telemetry
	st := tel.SessionObserver(context.Background(), SessionInfo{ID: "x"})
	for _, h := range twoTurns() {
		st.OnHop(h)
	}
	st.End(nil)
	tel.RecordTurn(context.Background(), frame.TurnMetrics{VoiceToVoice: time.Second})
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := &fakeModel{}
	if got := tel.TraceModel(m); got != agents.ChatModel(m) {
		t.Fatal("nil Telemetry wrapped the model")
	}
	if st.Context(context.Background()) != context.Background() {
		t.Fatal("nil SessionTrace changed the context")
	}
}

// Observers are called from every stage's goroutine at once.
func TestSessionTraceConcurrentHops(t *testing.T) {
	r := newRecorder(t)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "s4", StageName: stageName})
	hops := twoTurns()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i, h := range hops {
				if i%4 == g {
					st.OnHop(h)
				}
			}
		})
	}
	wg.Wait()
	st.End(nil)
	for _, s := range r.spans.GetSpans() {
		if s.EndTime.IsZero() {
			t.Errorf("span %s was not ended", s.Name)
		}
	}
	if v := r.metrics(t)["voiced.sessions.active{voiced.transport=}"]; v != 0 {
		t.Errorf("active sessions = %v, want 0", v)
	}
}

func BenchmarkSessionTraceInputAudio(b *testing.B) {
	r := newRecorder(b)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "bench", StageName: stageName})
	defer st.End(nil)
	a := &frame.InputAudio{Meta: meta(1), Format: frame.Mono16k, Samples: make([]int16, 320)}
	first := pipeline.Hop{Frame: a, From: -1, To: 0, At: base, First: true}
	next := pipeline.Hop{Frame: a, From: 0, To: 1, At: base}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			st.OnHop(first)
		} else {
			st.OnHop(next)
		}
	}
}

// BenchmarkSessionTraceOutputAudio is a sentence's middle chunks, after its
// first audio was seen: the common case on the output side.
func BenchmarkSessionTraceOutputAudio(b *testing.B) {
	r := newRecorder(b)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "bench", StageName: stageName})
	defer st.End(nil)
	st.OnHop(made(0, stVAD, &frame.UserStoppedSpeaking{Meta: meta(1), At: base}))
	st.OnHop(made(1, stSTT, &frame.Transcript{Meta: meta(1), Text: "hi", Final: true}))
	st.OnHop(made(2, stTTS, &frame.TTSText{Meta: meta(1), Text: "Hello."}))
	st.OnHop(made(3, stTTS, &frame.OutputAudio{Meta: meta(1)}))
	h := made(4, stTTS, &frame.OutputAudio{Meta: meta(1)})
	b.ReportAllocs()
	for b.Loop() {
		st.OnHop(h)
	}
}

// BenchmarkSessionTraceTurn is one whole conversation's hops.
func BenchmarkSessionTraceTurns(b *testing.B) {
	r := newRecorder(b)
	hops := twoTurns()
	b.ReportAllocs()
	for b.Loop() {
		st := r.SessionObserver(context.Background(), SessionInfo{ID: "bench", StageName: stageName})
		for _, h := range hops {
			st.OnHop(h)
		}
		st.End(nil)
		r.spans.Reset()
	}
}

func TestSessionTraceIgnoredFramesDoNotAllocate(t *testing.T) {
	r := newRecorder(t)
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "alloc", StageName: stageName})
	defer st.End(nil)
	st.OnHop(made(0, stVAD, &frame.UserStoppedSpeaking{Meta: meta(1), At: base}))
	st.OnHop(made(1, stSTT, &frame.Transcript{Meta: meta(1), Text: "hi", Final: true}))
	st.OnHop(made(2, stTTS, &frame.TTSText{Meta: meta(1), Text: "Hello."}))
	st.OnHop(made(3, stTTS, &frame.OutputAudio{Meta: meta(1)}))
	a := &frame.InputAudio{Meta: meta(1), Samples: make([]int16, 320)}
	for name, h := range map[string]pipeline.Hop{
		"input audio":        {Frame: a, From: -1, To: 0, At: at(4), First: true},
		"passing hop":        passed(4, stSTT, a),
		"middle output":      made(4, stTTS, &frame.OutputAudio{Meta: meta(1)}),
		"interim transcript": made(4, stSTT, &frame.Transcript{Meta: meta(1), Text: "h"}),
	} {
		if n := testing.AllocsPerRun(100, func() { st.OnHop(h) }); n != 0 {
			t.Errorf("%s: %v allocations per hop, want 0", name, n)
		}
	}
}

// stepFunc is a named test stage.
type stepFunc struct {
	name string
	fn   func(f frame.Frame, out pipeline.Emitter)
}

func (s stepFunc) Name() string { return s.name }

func (s stepFunc) Process(_ context.Context, f frame.Frame, out pipeline.Emitter) error {
	s.fn(f, out)
	return nil
}

// The observer understands the hops a real pipeline makes.
func TestSessionTraceInPipeline(t *testing.T) {
	r := newRecorder(t)
	var p *pipeline.Pipeline
	st := r.SessionObserver(context.Background(), SessionInfo{ID: "p", Transport: "test",
		StageName: func(i int) string { return p.StageName(i) }})
	p = pipeline.New(pipeline.Options{Observers: []pipeline.Observer{st}},
		stepFunc{"vad", func(f frame.Frame, out pipeline.Emitter) {
			out.Pass(f)
			if _, ok := f.(*frame.InputAudio); ok {
				out.Emit(&frame.UserStoppedSpeaking{At: time.Now().Add(-200 * time.Millisecond)})
			}
		}},
		stepFunc{"stt", func(f frame.Frame, out pipeline.Emitter) {
			out.Pass(f)
			if _, ok := f.(*frame.UserStoppedSpeaking); ok {
				out.Emit(&frame.Transcript{Text: "hello", Final: true})
			}
		}},
		stepFunc{"agent", func(f frame.Frame, out pipeline.Emitter) {
			out.Pass(f)
			if _, ok := f.(*frame.Transcript); ok {
				out.Emit(&frame.LLMResponseStart{})
				out.Emit(&frame.LLMText{Text: "Hi."})
				out.Emit(&frame.LLMResponseEnd{})
			}
		}},
		stepFunc{"tts", func(f frame.Frame, out pipeline.Emitter) {
			if l, ok := f.(*frame.LLMText); ok {
				out.Emit(&frame.TTSText{Text: l.Text})
				out.Emit(&frame.OutputAudio{Samples: make([]int16, 160)})
				out.Emit(&frame.OutputAudio{Samples: make([]int16, 160), Spoken: l.Text})
				out.Emit(&frame.Error{Err: errors.New("tts: hiccup")})
				return
			}
			out.Pass(f)
		}},
		stepFunc{"playout", func(f frame.Frame, out pipeline.Emitter) {
			out.Pass(f)
			if a, ok := f.(*frame.OutputAudio); ok && a.Spoken != "" {
				out.Emit(&frame.BotStartedSpeaking{})
				out.Emit(&frame.BotStoppedSpeaking{})
			}
		}},
	)
	ctx := st.Context(context.Background())
	if err := p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: make([]int16, 320)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Push(ctx, &frame.End{Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	err := p.Run(ctx)
	st.End(err)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range r.spans.GetSpans() {
		count[s.Name]++
		if s.Name == SpanTurn {
			for _, kv := range s.Attributes {
				if kv.Key == "voiced.turn.ended_by" && kv.Value.AsString() != EndedAnswered {
					t.Errorf("turn ended by %s, want %s", kv.Value.AsString(), EndedAnswered)
				}
			}
		}
	}
	want := map[string]int{SpanSession: 1, SpanTurn: 1, SpanEndpointing: 1, SpanSTT: 1, SpanLLM: 1, SpanTTS: 1, SpanPlayout: 1}
	for name, n := range want {
		if count[name] != n {
			t.Errorf("%d %s spans, want %d (all: %v)", count[name], name, n, count)
		}
	}
	if v := r.metrics(t)["voiced.errors{voiced.fatal=false voiced.stage=tts}"]; v != 1 {
		t.Errorf("tts errors = %v, want 1", v)
	}
}
