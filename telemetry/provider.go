package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/voiced-dev/voiced/processors/provider"
)

// ProviderObserver returns the observer of speech provider calls
// (recognition and synthesis; see processors/provider): each call is a
// client span "{op} {provider}" with voiced.provider, voiced.operation and
// voiced.model, an event "first_result" and attribute
// voiced.time_to_first_result (seconds); and the metrics
// voiced.provider.duration and voiced.provider.time_to_first_result
// (seconds, by provider and operation) and voiced.provider.errors (by
// provider, operation, error.type and voiced.retryable). A call cut by its
// caller (barge-in) is recorded as cancelled, not as an error. A nil
// Telemetry gives a nil Observer, which providers accept.
func (t *Telemetry) ProviderObserver() (provider.Observer, error) {
	if t == nil {
		return nil, nil
	}
	var errs []error
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := t.meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(LatencyBuckets...))
		errs = append(errs, err)
		return h
	}
	o := &providerObserver{t: t,
		duration: hist("voiced.provider.duration", "Duration of speech provider calls."),
		first:    hist("voiced.provider.time_to_first_result", "From the start of a speech provider call to its first audio or text."),
	}
	var err error
	o.errors, err = t.meter.Int64Counter("voiced.provider.errors", metric.WithDescription("Failed speech provider calls, by error.type."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry: provider instruments: %w", err)
	}
	return o, nil
}

type providerObserver struct {
	t               *Telemetry
	duration, first metric.Float64Histogram
	errors          metric.Int64Counter
}

func (o *providerObserver) StartCall(ctx context.Context, info provider.CallInfo) (context.Context, provider.Call) {
	attrs := []attribute.KeyValue{
		attribute.String("voiced.provider", info.Provider),
		attribute.String("voiced.operation", info.Op),
	}
	spanAttrs := attrs
	if info.Model != "" {
		spanAttrs = append(spanAttrs[:len(spanAttrs):len(spanAttrs)], attribute.String("voiced.model", info.Model))
	}
	ctx, span := o.t.tracer.Start(o.t.parentContext(ctx), info.Op+" "+info.Provider,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(spanAttrs...))
	return ctx, &providerCall{o: o, ctx: ctx, span: span, attrs: attrs, start: time.Now()}
}

type providerCall struct {
	o     *providerObserver
	ctx   context.Context
	span  trace.Span
	attrs []attribute.KeyValue
	start time.Time
	first atomic.Bool
}

func (c *providerCall) FirstResult() {
	if c.first.Swap(true) {
		return
	}
	d := time.Since(c.start).Seconds()
	c.span.AddEvent("first_result")
	c.span.SetAttributes(attribute.Float64("voiced.time_to_first_result", d))
	c.o.first.Record(context.WithoutCancel(c.ctx), d, metric.WithAttributes(c.attrs...))
}

func (c *providerCall) End(err error) {
	ctx := context.WithoutCancel(c.ctx)
	c.o.duration.Record(ctx, time.Since(c.start).Seconds(), metric.WithAttributes(c.attrs...))
	if typ := finishSpan(c.ctx, c.span, err, false); typ != "" {
		if typ != "timeout" {
			typ = providerErrorType(err)
			c.span.SetAttributes(keyErrorType.String(typ), attribute.Bool("voiced.retryable", provider.IsRetryable(err)))
		}
		c.o.errors.Add(ctx, 1, metric.WithAttributes(append(c.attrs[:len(c.attrs):len(c.attrs)],
			keyErrorType.String(typ), attribute.Bool("voiced.retryable", provider.IsRetryable(err)))...))
	}
	c.span.End()
}

// providerErrorType is a low-cardinality name for a provider's error: its
// HTTP status, or its operation's failure.
func providerErrorType(err error) string {
	var pe *provider.Error
	switch {
	case errors.As(err, &pe) && pe.Status != 0:
		return strconv.Itoa(pe.Status)
	case errors.As(err, &pe):
		return "provider_error"
	}
	return fmt.Sprintf("%T", err)
}
