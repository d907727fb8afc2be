// Command compare measures databridge against the official MongoDB Go driver,
// side by side, and writes a report.
//
// With nothing installed but Go:
//
//	cd bench && go run ./cmd/compare          # about 2 minutes
//	cd bench && go run ./cmd/compare -quick   # under a minute
//
// It starts the embedded dev server (FerretDB with SQLite) as a separate
// process, so that client CPU is measured apart from the server's, unless
// MONGODB_URI names a server to use instead. It prints a table on stdout,
// progress on stderr, and writes report.md, results.json and chart.png to a
// new directory per run, <date>T<time>/, under -out (default: a
// databridge-bench directory in the system's temporary directory, outside
// the work tree; make bench-readme passes -out results to commit them).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/databridge-go/databridge/bench/internal/compare"
	"github.com/databridge-go/databridge/bench/internal/devserver"
)

func main() {
	devserver.MaybeServeChild()
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "fewer iterations and a smaller stream (under a minute)")
	out := fs.String("out", filepath.Join(os.TempDir(), "databridge-bench"), "`directory` in which each run writes a new <date>T<time>/ with report.md, results.json and chart.png")
	table := fs.String("table", "", "also write the results table alone to `file`")
	readme := fs.String("readme", "", "replace the results section of this `README` (between the BENCH markers) with the table and chart")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	uri, server := os.Getenv("MONGODB_URI"), "MONGODB_URI"
	if uri == "" {
		fmt.Fprintln(os.Stderr, "starting the embedded dev server (FerretDB + SQLite) in its own process…")
		u, stopServer, err := devserver.Spawn(ctx)
		if err != nil {
			return err
		}
		defer stopServer()
		uri, server = u, "embedded dev server (separate process, data on /dev/shm)"
	}
	rep, err := compare.Run(ctx, compare.Config{URI: uri, Server: server, Quick: *quick, OutDir: *out, Progress: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Println()
	rep.Environment(os.Stdout)
	fmt.Println()
	rep.Table(os.Stdout)
	fmt.Printf("\nreport: %s/report.md, results.json, chart.png\n", rep.Dir)
	if *readme != "" {
		if err := spliceReadme(*readme, rep); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", *readme)
	}
	if *table != "" {
		f, err := os.Create(*table)
		if err != nil {
			return err
		}
		rep.Environment(f)
		fmt.Fprintln(f)
		rep.Table(f)
		return f.Close()
	}
	return nil
}

// spliceReadme replaces the text between <!-- BENCH:START --> and
// <!-- BENCH:END --> in path with the run's table and chart, so the README's
// numbers always come from a real run.
func spliceReadme(path string, rep *compare.Report) error {
	const start, end = "<!-- BENCH:START -->", "<!-- BENCH:END -->"
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", path, start, end)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(rep.Dir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	var body strings.Builder
	body.WriteString(start + "\n")
	rep.Environment(&body)
	body.WriteString("\n")
	rep.Table(&body)
	fmt.Fprintf(&body, "\n![client CPU and wall time per operation](%s/chart.png)\n\nFull report: [%s/report.md](%s/report.md).\n", rel, rel, rel)
	return os.WriteFile(path, []byte(s[:i]+body.String()+s[j:]), 0o644)
}
