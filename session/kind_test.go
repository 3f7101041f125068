package session_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/voiced-dev/voiced/agents/llm/scripted"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/processors/stt"
	"github.com/voiced-dev/voiced/processors/vad"
	"github.com/voiced-dev/voiced/session"
	"github.com/voiced-dev/voiced/telemetry"
	"github.com/voiced-dev/voiced/transport"
)

// silentVAD hears no speech.
type silentVAD struct{}

func (silentVAD) NewAnalyzer(int) (vad.Analyzer, error) { return silentVAD{}, nil }
func (silentVAD) ChunkSamples() int                     { return 512 }
func (silentVAD) Speech([]int16) (float32, error)       { return 0, nil }
func (silentVAD) Reset()                                {}
func (silentVAD) Close() error                          { return nil }

// noSTT fails the test if a stream is opened: the session hears no speech.
type noSTT struct{ t *testing.T }

func (noSTT) Format() frame.Format { return frame.Mono16k }
func (r noSTT) Open(context.Context) (stt.Stream, error) {
	r.t.Error("recognizer opened in a session without speech")
	return nil, errors.New("no recognizer")
}

// TestSessionKindLabelsTelemetry runs one session per transport kind and
// checks that its trace and its session counter carry that kind as
// voiced.transport.
func TestSessionKindLabelsTelemetry(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tel, err := telemetry.New(tp, mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())
	model, err := scripted.New(scripted.Config{Fallback: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	b := &session.Builder{VAD: silentVAD{}, STT: noSTT{t}, TTS: wordSynth{}, Model: model, Telemetry: tel}

	kinds := []string{"websocket", "webrtc", "livekit"}
	for _, kind := range kinds {
		in, err := transport.NewInput(frame.Mono16k, frame.Mono16k)
		if err != nil {
			t.Fatal(err)
		}
		closed := 0
		s := &transport.Session{
			ID: "s-" + kind, Kind: kind, In: frame.Mono16k, Out: frame.Mono16k,
			Input:  in,
			Output: pipeline.ProcessorFunc(func(_ context.Context, f frame.Frame, out pipeline.Emitter) error { out.Pass(f); return nil }),
			Feed: func(ctx context.Context, p transport.Pusher) error {
				if err := p.Push(ctx, &frame.InputAudio{Format: frame.Mono16k, Samples: make([]int16, 320)}); err != nil {
					return err
				}
				return p.Push(ctx, &frame.End{Reason: "test"})
			},
			Notify: func(frame.Frame) {},
			Close:  func(error) { closed++ },
		}
		if err := b.Run(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if closed == 0 {
			t.Errorf("%s: session never closed", kind)
		}
	}

	got := map[string]string{} // session id → transport label of its root span
	for _, sp := range exp.GetSpans() {
		if sp.Name != telemetry.SpanSession {
			continue
		}
		var id, tr string
		for _, a := range sp.Attributes {
			switch a.Key {
			case "voiced.session.id":
				id = a.Value.AsString()
			case "voiced.transport":
				tr = a.Value.AsString()
			}
		}
		got[id] = tr
	}
	for _, kind := range kinds {
		if got["s-"+kind] != kind {
			t.Errorf("session span of %s labelled %q", kind, got["s-"+kind])
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counted := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "voiced.sessions" {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("voiced.sessions is %T", m.Data)
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key("voiced.transport"))
				counted[v.AsString()] += dp.Value
			}
		}
	}
	for _, kind := range kinds {
		if counted[kind] != 1 {
			t.Errorf("voiced.sessions{voiced.transport=%q} = %d, want 1 (all: %v)", kind, counted[kind], counted)
		}
	}
}
