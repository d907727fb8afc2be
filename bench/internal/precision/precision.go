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
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
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
	mon := cache.Observer(&event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "find", "aggregate", "count":
			if f, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
				f.Store(true)
			}
		}
	}})
	cl, err := mongo.Connect(options.Client().ApplyURI(cfg.URI).SetMonitor(mon))
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

type sentKey struct{}

// model is an immutable state of the collection.
type model map[int]Order

func seed(cfg Config, r *rand.Rand) model {
	m := model{}
	for i := 1; i <= cfg.Docs; i++ {
		m[i] = newOrder(cfg, r, i, i)
	}
	return m
}

var (
	statuses = []string{"open", "paid", "shipped"}
	tiers    = []string{"gold", "silver", "bronze"}
	cities   = []string{"Lyon", "Oslo", "Quito", "Perth"}
)

func tenant(cfg Config, r *rand.Rand) string {
	return "t" + strconv.FormatUint(rand.NewZipf(r, 1.1, 1, uint64(cfg.Tenants-1)).Uint64(), 10)
}

func newOrder(cfg Config, r *rand.Rand, id, at int) Order {
	o := Order{ID: id, Tenant: tenant(cfg, r), Status: statuses[r.Intn(len(statuses))], CreatedAt: at, Total: r.Intn(1000)}
	if r.Intn(5) > 0 {
		o.Customer = &Customer{Tier: tiers[r.Intn(len(tiers))], City: cities[r.Intn(len(cities))]}
	}
	return o
}

// read is one cached read and its true result on a model.
type read struct {
	shape, key string
	run        func(ctx context.Context, h *odm.Collection[Order]) error
	truth      func(m model) any
}

type statusCount struct {
	Status string `bson:"_id"`
	N      int    `bson:"n"`
}

func where(m model, keep func(Order) bool) []Order {
	var out []Order
	for _, o := range m {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

func pickRead(cfg Config, r *rand.Rand, maxID int) read {
	t := tenant(cfg, r)
	ttl := query.Cached(cfg.TTL)
	switch k := r.Intn(100); {
	case k < 10:
		return read{"list by total", "total " + t, func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := h.FindMany(ctx, query.Eq("tenant", t),
				query.Sort(bson.D{{Key: "total", Value: -1}, {Key: "_id", Value: 1}}), query.Limit(20), ttl)
			return err
		}, func(m model) any {
			out := where(m, func(o Order) bool { return o.Tenant == t })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.ID, b.ID)) })
			return out[:min(20, len(out))]
		}}
	case k < 20:
		st, city := statuses[r.Intn(len(statuses))], cities[r.Intn(len(cities))]
		return read{"list by status, city", "city " + st + " " + city, func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := h.FindMany(ctx, query.And(query.Eq("status", st), query.Eq("customer.city", city)),
				query.Sort(bson.D{{Key: "_id", Value: 1}}), query.Limit(20), ttl)
			return err
		}, func(m model) any {
			out := where(m, func(o Order) bool { return o.Status == st && o.Customer != nil && o.Customer.City == city })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
			return out[:min(20, len(out))]
		}}
	case k < 40:
		return read{"list", "list " + t, func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := h.FindMany(ctx, query.And(query.Eq("tenant", t), query.Eq("status", "paid")),
				query.Sort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}), query.Limit(20), ttl)
			return err
		}, func(m model) any {
			out := where(m, func(o Order) bool { return o.Tenant == t && o.Status == "paid" })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Or(cmp.Compare(b.CreatedAt, a.CreatedAt), cmp.Compare(b.ID, a.ID)) })
			return out[:min(20, len(out))]
		}}
	case k < 55:
		return read{"count", "count " + t, func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := h.Count(ctx, query.Eq("tenant", t), ttl)
			return err
		}, func(m model) any { return len(where(m, func(o Order) bool { return o.Tenant == t })) }}
	case k < 65:
		tier := tiers[r.Intn(len(tiers))]
		return read{"nested", "nested " + t + " " + tier, func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := h.FindMany(ctx, query.And(query.Eq("tenant", t), query.Eq("customer.tier", tier)), query.Sort(bson.D{{Key: "_id", Value: 1}}), ttl)
			return err
		}, func(m model) any {
			out := where(m, func(o Order) bool { return o.Tenant == t && o.Customer != nil && o.Customer.Tier == tier })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
			return out
		}}
	case k < 75:
		return read{"aggregate", "aggregate " + t, func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := odm.Aggregate[statusCount](ctx, h, bson.A{
				bson.D{{Key: "$match", Value: bson.D{{Key: "tenant", Value: t}}}},
				bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$status"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
			}, ttl)
			return err
		}, func(m model) any {
			n := map[string]int{}
			for _, o := range where(m, func(o Order) bool { return o.Tenant == t }) {
				n[o.Status]++
			}
			return n
		}}
	default:
		id := 1 + int(rand.NewZipf(r, 1.1, 1, uint64(maxID-1)).Uint64())
		return read{"by _id", "id " + strconv.Itoa(id), func(ctx context.Context, h *odm.Collection[Order]) error {
			_, err := h.FindOne(ctx, query.Eq("_id", id), ttl)
			if errors.Is(err, query.ErrNotFound) {
				return nil
			}
			return err
		}, func(m model) any {
			o, ok := m[id]
			return fmt.Sprint(ok, o, derefCustomer(o.Customer))
		}}
	}
}

func derefCustomer(c *Customer) Customer {
	if c == nil {
		return Customer{}
	}
	return *c
}

// fingerprint hashes a true result.
func fingerprint(v any) uint64 {
	h := fnv.New64a()
	switch x := v.(type) {
	case []Order:
		for _, o := range x {
			fmt.Fprint(h, o, derefCustomer(o.Customer), ";")
		}
	case map[string]int:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			fmt.Fprint(h, k, x[k], ";")
		}
	default:
		fmt.Fprint(h, x)
	}
	return h.Sum64()
}

// ideal is the perfect invalidator's cache: per key, when it was loaded
// and its result then.
type ideal struct {
	mu      sync.Mutex
	entries map[string]idealEntry
}

type idealEntry struct {
	at time.Time
	fp uint64
}

// read reports whether the perfect invalidator serves key (with its true
// result fp now) from its cache.
func (i *ideal) read(key string, fp uint64, ttl time.Duration) bool {
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
	r0 := rand.New(rand.NewSource(42 + round))
	m := seed(cfg, r0)
	docs := make([]any, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		docs = append(docs, m[id])
	}
	if _, err := raw.InsertMany(ctx, docs); err != nil {
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
		state  atomic.Pointer[model]
		wmu    sync.Mutex
		nextID atomic.Int64
		clock  = cfg.Docs
		writes int
		id     = &ideal{entries: map[string]idealEntry{}}
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
					err := write(ctx, cfg, r, h, raw, &state, &nextID, &clock)
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
				var sent atomic.Bool
				if err := rd.run(context.WithValue(ctx, sentKey{}, &sent), h); err != nil {
					mu.Lock()
					first = cmp.Or(first, fmt.Errorf("%s: %w", rd.shape, err))
					mu.Unlock()
					return
				}
				isIdeal := id.read(rd.key, fingerprint(truth), cfg.TTL)
				mu.Lock()
				s := shapes[rd.shape]
				s.Reads++
				if !sent.Load() {
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

// write makes one write, through odm or raw (Config.RawPercent), and applies it to
// the model (called by one goroutine at a time).
func write(ctx context.Context, cfg Config, r *rand.Rand, h *odm.Collection[Order], raw *mongo.Collection, state *atomic.Pointer[model], nextID *atomic.Int64, clock *int) error {
	cur := *state.Load()
	next := maps.Clone(cur)
	ids := slices.Collect(maps.Keys(cur))
	any := func() int { return ids[r.Intn(len(ids))] }
	viaODM := r.Intn(100) >= cfg.RawPercent
	var err error
	switch k := r.Intn(100); {
	case k < 25:
		*clock++
		o := newOrder(cfg, r, int(nextID.Add(1)), *clock)
		o.Status = "open"
		if viaODM {
			err = h.Insert(ctx, &o)
		} else {
			_, err = raw.InsertOne(ctx, o)
		}
		next[o.ID] = o
	case k < 50:
		id := any()
		o := next[id]
		switch o.Status {
		case "open":
			o.Status = "paid"
		case "paid":
			o.Status = "shipped"
		default:
			o.Status = "open"
		}
		u := bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: o.Status}}}}
		if viaODM {
			_, err = h.UpdateOne(ctx, query.Eq("_id", id), u)
		} else {
			_, err = raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, u)
		}
		next[id] = o
	case k < 70:
		id := any()
		o := next[id]
		o.Total += 10
		u := bson.D{{Key: "$inc", Value: bson.D{{Key: "total", Value: 10}}}}
		if viaODM {
			_, err = h.UpdateOne(ctx, query.Eq("_id", id), u)
		} else {
			_, err = raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, u)
		}
		next[id] = o
	case k < 92:
		id := any()
		if viaODM {
			_, err = h.DeleteOne(ctx, query.Eq("_id", id))
		} else {
			_, err = raw.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		}
		delete(next, id)
	default: // 8% of writes
		t := tenant(cfg, r)
		before := *clock - 200
		f := bson.D{{Key: "tenant", Value: t}, {Key: "status", Value: "open"}, {Key: "createdAt", Value: bson.D{{Key: "$lt", Value: before}}}}
		u := bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "shipped"}}}}
		if viaODM {
			_, err = h.UpdateMany(ctx, f, u)
		} else {
			_, err = raw.UpdateMany(ctx, f, u)
		}
		for id, o := range next {
			if o.Tenant == t && o.Status == "open" && o.CreatedAt < before {
				o.Status = "shipped"
				next[id] = o
			}
		}
	}
	state.Store(&next)
	return err
}
