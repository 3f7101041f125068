package bench

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"
)

// palette is used in order for series and segments.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"}

// plot is a minimal SVG chart: a frame, axes with ticks, and marks drawn in
// data coordinates.
type plot struct {
	b                     strings.Builder
	w, h                  float64
	left, right, top, bot float64
	x0, x1, y0, y1        float64
	logX                  bool
	title, xLabel, yLabel string
	legend                []legendItem
}

type legendItem struct{ name, color string }

func newPlot(title, xLabel, yLabel string, x0, x1, y0, y1 float64, logX bool) *plot {
	p := &plot{w: 720, h: 400, left: 70, right: 180, top: 40, bot: 50,
		x0: x0, x1: x1, y0: y0, y1: y1, logX: logX, title: title, xLabel: xLabel, yLabel: yLabel}
	return p
}

func (p *plot) px(x float64) float64 {
	f := (x - p.x0) / (p.x1 - p.x0)
	if p.logX {
		f = (math.Log10(x) - math.Log10(p.x0)) / (math.Log10(p.x1) - math.Log10(p.x0))
	}
	return p.left + f*(p.w-p.left-p.right)
}

func (p *plot) py(y float64) float64 {
	return p.h - p.bot - (y-p.y0)/(p.y1-p.y0)*(p.h-p.top-p.bot)
}

func (p *plot) text(x, y float64, anchor, s string, size int) {
	fmt.Fprintf(&p.b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">%s</text>`+"\n", x, y, anchor, size, html.EscapeString(s))
}

func (p *plot) axes(xTicks, yTicks []float64, xFmt, yFmt func(float64) string) {
	pw, ph := p.w-p.left-p.right, p.h-p.top-p.bot
	fmt.Fprintf(&p.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`+"\n", p.left, p.top, pw, ph)
	for _, x := range xTicks {
		X := p.px(x)
		fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", X, p.top, X, p.h-p.bot)
		p.text(X, p.h-p.bot+16, "middle", xFmt(x), 11)
	}
	for _, y := range yTicks {
		Y := p.py(y)
		fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", p.left, Y, p.w-p.right, Y)
		p.text(p.left-6, Y+4, "end", yFmt(y), 11)
	}
	p.text(p.left+pw/2, p.h-10, "middle", p.xLabel, 12)
	fmt.Fprintf(&p.b, `<text x="16" y="%.1f" text-anchor="middle" font-size="12" transform="rotate(-90 16 %.1f)">%s</text>`+"\n",
		p.top+ph/2, p.top+ph/2, html.EscapeString(p.yLabel))
	p.text(p.w/2, 22, "middle", p.title, 14)
}

func (p *plot) polyline(xs, ys []float64, color string, dash bool) {
	var pts strings.Builder
	for i := range xs {
		fmt.Fprintf(&pts, "%.1f,%.1f ", p.px(xs[i]), p.py(ys[i]))
	}
	d := ""
	if dash {
		d = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(&p.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.TrimSpace(pts.String()), color, d)
}

func (p *plot) rect(x0, x1, y, height float64, color string) {
	fmt.Fprintf(&p.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n",
		p.px(x0), y, max(p.px(x1)-p.px(x0), 0), height, color)
}

func (p *plot) vline(x float64, color, label string) {
	X := p.px(x)
	fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="4 3"/>`+"\n", X, p.top, X, p.h-p.bot, color)
	p.text(X+4, p.top+12, "start", label, 11)
}

func (p *plot) hline(y float64, color, label string) {
	Y := p.py(y)
	fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="4 3"/>`+"\n", p.left, Y, p.w-p.right, Y, color)
	p.text(p.w-p.right-4, Y-4, "end", label, 11)
}

func (p *plot) svg() string {
	var out strings.Builder
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", p.w, p.h, p.w, p.h)
	fmt.Fprintf(&out, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	out.WriteString(p.b.String())
	for i, l := range p.legend {
		y := p.top + 10 + float64(i)*18
		fmt.Fprintf(&out, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", p.w-p.right+12, y-10, l.color)
		fmt.Fprintf(&out, `<text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n", p.w-p.right+30, y, html.EscapeString(l.name))
	}
	out.WriteString("</svg>\n")
	return out.String()
}

// Series is a named sample of durations for a CDF.
type Series struct {
	Name   string
	Values []time.Duration
	Dash   bool
}

// CDFChart draws the empirical CDFs of the series on a log time axis (in
// milliseconds).
func CDFChart(title string, series []Series) string {
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		for _, v := range s.Values {
			x := float64(v) / 1e6
			if x > 0 {
				lo, hi = min(lo, x), max(hi, x)
			}
		}
	}
	if hi == 0 {
		lo, hi = 0.001, 1
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	p := newPlot(title, "latency (ms, log scale)", "fraction of samples ≤ x", lo, hi, 0, 1, true)
	var xt []float64
	for x := lo; x <= hi*1.001; x *= 10 {
		xt = append(xt, x)
	}
	p.axes(xt, []float64{0, 0.25, 0.5, 0.75, 0.9, 1}, func(x float64) string { return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", x), "0"), ".") },
		func(y float64) string { return fmt.Sprintf("%g", y) })
	for i, s := range series {
		if len(s.Values) == 0 {
			continue
		}
		v := append([]time.Duration(nil), s.Values...)
		slices.Sort(v)
		// At most ~400 points per curve.
		step := max(1, len(v)/400)
		var xs, ys []float64
		for j := 0; j < len(v); j += step {
			xs = append(xs, max(float64(v[j])/1e6, lo))
			ys = append(ys, float64(j+1)/float64(len(v)))
		}
		xs = append(xs, max(float64(v[len(v)-1])/1e6, lo))
		ys = append(ys, 1)
		c := palette[i%len(palette)]
		p.polyline(xs, ys, c, s.Dash)
		p.legend = append(p.legend, legendItem{s.Name, c})
	}
	return p.svg()
}

// Bar is one stacked bar of a waterfall.
type Bar struct {
	Label    string
	Segments []time.Duration
}

// WaterfallChart draws horizontal stacked bars (one per turn) of the named
// segments, with a line at budget.
func WaterfallChart(title string, names []string, bars []Bar, budget time.Duration) string {
	hi := float64(budget) / 1e6
	for _, b := range bars {
		var sum time.Duration
		for _, s := range b.Segments {
			sum += max(s, 0)
		}
		hi = max(hi, float64(sum)/1e6)
	}
	hi = math.Ceil(hi*1.05/100) * 100
	p := newPlot(title, "time since the user stopped speaking (ms)", "", 0, hi, 0, 1, false)
	p.left = 150
	rowH := 14.0
	p.h = p.top + p.bot + rowH*float64(max(len(bars), 1)) + 10
	var xt []float64
	step := niceStep(hi / 8)
	for x := 0.0; x <= hi; x += step {
		xt = append(xt, x)
	}
	p.axes(xt, nil, func(x float64) string { return fmt.Sprintf("%.0f", x) }, nil)
	for i, b := range bars {
		y := p.top + 5 + float64(i)*rowH
		x := 0.0
		for j, s := range b.Segments {
			w := float64(max(s, 0)) / 1e6
			p.rect(x, x+w, y, rowH-3, palette[j%len(palette)])
			x += w
		}
		p.text(p.left-6, y+rowH-5, "end", b.Label, 10)
	}
	p.vline(float64(budget)/1e6, "#c00", fmt.Sprintf("budget %d ms", budget.Milliseconds()))
	for j, n := range names {
		p.legend = append(p.legend, legendItem{n, palette[j%len(palette)]})
	}
	return p.svg()
}

// DensityChart draws lateness p99 (input and output) against the number of
// sessions, with the limit.
func DensityChart(levels []DensityLevel, limit time.Duration) string {
	hiX, hiY := 10.0, float64(limit)/1e6*1.5
	for _, l := range levels {
		hiX = max(hiX, float64(l.Sessions))
		hiY = max(hiY, float64(l.P99())/1e6)
	}
	hiY = math.Ceil(hiY*1.1/5) * 5
	p := newPlot("Frame lateness p99 vs concurrent sessions (real Silero VAD)", "concurrent sessions", "lateness p99 (ms)", 0, hiX*1.05, 0, hiY, false)
	var xt, yt []float64
	for x := 0.0; x <= hiX*1.05; x += niceStep(hiX / 6) {
		xt = append(xt, x)
	}
	for y := 0.0; y <= hiY; y += niceStep(hiY / 6) {
		yt = append(yt, y)
	}
	p.axes(xt, yt, func(x float64) string { return fmt.Sprintf("%.0f", x) }, func(y float64) string { return fmt.Sprintf("%g", y) })
	var xs, in, out []float64
	for _, l := range levels {
		if l.Retried {
			continue // plot the second try
		}
		xs = append(xs, float64(l.Sessions))
		in = append(in, float64(l.InputLate.P99)/1e6)
		out = append(out, float64(l.OutputLate.P99)/1e6)
	}
	p.polyline(xs, in, palette[0], false)
	p.polyline(xs, out, palette[1], true)
	for i := range xs {
		fmt.Fprintf(&p.b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", p.px(xs[i]), p.py(in[i]), palette[0])
		fmt.Fprintf(&p.b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", p.px(xs[i]), p.py(out[i]), palette[1])
	}
	p.hline(float64(limit)/1e6, "#c00", fmt.Sprintf("limit %d ms", limit.Milliseconds()))
	p.legend = []legendItem{{"input (VAD chunk)", palette[0]}, {"output (playout)", palette[1]}}
	return p.svg()
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*e {
			return m * e
		}
	}
	return 10 * e
}
