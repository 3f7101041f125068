package telemetry_test

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/voiced-dev/voiced/agents"
	"github.com/voiced-dev/voiced/frame"
	"github.com/voiced-dev/voiced/pipeline"
	"github.com/voiced-dev/voiced/telemetry"
)

// A program sets telemetry up once, serves /metrics, wraps its model, and
// observes each session's pipeline.
func Example() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{Traces: telemetry.TracesOTLPHTTP, Endpoint: "localhost:4318", Insecure: true}, slog.Default())
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(ctx)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.Handler())

	var model agents.ChatModel // a provider
	model = tel.TraceModel(model)
	_ = model
	onMetrics := func(sessionID string, m frame.TurnMetrics) { tel.RecordTurn(ctx, m) }
	_ = onMetrics

	// Per session:
	var p *pipeline.Pipeline
	st := tel.SessionObserver(ctx, telemetry.SessionInfo{
		ID: "session-1", Transport: "websocket",
		StageName: func(i int) string { return p.StageName(i) },
	})
	p = pipeline.New(pipeline.Options{Observers: []pipeline.Observer{st}} /* stages... */)
	err = p.Run(st.Context(ctx)) // model spans nest in the turn they answer
	st.End(err)
}
