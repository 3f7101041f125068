package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/voiced-dev/voiced/frame"
)

func TestSetupRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Traces: "jaeger"},
		{Metrics: "statsd"},
		{SampleRatio: -0.1},
		{SampleRatio: 1.5},
	} {
		tel, err := Setup(context.Background(), cfg, nil)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("Setup(%+v) = %v, %v; want ErrConfig", cfg, tel, err)
		}
	}
}

func scrape(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestPrometheusHandler(t *testing.T) {
	tel, err := Setup(context.Background(), Config{}, nil) // zero value: prometheus, no traces
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())

	live := tel.SessionObserver(context.Background(), SessionInfo{ID: "a", Transport: "websocket"})
	done := tel.SessionObserver(context.Background(), SessionInfo{ID: "b", Transport: "websocket", StageName: stageName})
	for _, h := range twoTurns() {
		done.OnHop(h)
	}
	done.End(nil)
	tel.RecordTurn(context.Background(), frame.TurnMetrics{
		Turn: 2, Endpointing: 200 * time.Millisecond, STTFinal: 400 * time.Millisecond,
		LLMFirst: 600 * time.Millisecond, SentenceTTS: 700 * time.Millisecond,
		TTSFirst: 800 * time.Millisecond, AudioOut: 850 * time.Millisecond, VoiceToVoice: 850 * time.Millisecond,
	})
	tel.RecordTurn(context.Background(), frame.TurnMetrics{Turn: 3, Endpointing: 3 * time.Millisecond}) // unanswered
	tel.RecordTurn(context.Background(), frame.TurnMetrics{
		Turn: 4, EndpointDelay: 700 * time.Millisecond, BargeIn: frame.BargeInInterrupted, Pause: 180 * time.Millisecond,
		Resumes: 2, ResumedPause: 400 * time.Millisecond,
	})

	code, body := scrape(t, tel.Handler())
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, line := range []string{
		`voiced_sessions_total{voiced_transport="websocket"} 2`,
		`voiced_sessions_active{voiced_transport="websocket"} 1`,
		`voiced_turns_total 3`,
		`voiced_interruptions_total 1`,
		`voiced_errors_total{voiced_fatal="false",voiced_stage="tts"} 1`,
		`voiced_latency_voice_to_voice_seconds_count 1`,
		`voiced_latency_voice_to_voice_seconds_sum 0.85`,
		`voiced_latency_voice_to_voice_seconds_bucket{le="0.75"} 0`,
		`voiced_latency_voice_to_voice_seconds_bucket{le="1"} 1`,
		`voiced_latency_endpointing_seconds_count 2`,
		`voiced_latency_endpointing_seconds_bucket{le="0.001"} 0`,
		`voiced_latency_endpointing_seconds_bucket{le="0.005"} 1`,
		`voiced_latency_endpointing_seconds_bucket{le="5"} 2`,
		`voiced_latency_stt_final_seconds_sum 0.4`,
		`voiced_latency_llm_first_token_seconds_sum 0.6`,
		`voiced_latency_first_sentence_seconds_sum 0.7`,
		`voiced_latency_tts_first_audio_seconds_sum 0.8`,
		`voiced_latency_tts_first_audio_seconds_count 1`,
		`voiced_latency_endpoint_delay_seconds_sum 0.7`,
		`voiced_barge_ins_total{outcome="interrupted"} 1`,
		`voiced_barge_ins_total{outcome="resumed"} 2`,
		`voiced_latency_barge_in_pause_seconds_sum{outcome="interrupted"} 0.18`,
		`voiced_latency_barge_in_pause_seconds_sum{outcome="resumed"} 0.4`,
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Error("metrics lack the Go runtime's")
	}
	if t.Failed() {
		t.Log(body)
	}
	live.End(nil)
}

func TestHandlerWithoutPrometheus(t *testing.T) {
	tel, err := Setup(context.Background(), Config{Metrics: MetricsNone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	if code, _ := scrape(t, tel.Handler()); code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", code)
	}
}

// syncBuffer is a bytes.Buffer safe for the exporters' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestStdoutExporters(t *testing.T) {
	var out syncBuffer
	tel, err := Setup(context.Background(), Config{Traces: TracesStdout, Metrics: MetricsStdout, Writer: &out, ServiceName: "voiced-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := tel.SessionObserver(context.Background(), SessionInfo{ID: "std", Transport: "websocket"})
	for _, h := range twoTurns() {
		st.OnHop(h)
	}
	st.End(nil)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	s := out.String()
	for _, want := range []string{`"Name":"voiced.session"`, `"Name":"voiced.turn"`, `"voiced-test"`, `"voiced.sessions"`} {
		if !strings.Contains(s, want) {
			t.Errorf("stdout output lacks %s", want)
		}
	}
}

// The OTLP/HTTP exporter posts the session's spans to the collector on
// Shutdown.
func TestOTLPHTTPExport(t *testing.T) {
	type post struct {
		path, ctype string
		size        int
	}
	posts := make(chan post, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- post{r.URL.Path, r.Header.Get("Content-Type"), len(b)}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	for _, endpoint := range []string{srv.URL + "/v1/traces", strings.TrimPrefix(srv.URL, "http://")} {
		tel, err := Setup(context.Background(), Config{Traces: TracesOTLPHTTP, Endpoint: endpoint, Insecure: true, Metrics: MetricsNone}, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := tel.SessionObserver(context.Background(), SessionInfo{ID: "otlp"})
		st.End(nil)
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-posts:
			if p.path != "/v1/traces" || p.ctype != "application/x-protobuf" || p.size == 0 {
				t.Errorf("collector got %+v", p)
			}
		default:
			t.Errorf("endpoint %s: nothing exported", endpoint)
		}
	}
}

func TestOTLPGRPCSetup(t *testing.T) {
	// The gRPC exporter connects lazily; with no spans, Shutdown sends
	// nothing.
	tel, err := Setup(context.Background(), Config{Traces: TracesOTLPGRPC, Endpoint: "127.0.0.1:1", Insecure: true, Metrics: MetricsNone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSetGlobal(t *testing.T) {
	var out syncBuffer
	tel, err := Setup(context.Background(), Config{Traces: TracesStdout, Metrics: MetricsNone, SetGlobal: true, Writer: &out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "global")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"Name":"global"`) {
		t.Errorf("the global tracer provider is not Setup's: %s", out.String())
	}
}
