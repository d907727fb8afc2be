package compare

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func dur(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
}

// interval formats a 95% interval of n pairs ("—" without one).
func interval(lo, hi float64, n int) string {
	if n < 2 {
		return fmt.Sprintf("— (%d)", n)
	}
	return fmt.Sprintf("%.2fx–%.2fx (%d)", lo, hi, n)
}

// status is a row's verdict: met (✅), missed (❌) or, when the 95%
// interval spans the target, inconclusive.
func status(row Row) string {
	switch row.Verdict {
	case "pass":
		return "✅"
	case "fail":
		return "❌"
	}
	return "inconclusive"
}

// Table writes the results table (markdown, readable in a terminal).
func (r *Report) Table(w io.Writer) {
	mode := ""
	if r.Quick {
		mode = " (quick run: few samples)"
	}
	fmt.Fprintf(w, "| Operation%s | databridge CPU/op | driver CPU/op | CPU speedup | caller-thread CPU speedup | databridge wall (p50 / p95) | driver wall (p50 / p95) | wall speedup | allocs/op (databridge / driver) | target | target metric, 95%% interval (pairs) | status |\n", mode)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|:-:|")
	for _, row := range r.Rows {
		a, b := row.Databridge, row.Driver
		interval := interval(row.CILow, row.CIHigh, row.Pairs)
		caller := "—"
		if row.CallerSpeedup > 0 {
			caller = fmt.Sprintf("%.2fx", row.CallerSpeedup)
		}
		fmt.Fprintf(w, "| %s | %s | %s | **%.2fx** | %s | %s / %s | %s / %s | **%.2fx** | %.0f / %.0f | %s | %s | %s |\n",
			row.Name, dur(a.CPUPerOp), dur(b.CPUPerOp), row.CPUSpeedup, caller,
			dur(a.WallMedian), dur(a.WallP95), dur(b.WallMedian), dur(b.WallP95), row.WallSpeedup,
			a.AllocsPerOp, b.AllocsPerOp, row.Target, interval, status(row))
	}
	r.floorTable(w)
}

// floorTable writes, for the rows that measured it, databridge against the
// driver's raw floor: Find and Next with no decoding, what any library on
// the driver pays before it decodes anything.
func (r *Report) floorTable(w io.Writer) {
	var rows []Row
	for _, row := range r.Rows {
		if row.Floor != nil {
			rows = append(rows, row)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Against the driver's raw floor (`Find` + `Next`, no decoding), measured as a third library in the same interleaved blocks; lower is better, below 1x is below the floor:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Operation | databridge CPU/op | raw floor CPU/op | databridge / floor | 95% interval (pairs) | allocs/op (databridge / floor) | target | status |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|:-:|")
	for _, row := range rows {
		f := row.Floor
		interval := interval(f.CILow, f.CIHigh, f.Pairs)
		fmt.Fprintf(w, "| %s | %s | %s | **%.2fx** | %s | %.0f / %.0f | ≤ %.2fx floor | %s |\n",
			row.Name, dur(row.Databridge.CPUPerOp), dur(f.CPUPerOp), f.Ratio, interval,
			row.Databridge.AllocsPerOp, f.AllocsPerOp, f.Max, status(Row{Verdict: f.Verdict}))
	}
}

// Environment writes what the run was measured on.
func (r *Report) Environment(w io.Writer) {
	mode := "default"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "Measured %s with %s on %s (%s, %d CPUs, GOMAXPROCS=%d); server %s, %s; driver %s; %s run, %.0f s. "+
		"Speedup = driver / databridge (higher is better); client CPU is this process's user+system time per op, the server being another process; "+
		"for the server-bound rows, caller-thread CPU is the measuring goroutine's own thread alone (locked to it), without the process's background work, which grows with their seconds of wall time: "+
		"steadier, informative only (targets use client CPU).\n",
		r.Date, r.GoVersion, r.OS, r.CPU, r.NumCPU, r.GOMAXPROCS, r.Server, r.ServerVersion, r.Driver, mode, r.Seconds)
}

// Markdown writes the whole report.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# databridge vs the official driver — %s\n\n", r.Date)
	r.Environment(w)
	fmt.Fprintln(w)
	r.Table(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "![client CPU and wall time per operation](chart.png)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Both libraries run the same operations on the same data with one shared client, interleaved (A B, B A, …) so that drift cancels. "+
		"The driver's code is in internal/benchdata/driver.go. Wall time on the embedded dev server is dominated by the server; "+
		"client CPU is what databridge changes.")
}

// Chart draws client CPU and wall time per operation: databridge, the
// driver and, for the reads that measure it, the driver's raw floor, side
// by side on log scales (values span microseconds to seconds), each
// databridge bar labelled with its ratio to the driver (and to the floor),
// since a log scale flattens the 1.1-3x differences that matter.
func (r *Report) Chart(path string) error {
	mode := "default run"
	if r.Quick {
		mode = "quick run (few samples)"
	}
	pairs := 0
	for _, row := range r.Rows {
		pairs = max(pairs, row.Pairs)
	}
	label := fmt.Sprintf(" — %s, %s, up to %d block pairs per row", r.Date, mode, pairs)
	cpu, err := r.panel("Client CPU per operation"+label, func(l LibResult) float64 { return l.CPUPerOp },
		func(row Row) float64 { return row.CPUSpeedup }, true)
	if err != nil {
		return err
	}
	wall, err := r.panel("Wall time per operation (median)", func(l LibResult) float64 { return l.WallMedian },
		func(row Row) float64 { return row.WallSpeedup }, false)
	if err != nil {
		return err
	}
	const width, height = 30 * vg.Centimeter, 24 * vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{cpu}, {wall}}, tiles, dc)
	cpu.Draw(canvases[0][0])
	wall.Draw(canvases[1][0])
	png := vgimg.PngCanvas{Canvas: img}
	return writeFile(path, png.WriteTo)
}

// panel draws one grouped bar chart. Bars are log10 of milliseconds,
// shifted to start above zero (bar charts grow from zero), with ticks
// labelled in real units; a row without a floor has no floor bar. Each
// databridge bar is labelled with ratio(row) ("2.37x": driver /
// databridge), and, with floorRatio, with its 95% interval and floor /
// databridge below it: every label reads the same way, higher is better.
func (r *Report) panel(title string, value func(LibResult) float64, ratio func(Row) float64, floorRatio bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "time per operation (log scale)"
	p.X.Label.Text = "labels: driver / databridge, higher is better"
	if floorRatio {
		p.X.Label.Text = "labels: driver / databridge and, for the finds, raw floor / databridge, both higher is better\n" +
			"(1x: as fast as the other; the floor cannot be beaten on the driver's cursor), [95% interval over the block pairs]"
	}
	names := make([]string, len(r.Rows))
	var raw [3][]float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, row := range r.Rows {
		names[i] = row.Name
		libs := []*LibResult{&row.Databridge, &row.Driver, nil}
		if row.Floor != nil {
			libs[2] = &row.Floor.LibResult
		}
		for lib, res := range libs {
			v := math.NaN()
			if res != nil {
				v = math.Log10(max(value(*res)/1e6, 1e-6))
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			raw[lib] = append(raw[lib], v)
		}
	}
	base := math.Floor(lo) - 0.5
	w := vg.Points(11)
	colors := []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
	}
	for lib, label := range []string{"databridge", "driver", "driver raw floor (Find + Next, no decode)"} {
		vals := make(plotter.Values, len(raw[lib]))
		for i, v := range raw[lib] {
			if !math.IsNaN(v) {
				vals[i] = v - base
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = colors[lib]
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(lib-1)
		p.Add(bars)
		p.Legend.Add(label, bars)
	}
	// The ratio labels, above the taller of each row's bars.
	var xys plotter.XYs
	var texts []string
	for i, row := range r.Rows {
		top := math.Max(raw[0][i], raw[1][i])
		if !math.IsNaN(raw[2][i]) {
			top = math.Max(top, raw[2][i])
		}
		t := fmt.Sprintf("%.2fx", ratio(row))
		if floorRatio && row.Target.Metric == MetricCPU && row.Pairs > 1 && row.CILow > 0 {
			t += fmt.Sprintf("\n[%.2f–%.2f]", row.CILow, row.CIHigh)
		}
		if floorRatio && row.Floor != nil && row.Floor.Ratio > 0 {
			// The report's table gives databridge / floor (lower is
			// better, against #20's targets); the chart reads every label
			// the same way, higher is better.
			t += fmt.Sprintf("\nfloor %.2fx", 1/row.Floor.Ratio)
			if row.Floor.Pairs > 1 && row.Floor.CILow > 0 {
				t += fmt.Sprintf("\n[%.2f–%.2f]", 1/row.Floor.CIHigh, 1/row.Floor.CILow)
			}
		}
		xys = append(xys, plotter.XY{X: float64(i), Y: top - base + 0.05})
		texts = append(texts, t)
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].XAlign = draw.XCenter
		labels.TextStyle[i].YAlign = draw.YBottom
	}
	p.Add(labels)
	p.Y.Min, p.Y.Max = 0, math.Ceil(hi)-base+0.6
	p.Y.Tick.Marker = logTicker{base: base}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.35
	p.X.Tick.Label.XAlign = draw.XRight
	p.Add(plotter.NewGrid())
	return p, nil
}

// logTicker labels decades of milliseconds on the shifted log axis.
type logTicker struct{ base float64 }

// Ticks implements plot.Ticker.
func (t logTicker) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for k := math.Ceil(min + t.base); k <= max+t.base; k++ {
		ticks = append(ticks, plot.Tick{Value: k - t.base, Label: dur(math.Pow(10, k) * 1e6)})
	}
	return ticks
}
