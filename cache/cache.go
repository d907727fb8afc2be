package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Config sizes a Cache. The zero Config is valid: every field has a default.
type Config struct {
	// MaxCost is the most bytes of cached results (raw BSON) the cache
	// holds before it evicts. Default: 64 MiB.
	MaxCost int64
	// NumCounters is the number of keys whose access frequency ristretto
	// tracks, about 10x the number of entries you expect. Default:
	// MaxCost/1 KiB*10, at least 10,000.
	NumCounters int64
	// DefaultTTL is how long an entry lives when a query asks for caching
	// without a TTL of its own. Default: 1 minute.
	DefaultTTL time.Duration
	// Source shares invalidations with the other processes that cache the
	// same collections (package coherence has two). Default: none, and the
	// cache is coherent within this process only.
	Source Source
	// CollectionWideOnly turns point reads off: every write invalidates
	// every cached read of its collection, as before point reads existed.
	// For measuring the difference (BenchmarkPointReads); default false.
	CollectionWideOnly bool
	// SettleMargin is added to the deadline of a write whose outcome is
	// unknown (see Unsettled) before the cache trusts that the server has
	// finished it: it covers the round trip and clock error around the
	// server's own maxTimeMS. A server that does not enforce maxTimeMS on
	// writes (FerretDB v1.24) needs a margin as long as its longest write.
	// Default: DefaultSettleMargin.
	SettleMargin time.Duration
}

// DefaultSettleMargin is the Config.SettleMargin default.
const DefaultSettleMargin = time.Second

// Source connects a Cache to the other processes that cache the same data:
// it tells them about this process's writes and reports theirs. New runs
// it; Close stops it.
type Source interface {
	// Publish announces that this process wrote to collection coll of
	// database db. Invalidate calls it for every write; it must not block.
	Publish(db, coll string)
	// Run reports the other processes' writes to sink until ctx is done.
	// New calls it in a goroutine of its own; Close cancels ctx and waits
	// for it to return.
	Run(ctx context.Context, sink Sink)
}

// Sink is the Cache as its Source sees it.
type Sink interface {
	// Invalidate applies a write made by another process to db.coll.
	Invalidate(db, coll string)
	// Lost reports that the source may have missed writes (its cursor
	// died, its log wrapped, the server went away). The cache invalidates
	// everything and serves every read from the server, storing nothing,
	// until Synced.
	Lost(reason error)
	// Synced reports that the source follows the other processes' writes
	// again (also the first time: a cache with a Source caches nothing
	// before its first Synced).
	Synced()
}

// Cache is an in-process cache of query results, keyed by the query's
// canonical encoding and its collection's generation. It is safe for
// concurrent use. See the package documentation for its guarantees.
type Cache struct {
	rc         *ristretto.Cache[string, *entry]
	defaultTTL time.Duration

	gens  sync.Map      // namespace "db.coll" → *nsState
	epoch atomic.Uint64 // InvalidateAll calls, added to every generation
	// settleAll is Unsettled's window for a write that may have changed
	// every collection (unix nanoseconds; 0 if none).
	settleAll atomic.Int64

	settleMargin time.Duration
	noPointReads bool
	timersMu     sync.Mutex
	timers       map[string]*time.Timer // the end of each unsettled window
	closed       bool

	mu      sync.Mutex
	flights map[string]*flight

	hits, misses, invalidations, evictions, loads, unsettled, rejected atomic.Uint64

	source                    Source
	synced                    atomic.Bool
	stop                      context.CancelFunc
	stopped                   chan struct{}
	remote, resyncs, bypassed atomic.Uint64
}

// entry is one cached result: the documents as raw BSON in one buffer that
// is never written again, and the canonical key, compared on every hit so
// that two queries whose hashes collide can never see each other's results.
type entry struct {
	key string
	res *Result
}

// Result is a cached query result. Its documents are shared with the cache
// and never written: decode them into values you own, or (for types whose
// values share no mutable memory) copy a memoized decoded form.
type Result struct {
	// Docs are the result's documents, in order, in one immutable buffer.
	Docs    []bson.Raw
	memoKey any
	memo    any
}

// Memo returns the value built by the Memo passed to the Fetch that loaded
// this result, when its key equals key.
func (r *Result) Memo(key any) (any, bool) {
	if r.memo == nil || r.memoKey != key {
		return nil, false
	}
	return r.memo, true
}

// Memo derives a value from a result's documents when it is loaded (for
// example the documents decoded into a []T), stored with the entry and
// counted in its cost.
type Memo struct {
	Key   any // identifies what Build makes, e.g. a reflect.Type
	Build func(docs []bson.Raw) (value any, cost int64, err error)
}

// New returns a Cache sized by cfg.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxCost < 0 || cfg.NumCounters < 0 || cfg.DefaultTTL < 0 || cfg.SettleMargin < 0 {
		return nil, errors.New("cache: negative size, TTL or margin in Config")
	}
	if cfg.SettleMargin == 0 {
		cfg.SettleMargin = DefaultSettleMargin
	}
	if cfg.MaxCost == 0 {
		cfg.MaxCost = 64 << 20
	}
	if cfg.NumCounters == 0 {
		cfg.NumCounters = max(cfg.MaxCost/1024*10, 10_000)
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = time.Minute
	}
	c := &Cache{defaultTTL: cfg.DefaultTTL, flights: map[string]*flight{},
		settleMargin: cfg.SettleMargin, timers: map[string]*time.Timer{}, noPointReads: cfg.CollectionWideOnly}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters: cfg.NumCounters,
		MaxCost:     cfg.MaxCost,
		BufferItems: 64,
		// Costs are the bytes of the results; ristretto's own per-item
		// overhead would otherwise be added to each.
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[*entry]) { c.evictions.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.rc = rc
	live.Store(c, struct{}{})
	if cfg.Source != nil {
		c.source = cfg.Source
		ctx, stop := context.WithCancel(context.Background())
		c.stop, c.stopped = stop, make(chan struct{})
		go func() {
			defer close(c.stopped)
			cfg.Source.Run(ctx, sink{c})
		}()
	}
	return c, nil
}

// Close stops the cache's Source (waiting for it to return) and its
// background goroutines, and drops its entries.
func (c *Cache) Close() {
	live.Delete(c)
	c.timersMu.Lock()
	c.closed = true
	for _, t := range c.timers {
		t.Stop()
	}
	c.timersMu.Unlock()
	if c.stop != nil {
		c.stop()
		<-c.stopped
	}
	c.rc.Close()
}

// sink applies a Source's reports to the cache.
type sink struct{ c *Cache }

func (s sink) Invalidate(db, coll string) {
	s.c.remote.Add(1)
	s.c.invalidate(db, coll)
}

func (s sink) Lost(error) {
	// Stop storing first, so nothing loaded before the flush is kept.
	s.c.synced.Store(false)
	s.c.resyncs.Add(1)
	s.c.InvalidateAll()
}

func (s sink) Synced() { s.c.synced.Store(true) }

// MaxCost returns the byte budget of the cache.
func (c *Cache) MaxCost() int64 { return c.rc.MaxCost() }

// Used returns the bytes of results the cache holds now (admitted entries;
// ristretto applies sets asynchronously).
func (c *Cache) Used() int64 { return c.rc.MaxCost() - c.rc.RemainingCost() }

func namespace(db, coll string) string { return db + "." + coll }

// nsState is what the cache knows of one collection.
type nsState struct {
	gen    atomic.Uint64 // invalidations so far, of every kind
	wide   atomic.Uint64 // invalidations not confined to known ids (see point.go)
	settle atomic.Int64  // unix nanoseconds until which an unsettled write may still run; 0 if none
	ids    [idBuckets]atomic.Uint64
}

func (c *Cache) ns(ns string) *nsState {
	if g, ok := c.gens.Load(ns); ok {
		return g.(*nsState)
	}
	g, _ := c.gens.LoadOrStore(ns, new(nsState))
	return g.(*nsState)
}

// unsettledAll reports whether a write of unknown outcome may still be
// changing every collection.
func (c *Cache) unsettledAll() bool {
	s := c.settleAll.Load()
	return s != 0 && time.Now().UnixNano() < s
}

// unsettledNow reports whether a write of unknown outcome may still be
// running in the collection.
func (st *nsState) unsettledNow() bool {
	s := st.settle.Load()
	return s != 0 && time.Now().UnixNano() < s
}

// Generation returns the current generation of a collection: the number of
// invalidations it has had plus the number of InvalidateAll calls (both only
// grow, so any of them makes every earlier generation unreachable). Cached
// results are stored under the generation read when their query started.
func (c *Cache) Generation(db, coll string) uint64 {
	return c.ns(namespace(db, coll)).gen.Load() + c.epoch.Load()
}

// Invalidate makes every cached result of the collection unreachable: it
// bumps the collection's generation, which is part of every key. It is the
// entry point every write calls after the server answers (also when the
// write failed, or failed partway), and the one a cross-process source calls
// for writes made elsewhere. It does not depend on ristretto applying
// anything in time.
//
// An empty coll stands for every collection of db, and an empty db and
// coll for every collection (dropDatabase, applyOps): Invalidate then acts
// as InvalidateAll, and is published as such.
//
// With a Source, Invalidate also publishes the write to the other processes.
func (c *Cache) Invalidate(db, coll string) {
	c.invalidate(db, coll)
	if c.source != nil {
		c.source.Publish(db, coll)
	}
}

func (c *Cache) invalidate(db, coll string) {
	if coll == "" { // a whole database, or (db "" too) everything
		c.epoch.Add(1)
	} else {
		st := c.ns(namespace(db, coll))
		st.wide.Add(1)
		st.gen.Add(1)
	}
	c.invalidations.Add(1)
}

// InvalidateIDs is Invalidate for a write confined to the documents with
// the given _ids (a write by _id, or an insert of documents with these
// ids): cached reads that select by _id only those of other ids stay valid;
// every other cached read of the collection is invalidated, as by
// Invalidate. Ids that take no part in point reads (strings, documents)
// make it an Invalidate. It is published to other processes as Invalidate.
func (c *Cache) InvalidateIDs(db, coll string, ids ...any) {
	buckets := make([]uint32, 0, len(ids))
	for _, id := range ids {
		b, ok := bucketOf(id)
		if !ok {
			c.Invalidate(db, coll)
			return
		}
		buckets = append(buckets, b)
	}
	c.invalidateBuckets(db, coll, buckets)
	if c.source != nil {
		c.source.Publish(db, coll)
	}
}

// InvalidateMatching is Invalidate for a write with filter: when the filter
// confines it to known _ids, as InvalidateIDs; otherwise as Invalidate.
func (c *Cache) InvalidateMatching(db, coll string, filter any) {
	buckets, ok := pointBuckets(filter, nil)
	if !ok {
		c.Invalidate(db, coll)
		return
	}
	c.invalidateBuckets(db, coll, buckets)
	if c.source != nil {
		c.source.Publish(db, coll)
	}
}

func (c *Cache) invalidateBuckets(db, coll string, buckets []uint32) {
	st := c.ns(namespace(db, coll))
	for _, b := range buckets {
		st.ids[b].Add(1)
	}
	st.gen.Add(1) // after the ids: a read that sees the new gen sees them
	c.invalidations.Add(1)
}

// Unsettled is Invalidate for a write whose outcome is unknown: it was sent
// and its reply is missing (a timeout, a cancelled context, a network
// error), so the server may have applied it, in part, and may still be
// applying it. deadline is when the server stops it at the latest: the
// write's context deadline, which the driver sends as maxTimeMS.
//
// Until deadline plus Config.SettleMargin, no read of the collection is
// served from the cache or stored in it (each is counted in
// Stats().Bypassed): a result loaded meanwhile could predate the write's
// completion. Then the collection is invalidated again, and published again
// to the other processes, whose caches may have been refilled in the window.
// A zero deadline (a write with no time limit) waits DefaultTTL.
func (c *Cache) Unsettled(db, coll string, deadline time.Time) {
	if deadline.IsZero() {
		deadline = time.Now().Add(c.defaultTTL)
	}
	until := deadline.Add(c.settleMargin)
	ns := namespace(db, coll)
	st := c.ns(ns)
	if coll == "" { // every collection: one window for all
		for {
			old := c.settleAll.Load()
			if old >= until.UnixNano() || c.settleAll.CompareAndSwap(old, until.UnixNano()) {
				break
			}
		}
	}
	// The window is set before the generation moves: a read that sees the
	// new generation sees the window too.
	for {
		old := st.settle.Load()
		if old >= until.UnixNano() || st.settle.CompareAndSwap(old, until.UnixNano()) {
			break
		}
	}
	c.unsettled.Add(1)
	c.Invalidate(db, coll)

	c.timersMu.Lock()
	defer c.timersMu.Unlock()
	if c.closed {
		return
	}
	wait := time.Until(time.Unix(0, st.settle.Load()))
	if t, ok := c.timers[ns]; ok {
		t.Reset(wait)
		return
	}
	c.timers[ns] = time.AfterFunc(wait, func() {
		c.timersMu.Lock()
		if time.Now().UnixNano() < st.settle.Load() { // extended meanwhile: its own Reset follows
			c.timersMu.Unlock()
			return
		}
		delete(c.timers, ns)
		closed := c.closed
		c.timersMu.Unlock()
		if !closed {
			c.Invalidate(db, coll)
		}
	})
}

// InvalidateAll invalidates every collection the cache has seen, for code
// that lost track of which ones changed. It is not published to other
// processes.
//
// It is one atomic add to a counter that is part of every collection's
// generation, so it also covers collections whose first read is racing
// with it.
func (c *Cache) InvalidateAll() {
	c.epoch.Add(1)
	c.invalidations.Add(1)
}

// Stats are the cache's counters since New.
type Stats struct {
	Hits, Misses  uint64
	Loads         uint64 // queries sent to the server on misses (fewer than Misses with singleflight)
	Invalidations uint64
	Evictions     uint64
	UsedBytes     int64
	MaxBytes      int64

	// With a Source: invalidations received from other processes; times the
	// source lost its place and the cache was flushed; reads served from
	// the server while it was not following (each counted as a miss too);
	// and whether it is following now.
	Remote, Resyncs, Bypassed uint64
	Synced                    bool

	// Writes of unknown outcome reported with Unsettled (reads of their
	// collection bypass the cache until each settles, counted in Bypassed).
	Unsettled uint64

	// Rejected counts results ristretto refused to store (its admission
	// policy, when the cache is full of more frequently used entries): a
	// steady rise means MaxCost is too small for the working set.
	Rejected uint64
}

// HitRatio returns Hits/(Hits+Misses), or 0 before any lookup.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Loads: c.loads.Load(),
		Invalidations: c.invalidations.Load(), Evictions: c.evictions.Load(),
		UsedBytes: c.Used(), MaxBytes: c.MaxCost(),
		Remote: c.remote.Load(), Resyncs: c.resyncs.Load(), Bypassed: c.bypassed.Load(),
		Synced: c.source == nil || c.synced.Load(), Unsettled: c.unsettled.Load(),
		Rejected: c.rejected.Load(),
	}
}

// LoadFunc runs a query on a miss and returns its documents. The cache
// copies them, so they may point into driver buffers.
type LoadFunc func(ctx context.Context) ([]bson.Raw, error)

// Fetch returns the cached result of q, or runs load and caches its result
// for ttl (the cache's DefaultTTL when ttl is 0), with memo's value when memo
// is not nil. Concurrent misses of the same query share one load. The
// result is shared with the cache and must not be modified.
//
// The generation of q's collection is read before load runs, so a result
// loaded while a write was in flight is stored under the old generation,
// which no read that starts after the write can see.
func (c *Cache) Fetch(ctx context.Context, q Key, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	if ttl <= 0 {
		ttl = c.defaultTTL
	}
	st := c.ns(namespace(q.Database, q.Collection))
	var key string
	var err error
	var bbuf [8]uint32 // a point read of up to 8 ids allocates no buckets
	if buckets, ok := pointBuckets(q.Filter, bbuf[:0]); ok && !c.noPointReads {
		// A point read: it depends on the wide writes and on its ids.
		var gbuf [9]uint64
		gens := gbuf[:0]
		gens = append(gens, st.wide.Load()+c.epoch.Load())
		for _, b := range buckets {
			gens = append(gens, st.ids[b].Load())
		}
		key, err = q.canonical(gens...)
	} else if len(q.Also) > 0 {
		// It depends on other collections too: their generations are in
		// its key, and their unsettled writes keep it out of the cache.
		gens := make([]uint64, 1+len(q.Also))
		gens[0] = st.gen.Load() + c.epoch.Load()
		for i, ns := range q.Also {
			dep := c.ns(ns)
			gens[1+i] = dep.gen.Load() + c.epoch.Load()
			if dep.unsettledNow() {
				st = dep // bypass below
			}
		}
		key, err = q.canonical(gens...)
	} else {
		key, err = q.canonical(st.gen.Load() + c.epoch.Load())
	}
	if err != nil {
		return nil, err
	}
	if st.unsettledNow() || c.unsettledAll() {
		// A write of unknown outcome may still be running: neither serve
		// nor store (see Unsettled).
		c.misses.Add(1)
		c.bypassed.Add(1)
		return c.load(ctx, key, 0, load, memo)
	}
	if e, ok := c.rc.Get(key); ok && e.key == key {
		c.hits.Add(1)
		return e.res, nil
	}
	c.misses.Add(1)
	if c.source != nil && !c.synced.Load() {
		// Writes by other processes might go unseen: do not cache.
		c.bypassed.Add(1)
		return c.load(ctx, key, 0, load, memo)
	}
	return c.loadShared(ctx, key, ttl, load, memo)
}

// flight is one load in progress, shared by concurrent misses of one key.
type flight struct {
	done chan struct{}
	res  *Result
	err  error
}

func (c *Cache) loadShared(ctx context.Context, key string, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	for {
		c.mu.Lock()
		if f, ok := c.flights[key]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The leader's own cancellation is not ours: try again.
			if f.err != nil && isContextErr(f.err) && ctx.Err() == nil {
				continue
			}
			return f.res, f.err
		}
		f := &flight{done: make(chan struct{})}
		c.flights[key] = f
		c.mu.Unlock()

		f.res, f.err = c.load(ctx, key, ttl, load, memo)
		c.mu.Lock()
		delete(c.flights, key)
		c.mu.Unlock()
		close(f.done)
		return f.res, f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// load runs load and stores its result for ttl; with ttl 0 it only builds
// the result.
func (c *Cache) load(ctx context.Context, key string, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	c.loads.Add(1)
	docs, err := load(ctx)
	if err != nil {
		return nil, err
	}
	// One buffer for the whole result: exact accounting, and an immutable
	// home for zero-copy strings decoded from it.
	size := 0
	for _, d := range docs {
		size += len(d)
	}
	buf := make([]byte, 0, size)
	own := make([]bson.Raw, len(docs))
	for i, d := range docs {
		start := len(buf)
		buf = append(buf, d...)
		own[i] = bson.Raw(buf[start:len(buf):len(buf)])
	}
	res := &Result{Docs: own}
	cost := int64(size + len(key) + 64)
	if memo != nil {
		v, mcost, err := memo.Build(own)
		if err != nil {
			return nil, err
		}
		res.memoKey, res.memo = memo.Key, v
		cost += mcost
	}
	if ttl > 0 {
		if c.rc.SetWithTTL(key, &entry{key: key, res: res}, cost, ttl) {
			// ristretto applies sets asynchronously; waiting here, on the
			// miss path, where a few µs are nothing next to the round trip,
			// makes the next read of the key a hit (unless it was rejected
			// or evicted for its cost).
			c.rc.Wait()
		} else {
			c.rejected.Add(1)
		}
	}
	return res, nil
}

// Wait blocks until the cache has applied the sets issued before it
// (ristretto buffers them); for tests and benchmarks.
func (c *Cache) Wait() { c.rc.Wait() }
