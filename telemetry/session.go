package telemetry

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
)

// Span names of a session's trace.
const (
	SpanSession     = "voiced.session"     // the whole conversation (root)
	SpanTurn        = "voiced.turn"        // a user turn, to the end of its answer
	SpanEndpointing = "voiced.endpointing" // last voiced chunk → stop detected
	SpanSTT         = "voiced.stt"         // stop detected → final transcript
	SpanLLM         = "voiced.llm"         // LLMResponseStart → LLMResponseEnd
	SpanTTS         = "voiced.tts"         // one sentence: TTSText → its last audio
	SpanPlayout     = "voiced.playout"     // BotStartedSpeaking → BotStoppedSpeaking
)

// How a turn span ended (attribute voiced.turn.ended_by).
const (
	EndedAnswered    = "answered"    // the bot finished speaking its answer
	EndedInterrupted = "interrupted" // the user barged in during the answer
	EndedSuperseded  = "superseded"  // a new user turn began before any answer
	EndedSessionEnd  = "session_end" // the session ended first
)

// SessionInfo describes the session a SessionTrace observes.
type SessionInfo struct {
	ID        string
	Transport string // "websocket", ...
	// StageName names stage i of the pipeline (pipeline.(*Pipeline).StageName);
	// it is called only for error frames, after the pipeline exists. May be
	// nil.
	StageName func(i int) string
}

// SessionTrace observes one session's pipeline: it makes the session's
// trace (root span SpanSession; a SpanTurn per user turn, from the end of
// the user's speech, or a typed transcript, to the end of the bot's answer
// or its interruption; child spans for the work of each turn) and counts
// sessions, turns, interruptions and errors.
//
// OnHop is safe for concurrent use and ignores every hop but a frame's
// first (the one that creates it); input audio and all but a sentence's
// first and last output audio are ignored without locking or allocating.
// End must be called once the pipeline has returned.
type SessionTrace struct {
	t       *Telemetry
	info    SessionInfo
	root    trace.Span
	rootCtx context.Context

	wantAudio atomic.Bool // a sentence is waiting for its first audio

	mu    sync.Mutex
	ended bool
	last  time.Time // latest hop seen
	turns int
	cur   *turnState
}

type turnState struct {
	n     uint32 // pipeline turn of the frames of the answer
	span  trace.Span
	ctx   context.Context
	stt   trace.Span
	llm   trace.Span
	tts   trace.Span // sentence being synthesized
	play  trace.Span // bot speaking
	typed bool

	transcriptLen int
	llmStarted    bool
	llmDone       bool
	firstToken    bool
	llmChars      int
	ttsAudio      bool // the sentence in tts has had audio
	sentences     int
}

// SessionObserver starts the trace of a session and returns its observer,
// to be added to the session pipeline's Options.Observers. ctx is used only
// to link the session's root span to a span it carries (the HTTP request
// that opened the session); the trace itself is a new one.
func (t *Telemetry) SessionObserver(ctx context.Context, info SessionInfo) *SessionTrace {
	if t == nil {
		return nil
	}
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithAttributes(
			attribute.String("voiced.session.id", info.ID),
			attribute.String("voiced.transport", info.Transport),
		),
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	rootCtx, root := t.tracer.Start(context.Background(), SpanSession, opts...)
	tr := metric.WithAttributeSet(attribute.NewSet(attribute.String("voiced.transport", info.Transport)))
	t.m.sessions.Add(rootCtx, 1, tr)
	t.m.active.Add(rootCtx, 1, tr)
	return &SessionTrace{t: t, info: info, root: root, rootCtx: rootCtx}
}

// SpanContext returns the session's root span context (for logs).
func (s *SessionTrace) SpanContext() trace.SpanContext {
	if s == nil {
		return trace.SpanContext{}
	}
	return s.root.SpanContext()
}

type sessionKey struct{}

// Context returns ctx carrying s, so that TraceModel and TraceRunnable,
// called under it (under the pipeline's turn contexts, if the pipeline is
// run with it) without a span of their own in the context, make their spans
// children of the turn being answered. It adds no span to ctx.
func (s *SessionTrace) Context(ctx context.Context) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, sessionKey{}, s)
}

// parent returns the span that work done now belongs to: the model
// generation of the open turn, else the turn, else the session.
func (s *SessionTrace) parent() trace.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur; c != nil {
		if c.llm != nil {
			return c.llm
		}
		return c.span
	}
	return s.root
}

// OnHop implements pipeline.Observer.
func (s *SessionTrace) OnHop(h pipeline.Hop) {
	if s == nil || !h.First {
		return
	}
	switch f := h.Frame.(type) {
	case *frame.Interruption, *frame.UserStoppedSpeaking, *frame.LLMResponseStart, *frame.LLMText,
		*frame.LLMResponseEnd, *frame.TTSText, *frame.BotStartedSpeaking, *frame.BotStoppedSpeaking,
		*frame.Error, *frame.End:
	default:
		return // input audio, VAD scores, metrics, ...: not traced
	case *frame.OutputAudio:
		if f.Spoken == "" && !s.wantAudio.Load() {
			return
		}
	case *frame.Transcript:
		if !f.Final {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if h.At.After(s.last) {
		s.last = h.At
	}
	c := s.cur
	switch f := h.Frame.(type) {
	case *frame.Interruption:
		if c == nil {
			return
		}
		if c.llmStarted {
			c.span.AddEvent("interruption", trace.WithTimestamp(h.At),
				trace.WithAttributes(attribute.String("voiced.reason", f.Reason)))
			s.root.AddEvent("interruption", trace.WithTimestamp(h.At),
				trace.WithAttributes(attribute.Int("voiced.turn.index", s.turns), attribute.String("voiced.reason", f.Reason)))
			s.endTurn(h.At, EndedInterrupted)
		} else {
			s.endTurn(h.At, EndedSuperseded)
		}

	case *frame.UserStoppedSpeaking:
		start := f.At
		if start.IsZero() || start.After(h.At) {
			start = h.At
		}
		c = s.startTurn(start, f.Turn, false)
		_, ep := s.t.tracer.Start(c.ctx, SpanEndpointing, trace.WithTimestamp(start))
		ep.End(trace.WithTimestamp(h.At))
		_, c.stt = s.t.tracer.Start(c.ctx, SpanSTT, trace.WithTimestamp(h.At))

	case *frame.Transcript:
		if f.Typed || c == nil {
			c = s.startTurn(h.At, f.Turn, f.Typed)
		}
		c.n = f.Turn
		c.transcriptLen = len(f.Text)
		if c.stt != nil {
			c.stt.SetAttributes(attribute.Int("voiced.transcript.length", len(f.Text)))
			c.stt.End(trace.WithTimestamp(h.At))
			c.stt = nil
		}

	case *frame.LLMResponseStart:
		if c == nil || f.Turn != c.n || c.llm != nil {
			return
		}
		_, c.llm = s.t.tracer.Start(c.ctx, SpanLLM, trace.WithTimestamp(h.At))
		c.llmStarted, c.llmDone, c.firstToken, c.llmChars = true, false, false, 0

	case *frame.LLMText:
		if c == nil || f.Turn != c.n || c.llm == nil {
			return
		}
		if !c.firstToken {
			c.firstToken = true
			c.llm.AddEvent("first_token", trace.WithTimestamp(h.At))
		}
		c.llmChars += len(f.Text)

	case *frame.LLMResponseEnd:
		if c == nil || f.Turn != c.n || c.llm == nil {
			return
		}
		c.llm.SetAttributes(attribute.Int("voiced.llm.text_length", c.llmChars))
		c.llm.End(trace.WithTimestamp(h.At))
		c.llm, c.llmDone = nil, true

	case *frame.TTSText:
		if c == nil || f.Turn != c.n {
			return
		}
		s.endSentence(c, h.At, true) // synthesis of the last one failed
		_, c.tts = s.t.tracer.Start(c.ctx, SpanTTS, trace.WithTimestamp(h.At),
			trace.WithAttributes(attribute.Int("voiced.tts.text_length", len(f.Text))))
		c.ttsAudio = false
		c.sentences++
		s.wantAudio.Store(true)

	case *frame.OutputAudio:
		if c == nil || f.Turn != c.n || c.tts == nil {
			return
		}
		if !c.ttsAudio {
			c.ttsAudio = true
			s.wantAudio.Store(false)
			c.tts.AddEvent("first_audio", trace.WithTimestamp(h.At))
		}
		if f.Spoken != "" {
			s.endSentence(c, h.At, false)
		}

	case *frame.BotStartedSpeaking:
		if c == nil || f.Turn != c.n || c.play != nil {
			return
		}
		_, c.play = s.t.tracer.Start(c.ctx, SpanPlayout, trace.WithTimestamp(h.At))

	case *frame.BotStoppedSpeaking:
		if c == nil || f.Turn != c.n {
			return
		}
		if c.play != nil {
			c.play.SetAttributes(attribute.Bool("voiced.interrupted", f.Interrupted))
			c.play.End(trace.WithTimestamp(h.At))
			c.play = nil
		}
		if c.llmDone && c.tts == nil && !f.Interrupted {
			s.endTurn(h.At, EndedAnswered)
		} else if !f.Interrupted {
			c.span.AddEvent("playout_underrun", trace.WithTimestamp(h.At))
		}

	case *frame.Error:
		stage := "input" // pushed into the pipeline
		if h.From >= 0 {
			if s.info.StageName != nil {
				stage = s.info.StageName(h.From)
			} else {
				stage = strconv.Itoa(h.From)
			}
		}
		s.t.m.errors.Add(s.rootCtx, 1, metric.WithAttributes(
			attribute.String("voiced.stage", stage), attribute.Bool("voiced.fatal", f.Fatal)))
		sp := s.root
		if c != nil {
			sp = c.span
		}
		err := f.Err
		if err == nil {
			err = errors.New("unknown error")
		}
		sp.RecordError(err, trace.WithTimestamp(h.At), trace.WithAttributes(
			attribute.String("voiced.stage", stage), attribute.Bool("voiced.fatal", f.Fatal)))
		if f.Fatal {
			s.root.SetStatus(codes.Error, err.Error())
		}

	case *frame.End:
		s.root.AddEvent("end", trace.WithTimestamp(h.At), trace.WithAttributes(attribute.String("voiced.reason", f.Reason)))
	}
}

// startTurn ends the open turn, if any, and opens a new one. s.mu held.
func (s *SessionTrace) startTurn(at time.Time, n uint32, typed bool) *turnState {
	if s.cur != nil {
		s.endTurn(at, EndedSuperseded)
	}
	s.turns++
	input := "speech"
	if typed {
		input = "text"
	}
	ctx, span := s.t.tracer.Start(s.rootCtx, SpanTurn, trace.WithTimestamp(at), trace.WithAttributes(
		attribute.Int("voiced.turn.index", s.turns),
		attribute.Int64("voiced.turn", int64(n)),
		attribute.String("voiced.turn.input", input),
	))
	s.cur = &turnState{n: n, span: span, ctx: ctx, typed: typed}
	return s.cur
}

// endSentence ends the sentence being synthesized, if any. s.mu held.
func (s *SessionTrace) endSentence(c *turnState, at time.Time, cut bool) {
	if c.tts == nil {
		return
	}
	if cut {
		c.tts.SetAttributes(attribute.Bool("voiced.cut", true))
	}
	c.tts.End(trace.WithTimestamp(at))
	c.tts = nil
	s.wantAudio.Store(false)
}

// endTurn ends the open turn and its open child spans (marked voiced.cut).
// s.mu held.
func (s *SessionTrace) endTurn(at time.Time, by string) {
	c := s.cur
	if c == nil {
		return
	}
	s.cur = nil
	for _, sp := range []*trace.Span{&c.stt, &c.llm, &c.play} {
		if *sp != nil {
			(*sp).SetAttributes(attribute.Bool("voiced.cut", true))
			(*sp).End(trace.WithTimestamp(at))
			*sp = nil
		}
	}
	s.endSentence(c, at, true)
	interrupted := by == EndedInterrupted
	c.span.SetAttributes(
		attribute.Bool("voiced.turn.interrupted", interrupted),
		attribute.String("voiced.turn.ended_by", by),
		attribute.Int("voiced.transcript.length", c.transcriptLen),
		attribute.Int("voiced.turn.sentences", c.sentences),
	)
	c.span.End(trace.WithTimestamp(at))
	s.t.m.turns.Add(s.rootCtx, 1)
	if interrupted {
		s.t.m.interruptions.Add(s.rootCtx, 1)
	}
}

// End ends the session's trace: an open turn ends as EndedSessionEnd, and
// err (the pipeline's result) sets the root span's status unless it is nil
// or a cancellation. Hops after End are ignored. Idempotent.
func (s *SessionTrace) End(err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	now := time.Now()
	if s.last.After(now) {
		now = s.last
	}
	s.endTurn(now, EndedSessionEnd)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.root.RecordError(err)
		s.root.SetStatus(codes.Error, err.Error())
	}
	s.root.SetAttributes(attribute.Int("voiced.session.turns", s.turns))
	s.root.End(trace.WithTimestamp(now))
	s.t.m.active.Add(s.rootCtx, -1, metric.WithAttributeSet(attribute.NewSet(attribute.String("voiced.transport", s.info.Transport))))
}
