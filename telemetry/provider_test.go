package telemetry

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/voiced-dev/voiced/processors/provider"
)

func TestProviderObserverTracesAndMeters(t *testing.T) {
	r := newRecorder(t)
	obs, err := r.ProviderObserver()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info := provider.CallInfo{Provider: "openai", Op: "synthesize", Model: "tts-1"}
	_, c := provider.Start(ctx, obs, info)
	c.FirstResult()
	c.End(nil)
	_, c = provider.Start(ctx, obs, info)
	c.End(&provider.Error{Provider: "openai", Op: "synthesize", Status: 429, Retryable: true, Err: errors.New("slow down")})
	cctx, cancel := context.WithCancelCause(ctx)
	_, c = provider.Start(cctx, obs, info)
	cancel(errors.New("barge-in"))
	c.End(context.Canceled)

	spans := r.spans.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	attr := func(i int, k string) attribute.Value {
		for _, a := range spans[i].Attributes {
			if string(a.Key) == k {
				return a.Value
			}
		}
		return attribute.Value{}
	}
	if spans[0].Name != "synthesize openai" || attr(0, "voiced.model").AsString() != "tts-1" || attr(0, "voiced.time_to_first_result").AsFloat64() <= 0 {
		t.Fatalf("span 0: %s %v", spans[0].Name, spans[0].Attributes)
	}
	if attr(1, "error.type").AsString() != "429" || !attr(1, "voiced.retryable").AsBool() {
		t.Fatalf("span 1: %v", spans[1].Attributes)
	}
	if !attr(2, "voiced.cancelled").AsBool() || attr(2, "error.type").AsString() != "" {
		t.Fatalf("span 2: %v", spans[2].Attributes)
	}
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[m.Name] += int64(p.Count)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value("error.type"); v.AsString() == "429" {
						got[m.Name] += p.Value
					}
				}
			}
		}
	}
	if got["voiced.provider.duration"] != 3 || got["voiced.provider.time_to_first_result"] != 1 || got["voiced.provider.errors"] != 1 {
		t.Fatalf("metrics %v", got)
	}
}
