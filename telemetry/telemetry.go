// Package telemetry traces and measures voiced's conversations with
// OpenTelemetry: one trace per session (a span per user turn, child spans for
// recognition, generation and synthesis), Prometheus metrics for the
// per-turn latency breakdown and session counters, and middleware that
// traces model calls, agent runs, tool calls and handoffs with the gen_ai
// semantic conventions.
//
// Nothing here touches the OpenTelemetry globals unless Config.SetGlobal
// asks for it: a Telemetry owns its tracer and meter providers, and every
// span and instrument comes from them. Message contents (prompts, answers,
// tool arguments) are never recorded, only their sizes.
//
// A nil *Telemetry is valid and does nothing: its observers ignore frames,
// its middleware returns what it is given, and Handler answers 404.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	promexp "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/voiced-dev/voiced/frame"
)

// ErrConfig wraps every configuration problem Setup reports.
var ErrConfig = errors.New("telemetry: invalid config")

// ScopeName is the instrumentation scope of voiced's tracer and meter.
const ScopeName = "github.com/voiced-dev/voiced/telemetry"

// Trace exporters accepted in Config.Traces.
const (
	TracesNone     = "none"
	TracesStdout   = "stdout"
	TracesOTLPHTTP = "otlp-http"
	TracesOTLPGRPC = "otlp-grpc"
)

// Metric exporters accepted in Config.Metrics.
const (
	MetricsPrometheus = "prometheus"
	MetricsStdout     = "stdout"
	MetricsNone       = "none"
)

// Config selects the exporters. The zero value exports no traces and serves
// Prometheus metrics from Handler.
type Config struct {
	// Traces is "none" (default), "stdout", "otlp-http" or "otlp-grpc".
	Traces string `toml:"traces"`
	// Endpoint is the OTLP collector: "host:port", or a URL
	// ("https://collector:4318/v1/traces"). Empty: the exporter's default
	// (localhost:4318 or localhost:4317), or the OTEL_EXPORTER_OTLP_*
	// environment variables.
	Endpoint string `toml:"endpoint"`
	// Insecure sends OTLP without TLS.
	Insecure bool `toml:"insecure"`
	// ServiceName is the service.name resource attribute (default "voiced").
	ServiceName string `toml:"service_name"`
	// SampleRatio is the fraction of sessions traced, in (0, 1]; 0 means 1.
	// Sampling is parent-based, so a session's spans are kept or dropped
	// together.
	SampleRatio float64 `toml:"sample_ratio"`
	// Metrics is "prometheus" (default: served by Handler), "stdout" or
	// "none".
	Metrics string `toml:"metrics"`
	// MetricsInterval is how often the stdout metric exporter writes
	// (default 1 minute); unused otherwise.
	MetricsInterval time.Duration `toml:"-"`
	// SetGlobal also installs the providers, a W3C trace-context propagator
	// and an error handler logging to the logger as the OpenTelemetry
	// globals.
	SetGlobal bool `toml:"set_global"`
	// Writer receives the stdout exporters' output (default os.Stdout).
	Writer io.Writer `toml:"-"`
}

// Validate reports what Setup would refuse in c (an unknown exporter, a
// sample ratio outside (0, 1]) without setting anything up.
func (c Config) Validate() error { return c.defaults() }

func (c *Config) defaults() error {
	if c.Traces == "" {
		c.Traces = TracesNone
	}
	if c.Metrics == "" {
		c.Metrics = MetricsPrometheus
	}
	if c.ServiceName == "" {
		c.ServiceName = "voiced"
	}
	if c.SampleRatio == 0 {
		c.SampleRatio = 1
	}
	if c.MetricsInterval <= 0 {
		c.MetricsInterval = time.Minute
	}
	if c.Writer == nil {
		c.Writer = os.Stdout
	}
	switch c.Traces {
	case TracesNone, TracesStdout, TracesOTLPHTTP, TracesOTLPGRPC:
	default:
		return fmt.Errorf("%w: traces %q (want none, stdout, otlp-http or otlp-grpc)", ErrConfig, c.Traces)
	}
	switch c.Metrics {
	case MetricsPrometheus, MetricsStdout, MetricsNone:
	default:
		return fmt.Errorf("%w: metrics %q (want prometheus, stdout or none)", ErrConfig, c.Metrics)
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("%w: sample_ratio %v is outside (0, 1]", ErrConfig, c.SampleRatio)
	}
	return nil
}

// Telemetry holds the tracer, the meter's instruments and the exporters.
// Its methods are safe for concurrent use.
type Telemetry struct {
	log    *slog.Logger
	tracer trace.Tracer
	meter  metric.Meter
	m      instruments

	handler   http.Handler
	shutdowns []func(context.Context) error
	once      sync.Once
	shutErr   error
}

// Setup builds the providers and exporters cfg names. ctx bounds the
// exporters' setup only. The caller must call Shutdown to flush them.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (*Telemetry, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	var shutdowns []func(context.Context) error
	fail := func(err error) (*Telemetry, error) {
		for _, s := range shutdowns {
			_ = s(ctx)
		}
		return nil, err
	}

	var tp trace.TracerProvider = tracenoop.NewTracerProvider()
	if cfg.Traces != TracesNone {
		exp, err := traceExporter(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		stp := sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		)
		shutdowns = append(shutdowns, stp.Shutdown)
		tp = stp
	}

	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	handler := http.Handler(http.NotFoundHandler())
	switch cfg.Metrics {
	case MetricsPrometheus:
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := promexp.New(promexp.WithRegisterer(reg), promexp.WithoutScopeInfo())
		if err != nil {
			return fail(fmt.Errorf("telemetry: prometheus: %w", err))
		}
		smp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		shutdowns = append(shutdowns, smp.Shutdown)
		mp = smp
		handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLogger{log}})
	case MetricsStdout:
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(cfg.Writer))
		if err != nil {
			return fail(fmt.Errorf("telemetry: stdout metrics: %w", err))
		}
		smp := sdkmetric.NewMeterProvider(
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(cfg.MetricsInterval))),
			sdkmetric.WithResource(res),
		)
		shutdowns = append(shutdowns, smp.Shutdown)
		mp = smp
	}

	t, err := New(tp, mp, log)
	if err != nil {
		return fail(err)
	}
	t.handler = handler
	t.shutdowns = shutdowns
	if cfg.SetGlobal {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("telemetry export failed", "err", err)
		}))
	}
	log.Info("telemetry ready", "traces", cfg.Traces, "metrics", cfg.Metrics, "sample_ratio", cfg.SampleRatio)
	return t, nil
}

func traceExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	url := strings.Contains(cfg.Endpoint, "://")
	switch cfg.Traces {
	case TracesStdout:
		return stdouttrace.New(stdouttrace.WithWriter(cfg.Writer))
	case TracesOTLPHTTP:
		var opts []otlptracehttp.Option
		switch {
		case url:
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		case cfg.Endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp-http: %w", err)
		}
		return exp, nil
	default: // TracesOTLPGRPC
		var opts []otlptracegrpc.Option
		switch {
		case url:
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		case cfg.Endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp-grpc: %w", err)
		}
		return exp, nil
	}
}

// New returns a Telemetry over providers the caller owns (tests, or a
// program that set up OpenTelemetry itself); nil providers are no-ops.
// Shutdown does not shut them down, and Handler answers 404.
func New(tp trace.TracerProvider, mp metric.MeterProvider, log *slog.Logger) (*Telemetry, error) {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Telemetry{log: log, tracer: tp.Tracer(ScopeName), meter: mp.Meter(ScopeName), handler: http.NotFoundHandler()}
	if err := t.m.init(t.meter); err != nil {
		return nil, fmt.Errorf("telemetry: instruments: %w", err)
	}
	return t, nil
}

// Handler serves the metrics in the Prometheus text format (mount it at
// /metrics). It answers 404 unless Config.Metrics is "prometheus".
func (t *Telemetry) Handler() http.Handler {
	if t == nil {
		return http.NotFoundHandler()
	}
	return t.handler
}

// Shutdown flushes and stops the exporters Setup made, within ctx's
// deadline. It is idempotent; spans ended after it are dropped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.once.Do(func() {
		var errs []error
		for i := len(t.shutdowns) - 1; i >= 0; i-- {
			if err := t.shutdowns[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			t.shutErr = fmt.Errorf("telemetry: shutdown: %w", err)
		}
	})
	return t.shutErr
}

// RecordTurn records one turn's latency breakdown in the latency
// histograms (zero durations, for stages that did not run, are skipped).
// Call it from session.Builder.OnMetrics.
func (t *Telemetry) RecordTurn(ctx context.Context, m frame.TurnMetrics) {
	if t == nil {
		return
	}
	rec := func(h metric.Float64Histogram, d time.Duration) {
		if d > 0 {
			h.Record(ctx, d.Seconds())
		}
	}
	rec(t.m.voiceToVoice, m.VoiceToVoice)
	rec(t.m.endpointing, m.Endpointing)
	rec(t.m.sttFinal, m.STTFinal)
	rec(t.m.llmFirst, m.LLMFirst)
	rec(t.m.firstSentence, m.SentenceTTS)
	rec(t.m.ttsFirst, m.TTSFirst)
	rec(t.m.endpointDelay, m.EndpointDelay)
	// Speech over the bot: an interruption that began this turn, and the
	// false interruptions since the last report (each recorded with
	// their mean pause).
	if m.BargeIn != "" {
		out := metric.WithAttributes(attribute.String("outcome", m.BargeIn))
		t.m.bargeIns.Add(ctx, 1, out)
		t.m.pause.Record(ctx, m.Pause.Seconds(), out)
	}
	if m.Resumes > 0 {
		out := metric.WithAttributes(attribute.String("outcome", frame.BargeInResumed))
		t.m.bargeIns.Add(ctx, int64(m.Resumes), out)
		for range m.Resumes {
			t.m.pause.Record(ctx, (m.ResumedPause / time.Duration(m.Resumes)).Seconds(), out)
		}
	}
}

// LatencyBuckets are the latency histograms' bucket bounds, in seconds
// (1 ms to 5 s).
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5}

// ModelBuckets are the model-call duration buckets, in seconds.
var ModelBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}

// TokenBuckets are the token-usage buckets.
var TokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144}

type instruments struct {
	voiceToVoice, endpointing, sttFinal, llmFirst, firstSentence, ttsFirst metric.Float64Histogram
	endpointDelay, pause                                                   metric.Float64Histogram
	bargeIns                                                               metric.Int64Counter

	sessions, turns, interruptions, errors metric.Int64Counter
	active                                 metric.Int64UpDownCounter

	modelDuration metric.Float64Histogram
	modelTokens   metric.Int64Histogram
}

func (m *instruments) init(meter metric.Meter) error {
	var errs []error
	lat := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram("voiced.latency."+name, metric.WithUnit("s"),
			metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(LatencyBuckets...))
		errs = append(errs, err)
		return h
	}
	count := func(name, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m.voiceToVoice = lat("voice_to_voice", "From the end of the user's speech to the first answer audio written to the transport.")
	m.endpointing = lat("endpointing", "From the end of the user's speech to its detection.")
	m.sttFinal = lat("stt_final", "From the end of the user's speech to the final transcript.")
	m.llmFirst = lat("llm_first_token", "From the end of the user's speech to the model's first text.")
	m.firstSentence = lat("first_sentence", "From the end of the user's speech to the first sentence sent to synthesis.")
	m.ttsFirst = lat("tts_first_audio", "From the end of the user's speech to the first synthesized audio.")
	m.endpointDelay = lat("endpoint_delay", "The turn-taking stage's wait after the detected stop (final transcript, hold for an unfinished sentence).")
	m.pause = lat("barge_in_pause", "How long the bot's answer was paused by user speech before it was resumed or cut off, by outcome.")
	m.bargeIns = count("voiced.barge_ins", "User speech over the bot, judged: interrupted or resumed (a false interruption), by outcome.")
	m.sessions = count("voiced.sessions", "Sessions started.")
	m.turns = count("voiced.turns", "User turns ended (answered, interrupted or cut by the session's end).")
	m.interruptions = count("voiced.interruptions", "Answers cut off by the user (barge-in).")
	m.errors = count("voiced.errors", "Error frames, by stage and fatality.")
	var err error
	m.active, err = meter.Int64UpDownCounter("voiced.sessions.active", metric.WithDescription("Sessions in progress."))
	errs = append(errs, err)
	m.modelDuration, err = meter.Float64Histogram("gen_ai.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of model calls."), metric.WithExplicitBucketBoundaries(ModelBuckets...))
	errs = append(errs, err)
	m.modelTokens, err = meter.Int64Histogram("gen_ai.client.token.usage", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens used by model calls, by gen_ai.token.type."), metric.WithExplicitBucketBoundaries(TokenBuckets...))
	errs = append(errs, err)
	return errors.Join(errs...)
}

// promLogger routes promhttp's errors to the logger.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
