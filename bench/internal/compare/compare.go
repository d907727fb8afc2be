// Package compare runs databridge and the official driver side by side on
// the same operations, interleaved, and reports client CPU, wall time and
// allocations per operation.
package compare

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
)

// Config is one run's settings.
type Config struct {
	URI      string    // server to use
	Server   string    // how the server was obtained, for the report
	Quick    bool      // fewer iterations and a smaller stream
	OutDir   string    // results are written to a new directory OutDir/<date>T<time>/
	Progress io.Writer // progress lines (stderr)
}

// LibResult is one library's figures for one row.
type LibResult struct {
	Ops        int     `json:"ops"`
	WallMedian float64 `json:"wall_median_ns"`
	WallP95    float64 `json:"wall_p95_ns"`
	CPUPerOp   float64 `json:"cpu_ns_per_op"`
	// CallerCPUPerOp is the CPU of the measuring goroutine's own thread
	// (locked to it) per op: the client's work without the process's
	// background, which grows with wall time. Measured only for the
	// server-bound rows (0 elsewhere, and where not reported).
	CallerCPUPerOp float64 `json:"caller_cpu_ns_per_op"`
	AllocsPerOp    float64 `json:"allocs_per_op"`
	BytesPerOp     float64 `json:"bytes_per_op"`
}

// Row is one operation measured for both libraries.
type Row struct {
	Name       string    `json:"name"`
	Databridge LibResult `json:"databridge"`
	Driver     LibResult `json:"driver"`
	CPUSpeedup float64   `json:"cpu_speedup"` // driver / databridge
	// CallerSpeedup is CPUSpeedup of the caller thread's CPU alone: steadier
	// for server-bound rows, informative only (targets are on CPUSpeedup).
	CallerSpeedup float64 `json:"caller_cpu_speedup"`
	WallSpeedup   float64 `json:"wall_speedup"` // driver / databridge, medians
	Target        Target  `json:"target"`
	Pass          bool    `json:"pass"`
	// The target metric's driver/databridge ratio, estimated from the
	// interleaved block pairs: a 95% interval of its geometric mean (n
	// pairs), and the verdict it supports: "pass" when the whole interval
	// meets the target, "fail" when none of it does, "inconclusive"
	// otherwise (too few samples, or too noisy, to say).
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
	Pairs   int     `json:"pairs"`
	Verdict string  `json:"verdict"`
	// Floor is the driver's raw floor (Find and Next, no decoding) for rows
	// that measure it, as a third library interleaved with the other two.
	Floor *FloorResult `json:"floor,omitempty"`
}

// FloorResult compares databridge with the driver's raw floor: the ratio
// databridge/floor of client CPU (lower is better; below 1 is below the
// floor), its 95% interval from the interleaved blocks, and the verdict
// against the target Max ("pass" when the whole interval is at most Max,
// "fail" when none of it is, "inconclusive" otherwise).
type FloorResult struct {
	LibResult
	Ratio   float64 `json:"ratio"`
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
	Pairs   int     `json:"pairs"`
	Max     float64 `json:"max"`
	Verdict string  `json:"verdict"`
}

// Report is the whole run.
type Report struct {
	Date          string  `json:"date"`
	GoVersion     string  `json:"go_version"`
	OS            string  `json:"os"`
	CPU           string  `json:"cpu"`
	NumCPU        int     `json:"num_cpu"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Server        string  `json:"server"`
	ServerVersion string  `json:"server_version"`
	Driver        string  `json:"driver_version"`
	Quick         bool    `json:"quick"`
	Seconds       float64 `json:"seconds"`
	Rows          []Row   `json:"rows"`
	Dir           string  `json:"-"`
}

// Run measures every row and writes the report files.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	cl, err := mongo.Connect(options.Client().ApplyURI(cfg.URI))
	if err != nil {
		return nil, err
	}
	defer cl.Disconnect(context.WithoutCancel(ctx))
	if err := cl.Ping(ctx, nil); err != nil {
		return nil, fmt.Errorf("compare: ping %s: %w", cfg.URI, err)
	}
	db := cl.Database(fmt.Sprintf("databridge_compare_%d", time.Now().UnixNano()))
	defer db.Drop(context.WithoutCancel(ctx))
	c, err := cache.New(cache.Config{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dcl, err := mongo.Connect(options.Client().ApplyURI(cfg.URI).SetMonitor(cache.Observer(nil)))
	if err != nil {
		return nil, err
	}
	defer dcl.Disconnect(context.WithoutCancel(ctx))
	e := &env{db: db, ddb: dcl.Database(db.Name()), cache: c}

	rep := &Report{
		Date: time.Now().UTC().Format("2006-01-02"), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Server: cfg.Server, ServerVersion: serverVersion(ctx, cl),
		Driver: moduleVersion("go.mongodb.org/mongo-driver/v2"), Quick: cfg.Quick,
	}
	rows := ops(e, cfg.Quick)
	for i, o := range rows {
		rowStart := time.Now()
		fmt.Fprintf(progress, "[%d/%d] %s: ", i+1, len(rows), o.name)
		if o.setup != nil {
			if err := o.setup(ctx, e); err != nil {
				return nil, fmt.Errorf("compare: set up %s: %w", o.name, err)
			}
		}
		row, err := measureRow(ctx, o, progress)
		if err != nil {
			return nil, fmt.Errorf("compare: %s: %w", o.name, err)
		}
		fmt.Fprintf(progress, " cpu %.2fx, wall %.2fx (%.1fs)\n", row.CPUSpeedup, row.WallSpeedup, time.Since(rowStart).Seconds())
		rep.Rows = append(rep.Rows, row)
	}
	rep.Seconds = time.Since(start).Seconds()
	if cfg.OutDir != "" {
		if err := rep.write(cfg.OutDir); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

type sample struct {
	wall, cpu     time.Duration
	caller        time.Duration // the calling thread's CPU
	allocs, bytes uint64
	ops           int
}

// measureRow runs warm-up ops, then blocks of each library alternately
// (A B, B A, A B, …; A B C, C B A with a floor) so that drift in the
// machine or the server cancels.
func measureRow(ctx context.Context, o *op, progress io.Writer) (Row, error) {
	if o.callerCPU {
		// Every block runs in this goroutine, locked to its thread, so that
		// the thread's CPU time is the client's own work. Locking costs a
		// thread handoff per network wait (about 90 µs of process CPU per
		// round trip here), negligible only for rows whose ops take seconds.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	fns := []func(context.Context, int) error{o.databridge, o.driver}
	if o.floor != nil {
		fns = append(fns, o.floor)
	}
	seq := make([]int, len(fns))
	for lib := range fns { // warm up: plans, pools, connections
		if err := fns[lib](ctx, 1_000_000+lib); err != nil {
			return Row{}, err
		}
	}
	samples := make([][]sample, len(fns))
	for it := range o.iterations {
		for k := range fns {
			lib := k
			if it%2 == 1 {
				lib = len(fns) - 1 - k
			}
			n := o.block[min(lib, 1)] // the floor runs the driver's block
			s, err := block(ctx, fns[lib], seq[lib], n)
			if err != nil {
				return Row{}, err
			}
			seq[lib] += n
			samples[lib] = append(samples[lib], s)
		}
		fmt.Fprint(progress, ".")
	}
	row := Row{Name: o.name, Target: o.target, Databridge: summarize(samples[0]), Driver: summarize(samples[1])}
	row.CPUSpeedup = row.Driver.CPUPerOp / row.Databridge.CPUPerOp
	row.WallSpeedup = row.Driver.WallMedian / row.Databridge.WallMedian
	if !o.callerCPU {
		row.Databridge.CallerCPUPerOp, row.Driver.CallerCPUPerOp = 0, 0 // not one goroutine's work
	} else if row.Databridge.CallerCPUPerOp > 0 {
		row.CallerSpeedup = row.Driver.CallerCPUPerOp / row.Databridge.CallerCPUPerOp
	}
	got := row.CPUSpeedup
	if o.target.Metric == MetricWall {
		got = row.WallSpeedup
	}
	row.Pass = got >= o.target.Min
	row.CILow, row.CIHigh, row.Pairs = ratioInterval(samples[1], samples[0], o.target.Metric)
	row.Verdict = verdict(row.CILow, row.CIHigh, row.Pairs, o.target.Min, true)
	if o.floor != nil {
		f := &FloorResult{LibResult: summarize(samples[2]), Max: o.floorMax}
		f.Ratio = row.Databridge.CPUPerOp / f.CPUPerOp
		f.CILow, f.CIHigh, f.Pairs = ratioInterval(samples[0], samples[2], MetricCPU)
		f.Verdict = verdict(f.CILow, f.CIHigh, f.Pairs, f.Max, false)
		row.Floor = f
	}
	return row, nil
}

// verdict judges the 95% interval lo–hi (of n pairs) of a ratio against
// bound, which the ratio must reach (atLeast) or stay within: "pass" when
// the whole interval meets it, "fail" when none of it does, "inconclusive"
// otherwise or with fewer than two pairs.
func verdict(lo, hi float64, n int, bound float64, atLeast bool) string {
	if n < 2 {
		return "inconclusive"
	}
	if !atLeast { // ratio ≤ bound is 1/ratio ≥ 1/bound
		lo, hi, bound = 1/hi, 1/lo, 1/bound
	}
	switch {
	case lo >= bound:
		return "pass"
	case hi < bound:
		return "fail"
	}
	return "inconclusive"
}

// ratioInterval returns a 95% interval of the ratio num/den of metric from
// the block pairs (block i of each ran back to back): a Student t interval
// of the mean log ratio, exponentiated.
func ratioInterval(num, den []sample, metric Metric) (lo, hi float64, n int) {
	n = min(len(num), len(den))
	if n < 2 {
		return 0, 0, n // no interval from one pair (JSON has no NaN)
	}
	logs := make([]float64, n)
	var mean float64
	for i := range n {
		a, b := den[i], num[i]
		va, vb := float64(a.cpu)/float64(a.ops), float64(b.cpu)/float64(b.ops)
		if metric == MetricWall {
			va, vb = float64(a.wall)/float64(a.ops), float64(b.wall)/float64(b.ops)
		}
		logs[i] = math.Log(vb / va)
		mean += logs[i]
	}
	mean /= float64(n)
	var ss float64
	for _, l := range logs {
		ss += (l - mean) * (l - mean)
	}
	sd := math.Sqrt(ss / float64(n-1))
	half := tQuantile975(n-1) * sd / math.Sqrt(float64(n))
	return math.Exp(mean - half), math.Exp(mean + half), n
}

// tQuantile975 is the 97.5% quantile of Student's t with df degrees of
// freedom (a table to 30, then the normal's 1.96).
func tQuantile975(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df < len(table) {
		return table[df]
	}
	return 1.96
}

func block(ctx context.Context, fn func(context.Context, int) error, seq, n int) (sample, error) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0, th0 := benchdata.CPUTime(), benchdata.ThreadCPUTime()
	t0 := time.Now()
	for k := range n {
		if err := fn(ctx, seq+k); err != nil {
			return sample{}, err
		}
	}
	wall := time.Since(t0)
	cpu, caller := benchdata.CPUTime()-c0, benchdata.ThreadCPUTime()-th0
	runtime.ReadMemStats(&m1)
	return sample{wall: wall, cpu: cpu, caller: caller, allocs: m1.Mallocs - m0.Mallocs, bytes: m1.TotalAlloc - m0.TotalAlloc, ops: n}, nil
}

func summarize(ss []sample) LibResult {
	var r LibResult
	var walls []float64
	var cpu, caller time.Duration
	var allocs, bytes uint64
	for _, s := range ss {
		r.Ops += s.ops
		walls = append(walls, float64(s.wall)/float64(s.ops))
		cpu += s.cpu
		caller += s.caller
		allocs += s.allocs
		bytes += s.bytes
	}
	slices.Sort(walls)
	r.WallMedian = quantile(walls, 0.5)
	r.WallP95 = quantile(walls, 0.95)
	r.CPUPerOp = float64(cpu) / float64(r.Ops)
	r.CallerCPUPerOp = float64(caller) / float64(r.Ops)
	r.AllocsPerOp = float64(allocs) / float64(r.Ops)
	r.BytesPerOp = float64(bytes) / float64(r.Ops)
	return r
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func serverVersion(ctx context.Context, cl *mongo.Client) string {
	var info bson.M
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return "unknown"
	}
	v := fmt.Sprint(info["version"])
	if f, ok := info["ferretdbVersion"]; ok {
		fv := fmt.Sprint(f)
		if fv == "unknown" { // embedded builds carry no version string
			fv = moduleVersion("github.com/FerretDB/FerretDB") + " embedded"
		}
		v += " (FerretDB " + fv + ")"
	}
	return v
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return m.Version
			}
		}
	}
	return "unknown"
}

func (r *Report) write(outDir string) error {
	// A directory of its own per run: two runs on one day never overwrite
	// each other.
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(outDir, r.Date+"T"+time.Now().UTC().Format("150405"))
	dir := base
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !os.IsExist(err) {
			return err
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	r.Dir = dir
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	r.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return r.Chart(filepath.Join(dir, "chart.png"))
}
