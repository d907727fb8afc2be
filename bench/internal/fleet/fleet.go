// Package fleet measures the cache's precision across processes: the
// workload of package precision split over worker processes that share
// one invalidation log (coherence.Log), with reads and writes spread over
// all of them.
//
// The parent process holds the exact copy of the collection and the
// perfect invalidators, picks every operation and sends it to a worker
// picked at random: a worker is a child process of the same binary
// (MaybeServeWorker, at the top of main or TestMain) with its own client,
// its own cache following the log and its own odm handle, with pre-images
// (odm.WithPreImages). They talk in JSON lines over the worker's stdin and
// stdout: one request, one reply, several in flight (protocol.go).
//
// Three configurations run in each round, in turn first: every operation
// through one worker process; Config.Workers processes whose logs carry
// namespace events only (coherence.NamespaceEvents: a write in one process
// drops every cached read of its collection in the others); and as many
// whose logs carry descriptor events (coherence.NewLog's default). Each
// phase starts from the same seeded collection, with new worker processes
// and a log collection of its own.
//
// A read is a hit when its worker's cache sent no query. A hit whose
// result matches none of the states the collection went through while the
// read ran is stale: it is counted apart and not as a hit. The perfect
// invalidator is per worker, since each worker has its own cache: a read
// is an ideal hit when that worker read its key within the TTL and its
// true result has not changed since. Precision is hits / ideal hits.
//
// Propagation: every ProbeEvery, a write by _id is probed. Before it, a
// worker other than the writer reads the order by _id through its cache
// (under a key the workload does not use); after it, that worker reads it
// again until the result changes. Propagation is the time from the write
// returning in the writer to the changed result returning in the reader,
// both read on the machine's clock.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/bench/internal/precision"
	"github.com/databridge-go/databridge/cache"
)

// Config sizes a run: the workload's (precision.Config: Docs, Tenants,
// Phase, Rounds, TTL, WritePercent, RawPercent, Progress) and the fleet's.
type Config struct {
	precision.Config
	// Workers is the number of processes in the fleet configurations (3).
	Workers int
}

// Configuration is one way of running the workload.
type Configuration struct {
	Name string
	// Fleet runs the workload over Config.Workers processes, else over one.
	Fleet bool
	// NamespaceEvents makes every worker's log publish namespace events
	// (coherence.NamespaceEvents), else descriptor events.
	NamespaceEvents bool
	short           string // in the phase's collection names
}

// Configurations are what a run compares, in report order.
var Configurations = []Configuration{
	{Name: "one process", short: "one"},
	{Name: "fleet, namespace events", Fleet: true, NamespaceEvents: true, short: "ns"},
	{Name: "fleet, descriptor events", Fleet: true, short: "desc"},
}

// ProbeEvery is the least time between two probed writes of a phase.
const ProbeEvery = 200 * time.Millisecond

// Phase is one run of one configuration.
type Phase struct {
	Config  string // Configuration.Name
	Round   int    // from 1
	Workers int
	// Shapes counts the reads of each query shape (precision.Shapes);
	// stale hits are not among their Hits.
	Shapes map[string]*precision.Counts
	// Stale counts, per shape, the hits whose result matched none of the
	// states the collection went through while the read ran.
	Stale map[string]int
	// Racing counts the misses whose result matched none of those states
	// (a server read of a write half made); 0 but for a server whose
	// multi-document writes are not atomic.
	Racing int
	Writes int
	// Stats are each worker's cache counters at the end of the phase.
	Stats []cache.Stats
	// LogErrors counts the errors the workers' logs recovered from
	// (failed appends, cursor losses: coherence.OnError); LogError is
	// one of them.
	LogErrors int
	LogError  string
	// Propagation holds the probed writes' propagation times; Timeouts
	// counts the probes whose change was not seen within PollTimeout.
	Propagation []time.Duration
	Timeouts    int
}

// PollTimeout bounds how long a probe waits to see a write.
const PollTimeout = 5 * time.Second

// Total sums the shapes of a phase.
func (p Phase) Total() precision.Counts {
	var t precision.Counts
	for _, c := range p.Shapes {
		t.Reads += c.Reads
		t.Hits += c.Hits
		t.Ideal += c.Ideal
	}
	return t
}

// StaleHits sums Stale.
func (p Phase) StaleHits() int {
	n := 0
	for _, s := range p.Stale {
		n += s
	}
	return n
}

// Run runs cfg.Rounds phases of each configuration, interleaved (the first
// configuration of each round rotates), each from the same seeded
// collection and with new worker processes. The executable must call
// MaybeServeWorker first thing: the workers are this program again.
func Run(ctx context.Context, cfg Config) ([]Phase, error) {
	if cfg.Workers < 2 {
		return nil, fmt.Errorf("fleet: %d workers: a fleet needs 2 or more", cfg.Workers)
	}
	if cfg.Docs < 2 || cfg.Tenants < 2 || cfg.Rounds < 1 || cfg.Phase <= 0 || cfg.TTL <= 0 {
		return nil, errors.New("fleet: Docs and Tenants must be 2 or more, Rounds 1 or more, Phase and TTL positive")
	}
	cl, err := mongo.Connect(options.Client().ApplyURI(cfg.URI))
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Disconnect(context.Background()) }()
	db := cl.Database("databridge_fleet")
	defer func() { _ = db.Drop(context.WithoutCancel(ctx)) }()
	var out []Phase
	for r := range cfg.Rounds {
		k := r % len(Configurations) // each configuration goes first in turn
		confs := slices.Concat(Configurations[k:], Configurations[:k])
		for _, conf := range confs {
			p, err := runPhase(ctx, cfg, db, conf, r+1)
			if err != nil {
				return nil, fmt.Errorf("fleet: round %d, %s: %w", r+1, conf.Name, err)
			}
			if cfg.Progress != nil {
				t := p.Total()
				p50, p99 := percentile(p.Propagation, 0.50), percentile(p.Propagation, 0.99)
				fmt.Fprintf(cfg.Progress, "round %d %-24s reads %5d  hit %.3f  ideal %.3f  precision %.3f  stale %d  writes %d  propagation p50 %s p99 %s  log errors %d\n",
					r+1, conf.Name, t.Reads, t.HitRatio(), t.IdealRatio(), t.Precision(), p.StaleHits(), p.Writes,
					ms(p50, len(p.Propagation)), ms(p99, len(p.Propagation)), p.LogErrors)
			}
			out = append(out, p)
		}
	}
	return out, nil
}
