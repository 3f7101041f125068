package telemetry

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/pipeline/turns"
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
	EndedAnswered    = turns.EndedAnswered    // the bot finished speaking its answer
	EndedInterrupted = turns.EndedInterrupted // the user barged in during the answer
	EndedSuperseded  = turns.EndedSuperseded  // a new user turn began before any answer
	EndedSessionEnd  = turns.EndedSessionEnd  // the session ended first
)

// SessionInfo describes the session a SessionTrace observes.
type SessionInfo struct {
	ID        string
	Transport string // "websocket", ...
	// StageName names stage i of the pipeline (pipeline.(*Pipeline).StageName);
	// it is called only for error frames, after the pipeline exists. May be
	// nil.
	StageName func(i int) string
	// Turns, if set, is the session's turn tracker, shared with other
	// listeners (the latency breakdown): the trace listens to it, and the
	// caller adds it to the pipeline's observers. Otherwise the
	// SessionTrace feeds a tracker of its own from OnHop.
	Turns *turns.Tracker
}

// SessionTrace observes one session's pipeline: it makes the session's
// trace (root span SpanSession; a SpanTurn per user turn, from the end of
// the user's speech, or a typed transcript, to the end of the bot's answer
// or its interruption; child spans for the work of each turn) and counts
// sessions, turns, interruptions and errors. The turns and their milestones
// come from a turns.Tracker (see SessionInfo.Turns).
//
// OnHop is safe for concurrent use and ignores every hop but a frame's
// first (the one that creates it). End must be called once the pipeline has
// returned.
type SessionTrace struct {
	t       *Telemetry
	info    SessionInfo
	root    trace.Span
	rootCtx context.Context
	turns   *turns.Tracker
	own     bool // turns is fed by OnHop

	mu    sync.Mutex
	ended bool
	cur   *turnSpans
}

// turnSpans are the open spans of the turn being traced.
type turnSpans struct {
	span trace.Span
	ctx  context.Context
	stt  trace.Span
	llm  trace.Span
	tts  trace.Span // sentence being synthesized
	play trace.Span // bot speaking
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
	s := &SessionTrace{t: t, info: info, root: root, rootCtx: rootCtx, turns: info.Turns}
	if s.turns == nil {
		s.turns, s.own = turns.New(), true
	}
	s.turns.Listen(s.onTurn)
	return s
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
	if s.own {
		s.turns.OnHop(h)
	}
	switch f := h.Frame.(type) {
	case *frame.Error:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ended {
			return
		}
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
		if s.cur != nil {
			sp = s.cur.span
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
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ended {
			return
		}
		s.root.AddEvent("end", trace.WithTimestamp(h.At), trace.WithAttributes(attribute.String("voiced.reason", f.Reason)))
	}
}

// onTurn makes the spans of the turns' milestones. It runs under the
// tracker's lock.
func (s *SessionTrace) onTurn(e turns.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended && e.Kind != turns.Closed {
		return
	}
	c := s.cur
	if c == nil && e.Kind != turns.Opened {
		return
	}
	switch e.Kind {
	case turns.Opened:
		tn := e.Turn
		input := "speech"
		if tn.Typed {
			input = "text"
		}
		ctx, span := s.t.tracer.Start(s.rootCtx, SpanTurn, trace.WithTimestamp(tn.Start), trace.WithAttributes(
			attribute.Int("voiced.turn.index", tn.Index),
			attribute.Int64("voiced.turn", int64(tn.N)),
			attribute.String("voiced.turn.input", input),
		))
		c = &turnSpans{span: span, ctx: ctx}
		s.cur = c
		if _, ok := e.Frame.(*frame.UserStoppedSpeaking); ok {
			_, ep := s.t.tracer.Start(c.ctx, SpanEndpointing, trace.WithTimestamp(tn.Start))
			ep.End(trace.WithTimestamp(tn.Detected))
			_, c.stt = s.t.tracer.Start(c.ctx, SpanSTT, trace.WithTimestamp(tn.Detected))
		}

	case turns.Transcribed:
		if c.stt != nil {
			c.stt.SetAttributes(attribute.Int("voiced.transcript.length", e.Turn.TranscriptLen))
			c.stt.End(trace.WithTimestamp(e.At))
			c.stt = nil
		}

	case turns.LLMStarted:
		_, c.llm = s.t.tracer.Start(c.ctx, SpanLLM, trace.WithTimestamp(e.At))

	case turns.FirstToken:
		if c.llm != nil {
			c.llm.AddEvent("first_token", trace.WithTimestamp(e.At))
		}

	case turns.LLMEnded:
		if c.llm != nil {
			c.llm.SetAttributes(attribute.Int("voiced.llm.text_length", e.Turn.LLMChars))
			c.llm.End(trace.WithTimestamp(e.At))
			c.llm = nil
		}

	case turns.Sentence:
		_, c.tts = s.t.tracer.Start(c.ctx, SpanTTS, trace.WithTimestamp(e.At),
			trace.WithAttributes(attribute.Int("voiced.tts.text_length", len(e.Text))))

	case turns.FirstAudio:
		if c.tts != nil {
			c.tts.AddEvent("first_audio", trace.WithTimestamp(e.At))
		}

	case turns.SentenceEnd:
		if c.tts != nil {
			if e.Cut {
				c.tts.SetAttributes(attribute.Bool("voiced.cut", true))
			}
			c.tts.End(trace.WithTimestamp(e.At))
			c.tts = nil
		}

	case turns.PlayStarted:
		_, c.play = s.t.tracer.Start(c.ctx, SpanPlayout, trace.WithTimestamp(e.At))

	case turns.PlayStopped:
		if c.play != nil {
			c.play.SetAttributes(attribute.Bool("voiced.interrupted", e.Interrupted))
			c.play.End(trace.WithTimestamp(e.At))
			c.play = nil
		}

	case turns.Underrun:
		c.span.AddEvent("playout_underrun", trace.WithTimestamp(e.At))

	case turns.Closed:
		if c == nil {
			return
		}
		if e.EndedBy == EndedInterrupted {
			c.span.AddEvent("interruption", trace.WithTimestamp(e.At),
				trace.WithAttributes(attribute.String("voiced.reason", e.Reason)))
			s.root.AddEvent("interruption", trace.WithTimestamp(e.At),
				trace.WithAttributes(attribute.Int("voiced.turn.index", e.Turn.Index), attribute.String("voiced.reason", e.Reason)))
		}
		s.endTurn(e)
	}
}

// endTurn ends the open turn's span and its open child spans (marked
// voiced.cut). s.mu held.
func (s *SessionTrace) endTurn(e turns.Event) {
	c := s.cur
	s.cur = nil
	at := e.At
	for _, sp := range []*trace.Span{&c.stt, &c.llm, &c.play, &c.tts} {
		if *sp != nil {
			(*sp).SetAttributes(attribute.Bool("voiced.cut", true))
			(*sp).End(trace.WithTimestamp(at))
			*sp = nil
		}
	}
	interrupted := e.EndedBy == EndedInterrupted
	c.span.SetAttributes(
		attribute.Bool("voiced.turn.interrupted", interrupted),
		attribute.String("voiced.turn.ended_by", e.EndedBy),
		attribute.Int("voiced.transcript.length", e.Turn.TranscriptLen),
		attribute.Int("voiced.turn.sentences", e.Turn.Sentences),
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
	now := s.turns.End() // closes the open turn through onTurn
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	if now.IsZero() { // the shared tracker was ended already
		now = time.Now()
		if last := s.turns.Last(); last.After(now) {
			now = last
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.root.RecordError(err)
		s.root.SetStatus(codes.Error, err.Error())
	}
	s.root.SetAttributes(attribute.Int("voiced.session.turns", s.turns.Turns()))
	s.root.End(trace.WithTimestamp(now))
	s.t.m.active.Add(s.rootCtx, -1, metric.WithAttributeSet(attribute.NewSet(attribute.String("voiced.transport", s.info.Transport))))
}
