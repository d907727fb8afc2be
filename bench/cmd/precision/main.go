// Command precision measures how precise the cache's invalidation is (see
// package bench/internal/precision): the hit ratio of a cached workload
// against a perfect invalidator's, with the invalidation rules and with the
// collection-wide rule, in one run.
//
//	cd bench && go run ./cmd/precision                 # about 10 minutes
//	cd bench && go run ./cmd/precision -readme ../README.md
//
// It starts the embedded dev server in its own process unless MONGODB_URI
// names a server.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/databridge-go/databridge/bench/internal/devserver"
	"github.com/databridge-go/databridge/bench/internal/precision"
)

func main() {
	devserver.MaybeServeChild()
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "precision:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("precision", flag.ContinueOnError)
	cfg := precision.Config{Tenants: 20, TTL: 10 * time.Minute, Progress: os.Stderr}
	fs.IntVar(&cfg.Docs, "docs", 2000, "orders in the collection")
	fs.DurationVar(&cfg.Phase, "phase", time.Minute, "how long each phase runs")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "phases per rule")
	fs.IntVar(&cfg.WritePercent, "writes", 10, "percent of operations that are writes")
	fs.IntVar(&cfg.RawPercent, "raw", 50, "percent of writes made raw through the driver (the rest through odm)")
	readme := fs.String("readme", "", "replace the section between the PRECISION markers of this `README` with the results")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.URI = os.Getenv("MONGODB_URI")
	if cfg.URI == "" {
		fmt.Fprintln(os.Stderr, "starting the embedded dev server (FerretDB + SQLite) in its own process…")
		u, stopServer, err := devserver.Spawn(ctx)
		if err != nil {
			return err
		}
		defer stopServer()
		cfg.URI = u
	}
	start := time.Now()
	phases, err := precision.Run(ctx, cfg)
	if err != nil {
		return err
	}
	var b strings.Builder
	precision.Report(&b, cfg, phases, time.Since(start))
	fmt.Print(b.String())
	if *readme == "" {
		return nil
	}
	const begin, end = "<!-- PRECISION:START -->", "<!-- PRECISION:END -->"
	old, err := os.ReadFile(*readme)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", *readme, begin, end)
	}
	return os.WriteFile(*readme, []byte(s[:i]+begin+"\n"+b.String()+s[j:]), 0o644)
}
