// Command precision measures how precise the cache's invalidation is (see
// package bench/internal/precision): the hit ratio of a cached workload
// against a perfect invalidator's, with the invalidation rules and with the
// collection-wide rule, in one run. With -fleet N it measures the fleet
// precision instead (see package bench/internal/fleet): the same workload
// through one worker process, then over N processes sharing one
// invalidation log, with namespace events and with descriptor events.
//
//	cd bench && go run ./cmd/precision                 # about 10 minutes
//	cd bench && go run ./cmd/precision -readme ../README.md
//	cd bench && go run ./cmd/precision -fleet 3        # about 10 minutes
//	cd bench && go run ./cmd/precision -fleet 3 -phase 20s -rounds 1
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
	"github.com/databridge-go/databridge/bench/internal/fleet"
	"github.com/databridge-go/databridge/bench/internal/precision"
)

func main() {
	devserver.MaybeServeChild()
	fleet.MaybeServeWorker()
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
	readme := fs.String("readme", "", "replace the section between the PRECISION markers (FLEET with -fleet) of this `README` with the results")
	workers := fs.Int("fleet", 0, "measure the fleet precision over this many worker `processes` instead (3)")
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
	if *workers > 0 {
		return runFleet(ctx, fleet.Config{Config: cfg, Workers: *workers}, *readme)
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
	return replaceSection(*readme, "PRECISION", b.String(), true)
}

// runFleet runs the fleet benchmark and writes its report, into readme's
// FLEET section too when readme has one.
func runFleet(ctx context.Context, cfg fleet.Config, readme string) error {
	start := time.Now()
	phases, err := fleet.Run(ctx, cfg)
	if err != nil {
		return err
	}
	var b strings.Builder
	fleet.Report(&b, cfg, phases, time.Since(start))
	fmt.Print(b.String())
	if readme == "" {
		return nil
	}
	return replaceSection(readme, "FLEET", b.String(), false)
}

// replaceSection replaces what is between the <!-- NAME:START --> and
// <!-- NAME:END --> markers of the file at path with body. Without the
// markers it fails if required, and otherwise says so and leaves the file
// as it is.
func replaceSection(path, name, body string, required bool) error {
	begin, end := "<!-- "+name+":START -->", "<!-- "+name+":END -->"
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		if required {
			return fmt.Errorf("%s has no %s … %s section", path, begin, end)
		}
		fmt.Fprintf(os.Stderr, "precision: %s has no %s … %s section: not written\n", path, begin, end)
		return nil
	}
	return os.WriteFile(path, []byte(s[:i]+begin+"\n"+body+s[j:]), 0o644)
}
