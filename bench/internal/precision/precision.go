// Package precision measures how precise the cache's invalidation is: the
// hit ratio of a cached workload against the hit ratio a perfect
// invalidator would reach on the same reads, with the invalidation rules
// and with the collection-wide rule (cache.Config.CollectionWideOnly) in
// the same run.
//
// The workload (issue 27, made as hard as users' by issue 36): about 2,000
// orders of 20 tenants drawn Zipf; 4 goroutines read cached lists ({tenant,
// status: "paid"} sorted by createdAt and _id descending, limit 20; a
// tenant's orders sorted by the total that writes increment, limit 20; the
// orders of a status in a city, across tenants, limit 20), counts per
// tenant, a filter on a nested field, a $match-first aggregation and reads
// by _id; Config.WritePercent of operations are writes (inserts 25%, $set
// of the status by _id 25%, $inc of the total by _id 20%, deletes by _id
// 22%, UpdateMany by filter 8%), Config.RawPercent of them raw through the
// driver with the write observer and the rest through odm. Three rules run
// side by side: the rules alone, the rules with odm's writes carrying
// pre-images (odm.WithPreImages), and the collection-wide rule. The
// benchmark is the only writer: it keeps an exact copy of the collection
// and, for every read, computes what a perfect invalidator
// would have done. A read is an ideal hit when its key was read before
// within the TTL and its true result has not changed since; a read is a
// hit when it sent no query to the server. Precision is hit ratio / ideal
// hit ratio.
package precision

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/odm"
)

// Config sizes a run.
type Config struct {
	URI     string
	Docs    int           // orders in the collection at the start of each phase (2,000)
	Tenants int           // 20
	Phase   time.Duration // how long each phase runs
	Rounds  int           // phases per rule, interleaved
	TTL     time.Duration // of every cached read (and of the ideal cache)
	// WritePercent is the share of operations that are writes (10).
	WritePercent int
	// RawPercent is the share of writes made raw through the driver (with
	// the write observer), the rest through odm (50).
	RawPercent int
	Progress   io.Writer
}

// Order is the benchmark's document.
type Order struct {
	ID        int       `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	Status    string    `bson:"status"`
	CreatedAt int       `bson:"createdAt"`
	Total     int       `bson:"total"`
	Customer  *Customer `bson:"customer,omitempty"`
}

// Customer is a nested document.
type Customer struct {
	Tier string `bson:"tier"`
	City string `bson:"city"`
}

// Counts are the reads of one query shape.
type Counts struct {
	Reads, Hits, Ideal int
}

// HitRatio is Hits/Reads.
func (c Counts) HitRatio() float64 { return ratio(c.Hits, c.Reads) }

// IdealRatio is Ideal/Reads.
func (c Counts) IdealRatio() float64 { return ratio(c.Ideal, c.Reads) }

// Precision is HitRatio/IdealRatio.
func (c Counts) Precision() float64 { return ratio(c.Hits, c.Ideal) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Rules are the invalidation rules a run compares: the rules without
// pre-images, the rules with odm's writes carrying pre-images
// (odm.WithPreImages), and the collection-wide rule.
var Rules = []string{"precise", "pre-images", "collection-wide"}

// Phase is one run of one rule.
type Phase struct {
	Rule   string // one of Rules
	Shapes map[string]*Counts
	Writes int
	Stats  cache.Stats
}

// Total sums the shapes of a phase.
func (p Phase) Total() Counts {
	var t Counts
	for _, c := range p.Shapes {
		t.Reads += c.Reads
		t.Hits += c.Hits
		t.Ideal += c.Ideal
	}
	return t
}

// Shapes are the query shapes, in report order.
var Shapes = []string{"list", "list by total", "list by status, city", "count", "nested", "aggregate", "by _id"}

// Run runs cfg.Rounds phases of each rule, interleaved (the first rule of
// each round alternates), each from the same seeded collection and a new
// cache.
func Run(ctx context.Context, cfg Config) ([]Phase, error) {
	cl, err := Connect(cfg.URI)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Disconnect(context.Background()) }()
	db := cl.Database("databridge_precision")
	defer func() { _ = db.Drop(context.Background()) }()
	var out []Phase
	for r := range cfg.Rounds {
		rules := slices.Clone(Rules)
		for range r % len(rules) { // each rule goes first in turn
			rules = append(rules[1:], rules[0])
		}
		for _, rule := range rules {
			p, err := runPhase(ctx, cfg, db, rule, int64(r))
			if err != nil {
				return nil, err
			}
			t := p.Total()
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "round %d %-15s reads %5d  hit %.3f  ideal %.3f  precision %.3f  writes %d\n",
					r+1, rule, t.Reads, t.HitRatio(), t.IdealRatio(), t.Precision(), p.Writes)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Ideal is a perfect invalidator's cache: per key, when it was loaded and
// its true result then. Safe for concurrent use.
type Ideal struct {
	mu      sync.Mutex
	entries map[string]idealEntry
}

type idealEntry struct {
	at time.Time
	fp uint64
}

// NewIdeal returns an empty Ideal.
func NewIdeal() *Ideal { return &Ideal{entries: map[string]idealEntry{}} }

// Read reports whether the perfect invalidator serves key (whose true
// result has the fingerprint fp now) from its cache, with entries that
// live for ttl.
func (i *Ideal) Read(key string, fp uint64, ttl time.Duration) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := time.Now()
	if e, ok := i.entries[key]; ok && now.Sub(e.at) < ttl && e.fp == fp {
		return true
	}
	i.entries[key] = idealEntry{at: now, fp: fp}
	return false
}

func runPhase(ctx context.Context, cfg Config, db *mongo.Database, rule string, round int64) (Phase, error) {
	name := fmt.Sprintf("orders_%d_%s", round, map[string]string{"precise": "p", "pre-images": "i", "collection-wide": "w"}[rule])
	raw := db.Collection(name)
	_ = raw.Drop(ctx)
	m := Seed(cfg, rand.New(rand.NewSource(42+round)))
	if err := Insert(ctx, raw, m); err != nil {
		return Phase{}, err
	}
	c, err := cache.New(cache.Config{CollectionWideOnly: rule == "collection-wide", MaxCost: 256 << 20})
	if err != nil {
		return Phase{}, err
	}
	defer c.Close()
	opts := []odm.Option{odm.WithCache(c)}
	if rule == "pre-images" {
		opts = append(opts, odm.WithPreImages())
	}
	h, err := odm.New[Order](db.Collection(name), opts...)
	if err != nil {
		return Phase{}, err
	}
	var (
		state  atomic.Pointer[Model]
		wmu    sync.Mutex
		nextID atomic.Int64
		clock  = cfg.Docs
		writes int
		id     = NewIdeal()
		mu     sync.Mutex
		shapes = map[string]*Counts{}
		first  error
	)
	for _, s := range Shapes {
		shapes[s] = &Counts{}
	}
	state.Store(&m)
	nextID.Store(int64(cfg.Docs))
	deadline := time.Now().Add(cfg.Phase)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(round*100 + int64(g)))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if r.Intn(100) < cfg.WritePercent {
					wmu.Lock()
					w, next := PlanWrite(cfg, r, *state.Load(), &nextID, &clock)
					err := w.Exec(ctx, h, raw)
					state.Store(&next)
					writes++
					wmu.Unlock()
					if err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
						return
					}
					continue
				}
				rd := pickRead(cfg, r, int(nextID.Load()))
				truth := rd.truth(*state.Load())
				_, hit, err := rd.do(ctx, h)
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
				isIdeal := id.Read(rd.Key, fingerprint(truth), cfg.TTL)
				mu.Lock()
				s := shapes[rd.Shape]
				s.Reads++
				if hit {
					s.Hits++
				}
				if isIdeal {
					s.Ideal++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return Phase{}, first
	}
	_ = raw.Drop(ctx)
	return Phase{Rule: rule, Shapes: shapes, Writes: writes, Stats: c.Stats()}, nil
}
