package telemetry

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/pipeline"
)

// gen_ai semantic-convention attribute keys
// (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/).
const (
	keyOperation     = attribute.Key("gen_ai.operation.name")
	keySystem        = attribute.Key("gen_ai.system")
	keyProvider      = attribute.Key("gen_ai.provider.name")
	keyRequestModel  = attribute.Key("gen_ai.request.model")
	keyMaxTokens     = attribute.Key("gen_ai.request.max_tokens")
	keyTemperature   = attribute.Key("gen_ai.request.temperature")
	keyFinishReasons = attribute.Key("gen_ai.response.finish_reasons")
	keyInputTokens   = attribute.Key("gen_ai.usage.input_tokens")
	keyOutputTokens  = attribute.Key("gen_ai.usage.output_tokens")
	keyTokenType     = attribute.Key("gen_ai.token.type")
	keyAgentName     = attribute.Key("gen_ai.agent.name")
	keyToolName      = attribute.Key("gen_ai.tool.name")
	keyToolCallID    = attribute.Key("gen_ai.tool.call.id")
	keyErrorType     = attribute.Key("error.type")
)

// TraceModel returns m with every Stream call traced: a client span
// "chat {model}" with the gen_ai attributes (operation, provider and model
// from agents.ModelInfo when m implements it, max tokens, temperature,
// finish reasons, token usage), an event "first_token" and attribute
// voiced.time_to_first_token (seconds), an event per tool call, and the
// gen_ai.client.operation.duration and gen_ai.client.token.usage metrics.
// A failed call sets the span's status to Error; a cancelled one (barge-in)
// is recorded with voiced.cancelled, voiced.cancel.cause and
// voiced.interrupted (the cause is pipeline.ErrInterrupted), and keeps an
// unset status unless a deadline ran out. The stream's events and errors
// pass through unchanged. The returned model implements agents.ModelInfo
// when m does. Prompts and answers are not recorded.
//
// The span's parent is the span in Stream's context or, when there is none
// and the context comes from SessionTrace.Context, the session's current
// turn (its model generation span if open).
func (t *Telemetry) TraceModel(m agents.ChatModel) agents.ChatModel {
	if t == nil || m == nil {
		return m
	}
	tm := &tracedModel{t: t, m: m}
	info, ok := m.(agents.ModelInfo)
	if !ok {
		return tm
	}
	tm.provider, tm.model = info.Provider(), info.Model()
	return &tracedModelInfo{tm}
}

type tracedModel struct {
	t               *Telemetry
	m               agents.ChatModel
	provider, model string
}

type tracedModelInfo struct{ *tracedModel }

func (m *tracedModelInfo) Provider() string { return m.provider }
func (m *tracedModelInfo) Model() string    { return m.model }

// Stream implements agents.ChatModel.
func (tm *tracedModel) Stream(ctx context.Context, req agents.Request) iter.Seq2[agents.Event, error] {
	return func(yield func(agents.Event, error) bool) {
		t := tm.t
		base := []attribute.KeyValue{keyOperation.String("chat")}
		if tm.provider != "" {
			base = append(base, keySystem.String(tm.provider), keyProvider.String(tm.provider))
		}
		if tm.model != "" {
			base = append(base, keyRequestModel.String(tm.model))
		}
		attrs := append([]attribute.KeyValue(nil), base...)
		if req.MaxTokens > 0 {
			attrs = append(attrs, keyMaxTokens.Int(req.MaxTokens))
		}
		if req.Temperature != nil {
			attrs = append(attrs, keyTemperature.Float64(*req.Temperature))
		}
		attrs = append(attrs, attribute.Int("voiced.request.messages", len(req.Messages)),
			attribute.Int("voiced.request.tools", len(req.Tools)))
		name := "chat"
		if tm.model != "" {
			name += " " + tm.model
		}
		ctx, span := t.tracer.Start(t.parentContext(ctx), name,
			trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		start := time.Now()

		var (
			first   bool
			finish  []string
			usage   *agents.Usage
			calls   int
			outErr  error
			stopped bool
		)
		for ev, err := range tm.m.Stream(ctx, req) {
			if err != nil {
				outErr = err
			} else {
				if ev.Text != "" && !first {
					first = true
					span.SetAttributes(attribute.Float64("voiced.time_to_first_token", time.Since(start).Seconds()))
					span.AddEvent("first_token")
				}
				if tc := ev.ToolCall; tc != nil {
					calls++
					span.AddEvent("gen_ai.tool.call", trace.WithAttributes(keyToolName.String(tc.Name), keyToolCallID.String(tc.ID)))
				}
				if ev.Usage != nil {
					u := *ev.Usage
					usage = &u
				}
				if ev.FinishReason != "" {
					finish = append(finish, ev.FinishReason)
				}
			}
			if !yield(ev, err) {
				stopped = err == nil // stopping at an error is normal
				break
			}
		}

		if len(finish) > 0 {
			span.SetAttributes(keyFinishReasons.StringSlice(finish))
		}
		if usage != nil {
			span.SetAttributes(keyInputTokens.Int(usage.InputTokens), keyOutputTokens.Int(usage.OutputTokens))
		}
		span.SetAttributes(attribute.Int("voiced.response.tool_calls", calls))
		errType := finishSpan(ctx, span, outErr, stopped)

		mattrs := base
		if errType != "" {
			mattrs = append(mattrs, keyErrorType.String(errType))
		}
		set := attribute.NewSet(mattrs...)
		mctx := context.WithoutCancel(ctx)
		t.m.modelDuration.Record(mctx, time.Since(start).Seconds(), metric.WithAttributeSet(set))
		if usage != nil {
			in := attribute.NewSet(append(mattrs, keyTokenType.String("input"))...)
			out := attribute.NewSet(append(mattrs, keyTokenType.String("output"))...)
			t.m.modelTokens.Record(mctx, int64(usage.InputTokens), metric.WithAttributeSet(in))
			t.m.modelTokens.Record(mctx, int64(usage.OutputTokens), metric.WithAttributeSet(out))
		}
		span.End()
	}
}

// finishSpan sets a finished call's outcome on span: cancellation, error or
// an abandoned stream. It returns the error.type of a failure ("" if none).
func finishSpan(ctx context.Context, span trace.Span, err error, stopped bool) string {
	if stopped {
		span.SetAttributes(attribute.Bool("voiced.stream.abandoned", true))
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		span.SetAttributes(
			attribute.Bool("voiced.cancelled", true),
			attribute.String("voiced.cancel.cause", cause.Error()),
			attribute.Bool("voiced.interrupted", errors.Is(cause, pipeline.ErrInterrupted)),
		)
		span.AddEvent("cancelled")
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			span.SetStatus(codes.Error, "deadline exceeded")
			return "timeout"
		}
		return ""
	}
	if err == nil {
		return ""
	}
	typ := errorType(err)
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(keyErrorType.String(typ), attribute.Bool("voiced.retryable", agents.IsRetryable(err)))
	return typ
}

// errorType is a low-cardinality name for err: a provider's HTTP status, or
// the error's Go type.
func errorType(err error) string {
	var pe *agents.ProviderError
	if errors.As(err, &pe) && pe.Status != 0 {
		return strconv.Itoa(pe.Status)
	}
	if errors.As(err, &pe) {
		return "provider_error"
	}
	return fmt.Sprintf("%T", err)
}

// parentContext returns ctx, or, if it carries no span but a SessionTrace
// of t, ctx with the session's current span.
func (t *Telemetry) parentContext(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if s, ok := ctx.Value(sessionKey{}).(*SessionTrace); ok && s != nil && s.t == t {
		return trace.ContextWithSpan(ctx, s.parent())
	}
	return ctx
}

// TraceRunnable returns r with every Run traced: a span
// "invoke_agent {name}" (gen_ai.operation.name invoke_agent,
// gen_ai.agent.name) covering the run; a child span per member agent that
// reports EventAgentStarted/EventAgentFinished under another name; a span
// "execute_tool {tool}" (execute_tool, gen_ai.tool.name, gen_ai.tool.call.id)
// from each EventToolCall to the EventToolResult with the same call ID,
// with an Error status when the tool failed; and an event "handoff"
// (voiced.handoff.from, voiced.handoff.to) on the run's span for each
// EventHandoff. Spans still open when the stream ends are ended with
// voiced.cut. Errors and cancellation are recorded as by TraceModel. The
// run's context carries its span, so traced models called by r nest under
// it. Events and errors pass through unchanged.
func (t *Telemetry) TraceRunnable(r agents.Runnable) agents.Runnable {
	if t == nil || r == nil {
		return r
	}
	return &tracedRunnable{t: t, r: r}
}

type tracedRunnable struct {
	t *Telemetry
	r agents.Runnable
}

// Name implements agents.Runnable.
func (tr *tracedRunnable) Name() string { return tr.r.Name() }

// Run implements agents.Runnable.
func (tr *tracedRunnable) Run(ctx context.Context, in agents.Input) iter.Seq2[agents.AgentEvent, error] {
	return func(yield func(agents.AgentEvent, error) bool) {
		t := tr.t
		name := tr.r.Name()
		ctx, root := t.tracer.Start(t.parentContext(ctx), "invoke_agent "+name, trace.WithAttributes(
			keyOperation.String("invoke_agent"), keyAgentName.String(name),
			attribute.Int("voiced.input.messages", len(in.Messages)),
		))
		members := map[string]trace.Span{}
		memberCtx := map[string]context.Context{}
		tools := map[string]trace.Span{}
		parent := func(agent string) context.Context {
			if c, ok := memberCtx[agent]; ok {
				return c
			}
			return ctx
		}
		var (
			textLen, handoffs int
			outErr            error
			stopped           bool
		)
		for ev, err := range tr.r.Run(ctx, in) {
			if err != nil {
				outErr = err
			} else {
				switch ev.Kind {
				case agents.EventText:
					textLen += len(ev.Text)
				case agents.EventAgentStarted:
					if ev.Agent != "" && ev.Agent != name && members[ev.Agent] == nil {
						c, sp := t.tracer.Start(ctx, "invoke_agent "+ev.Agent, trace.WithAttributes(
							keyOperation.String("invoke_agent"), keyAgentName.String(ev.Agent)))
						members[ev.Agent], memberCtx[ev.Agent] = sp, c
					}
				case agents.EventAgentFinished:
					if sp := members[ev.Agent]; sp != nil {
						sp.End()
						delete(members, ev.Agent)
						delete(memberCtx, ev.Agent)
					}
				case agents.EventToolCall:
					if tc := ev.ToolCall; tc != nil {
						key := tc.ID
						if key == "" {
							key = tc.Name
						}
						if old := tools[key]; old != nil {
							old.SetAttributes(attribute.Bool("voiced.cut", true))
							old.End()
						}
						_, sp := t.tracer.Start(parent(ev.Agent), "execute_tool "+tc.Name, trace.WithAttributes(
							keyOperation.String("execute_tool"), keyToolName.String(tc.Name),
							keyToolCallID.String(tc.ID), keyAgentName.String(ev.Agent),
							attribute.Int("voiced.tool.arguments_length", len(tc.Arguments)),
						))
						tools[key] = sp
					}
				case agents.EventToolResult:
					if res := ev.ToolResult; res != nil {
						key := res.CallID
						if key == "" {
							key = res.Name
						}
						if sp := tools[key]; sp != nil {
							sp.SetAttributes(attribute.Int("voiced.tool.result_length", len(res.Content)))
							if res.Err != nil {
								sp.RecordError(res.Err)
								sp.SetStatus(codes.Error, res.Err.Error())
								sp.SetAttributes(keyErrorType.String(errorType(res.Err)))
							}
							sp.End()
							delete(tools, key)
						}
					}
				case agents.EventHandoff:
					if h := ev.Handoff; h != nil {
						handoffs++
						opt := trace.WithAttributes(attribute.String("voiced.handoff.from", h.From), attribute.String("voiced.handoff.to", h.To))
						root.AddEvent("handoff", opt)
						if sp := members[h.From]; sp != nil {
							sp.AddEvent("handoff", opt)
						}
					}
				}
			}
			if !yield(ev, err) {
				stopped = err == nil // stopping at an error is normal
				break
			}
		}
		for _, sp := range tools {
			sp.SetAttributes(attribute.Bool("voiced.cut", true))
			sp.End()
		}
		for _, sp := range members {
			sp.SetAttributes(attribute.Bool("voiced.cut", true))
			sp.End()
		}
		root.SetAttributes(attribute.Int("voiced.answer.length", textLen), attribute.Int("voiced.handoffs", handoffs))
		finishSpan(ctx, root, outErr, stopped)
		root.End()
	}
}
