package telemetry

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recorder is a Telemetry whose spans and metrics the test reads back.
type recorder struct {
	*Telemetry
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
}

func newRecorder(t testing.TB) *recorder {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tel, err := New(tp, mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return &recorder{Telemetry: tel, spans: exp, reader: reader}
}

// dump renders the recorded spans, ordered by start time then name, one
// per line: "name <- parent [start..end] attrs", with times as offsets from
// base in milliseconds (spans that start at a wall-clock time, outside
// base's hour, print no times; one that ends at one prints "?"), followed by their events and
// status.
func (r *recorder) dump(t testing.TB, base time.Time, skipKeys ...string) []string {
	t.Helper()
	spans := r.spans.GetSpans()
	names := map[trace.SpanID]string{}
	for _, s := range spans {
		names[s.SpanContext.SpanID()] = s.Name
	}
	sort.SliceStable(spans, func(i, j int) bool {
		if !spans[i].StartTime.Equal(spans[j].StartTime) {
			return spans[i].StartTime.Before(spans[j].StartTime)
		}
		return spans[i].Name < spans[j].Name
	})
	in := func(at time.Time) bool { return !at.Before(base) && !at.After(base.Add(time.Hour)) }
	ms := func(at time.Time) string {
		if !in(at) {
			return "?" // wall-clock time (Now): the session's end
		}
		return fmt.Sprint(at.Sub(base).Milliseconds())
	}
	var out []string
	for _, s := range spans {
		line := s.Name
		if s.Parent.IsValid() {
			p, ok := names[s.Parent.SpanID()]
			if !ok {
				p = "?"
			}
			line += " <- " + p
		}
		if in(s.StartTime) {
			line += " [" + ms(s.StartTime) + ".." + ms(s.EndTime) + "]"
		}
		line += attrString(s.Attributes, skipKeys)
		out = append(out, line)
		for _, e := range s.Events {
			ev := "  event " + e.Name
			if in(e.Time) {
				ev += " @" + ms(e.Time)
			}
			out = append(out, ev+attrString(e.Attributes, skipKeys))
		}
		if s.Status.Code != 0 {
			out = append(out, "  status "+s.Status.Code.String()+" "+s.Status.Description)
		}
	}
	return out
}

func attrString(kvs []attribute.KeyValue, skip []string) string {
	var parts []string
	for _, kv := range kvs {
		if slices.Contains(skip, string(kv.Key)) {
			continue
		}
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// metrics collects the recorded metrics: for counters, "name{attrs}" →
// value; for histograms, "name{attrs}" → count and "name{attrs}.sum" → sum.
func (r *recorder) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	key := func(name string, set attribute.Set) string {
		return name + "{" + strings.TrimSpace(attrString(set.ToSlice(), nil)) + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Count)
					out[key(m.Name, p.Attributes)+".sum"] = p.Sum
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Count)
					out[key(m.Name, p.Attributes)+".sum"] = float64(p.Sum)
				}
			}
		}
	}
	return out
}

func diffLines(t testing.TB, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}
