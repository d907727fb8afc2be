package cachecore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Config is cache.Config, field for field; cache.Config documents each.
type Config struct {
	MaxCost, NumCounters     int64
	DefaultTTL, SettleMargin time.Duration
	Source                   Source
	CollectionWideOnly       bool
	Tracer                   Tracer
}

// DefaultSettleMargin is the Config.SettleMargin default.
const DefaultSettleMargin = time.Second

// Unwrap returns the core of a *cache.Cache (given as any: this package
// cannot name it). Package cache sets it in its init.
var Unwrap func(public any) *Cache

// Source is cache.Source, and Sink cache.Sink: the same methods, documented
// there (package cache adapts one to the other).
type Source interface {
	Publish(db, coll string)
	Run(ctx context.Context, sink Sink)
}

// Describer is cache.DescribingSource's own method: a Source that has it
// is given each write's descriptor.
type Describer interface {
	PublishDescribed(db, coll string, descriptor []byte)
}

// Sink is cache.Sink (see Source).
type Sink interface {
	Invalidate(db, coll string)
	Described(db, coll string, descriptor []byte)
	ChangeEvent(event bson.Raw)
	Lost(reason error)
	Synced()
}

// Cache is an in-process cache of query results. It is safe for
// concurrent use. See package cache for its guarantees.
type Cache struct {
	rc         *ristretto.Cache[string, *entry]
	defaultTTL time.Duration

	spaces sync.Map      // database → *sync.Map of collection → *space
	epoch  atomic.Uint64 // InvalidateAll calls: every entry loaded before one is invalid
	// settleAll is the unsettled window of a write that may have changed
	// every collection (unix nanoseconds; 0 if none).
	settleAll atomic.Int64

	settleMargin time.Duration
	wideOnly     bool
	timersMu     sync.Mutex
	timers       map[string]*time.Timer // the end of each unsettled window
	closed       bool
	isShut       atomic.Bool  // Close has run (read without timersMu)
	rcMu         sync.RWMutex // held to write to rc (read), and by Close to close it

	// Set by tests: afterLoad runs when a load has ended and before its
	// flight is removed; joining when a miss joins a load in flight.
	afterLoad, joining func()

	mu      sync.Mutex
	flights map[string]*flight
	scopes  scopes // the collection values read through the cache (ScopeOf)

	// maxTTL is the longest TTL an entry was stored with (nanoseconds): a
	// write of unknown outcome with no time limit keeps its collection
	// uncached at least that long (see unsettled).
	maxTTL atomic.Int64

	hits, misses, invalidations, evictions, loads, unsettledWrites, rejected atomic.Uint64
	unsettledNoDeadline, lagging, unobserved                                 atomic.Uint64
	byID, byMatch, byPath, byWide, kept, discarded                           atomic.Uint64
	held, released, preImages                                                atomic.Uint64

	source                                   Source
	describer                                Describer // source's, when it carries descriptors
	described, undescribed                   atomic.Uint64
	synced                                   atomic.Bool
	stop                                     context.CancelFunc
	stopped                                  chan struct{}
	remote, remotePrecise, resyncs, bypassed atomic.Uint64
	lostAt                                   atomic.Int64 // unix nanoseconds of the last Lost (0: none since Synced)

	tracer    Tracer
	wideLoads [NumWide]atomic.Uint64 // loads analysed under the collection-wide rule, by why
}

// entry is one cached result: the documents as raw BSON in one buffer that
// is never written again, and the canonical key, compared on every hit so
// that two queries whose hashes collide can never see each other's results.
type entry struct {
	key string
	res *Result
	dep *dep // what it depends on
}

// Result is a cached query result. Its documents are shared with the cache
// and never written: decode them into values you own, or (for types whose
// values share no mutable memory) copy a memoized decoded form.
type Result struct {
	// Docs are the result's documents, in order, in one immutable buffer.
	Docs     []bson.Raw
	bytes    int // of Docs
	memoKey  any
	memo     any
	memoCost int64
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
		settleMargin: cfg.SettleMargin, timers: map[string]*time.Timer{}, wideOnly: cfg.CollectionWideOnly,
		tracer: cfg.Tracer}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters: cfg.NumCounters,
		MaxCost:     cfg.MaxCost,
		BufferItems: 64,
		// Costs are the bytes of the results; ristretto's own per-item
		// overhead would otherwise be added to each.
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[*entry]) { c.evictions.Add(1) },
		OnReject:           func(*ristretto.Item[*entry]) { c.rejected.Add(1) },
		// Every entry that leaves (evicted, expired, replaced, deleted,
		// refused) leaves its collection's indexes too.
		OnExit: func(e *entry) {
			if e != nil && e.dep != nil {
				sp := e.dep.sp
				sp.mu.Lock()
				sp.unregister(e.dep)
				// Out of the indexes, no write would mark it: it is
				// invalid from now on, and a live query tracking it is
				// untracked (watch.go: the next write of the collection
				// wakes it, whatever it changes). Leaving is not a
				// change: waking here would read again at once, and live
				// queries that evict each other would read in a loop
				// (TestLiveQueriesDoNotEvictEachOther); an expiry is
				// the live query's own timer's business (Handle.Expires).
				e.dep.invalid.Store(true)
				sp.mu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.rc = rc
	join(c)
	if cfg.Source != nil {
		c.source = cfg.Source
		c.describer, _ = cfg.Source.(Describer)
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
	leave(c)
	c.timersMu.Lock()
	c.closed = true
	c.isShut.Store(true)
	for _, t := range c.timers {
		t.Stop()
	}
	c.timersMu.Unlock()
	if c.stop != nil {
		c.stop()
		<-c.stopped
	}
	c.rcMu.Lock() // no Set, Del or Wait runs on, or after, a closed ristretto
	c.rc.Close()
	c.rcMu.Unlock()
}

// sink applies a Source's reports to the cache.
type sink struct{ c *Cache }

func (s sink) Invalidate(db, coll string) {
	s.c.remote.Add(1)
	// Which write, the source does not say: the collection may have been
	// dropped and made again, so its shape is asked again too.
	s.c.applyRemote(Change{DB: db, Coll: coll, Drop: true})
}

func (s sink) Described(db, coll string, desc []byte) {
	// A copy: the statements point into it (see ChangeEvent).
	ch, ok := ChangeOfDescriptor(db, coll, slices.Clone(desc))
	if !ok {
		s.Invalidate(db, coll)
		return
	}
	s.c.remote.Add(1)
	s.c.remotePrecise.Add(1)
	s.c.applyRemote(ch) // no Writers: judged by what it carries, never by this cache's images
}

func (s sink) ChangeEvent(ev bson.Raw) {
	// A copy: the statements point into it, and loads in flight keep them
	// after this returns, while a cursor's Current is reused by its Next.
	ch, ok := ChangeOfEvent(slices.Clone(ev))
	switch {
	case ok:
		s.c.remote.Add(1)
		s.c.remotePrecise.Add(1)
		s.c.applyRemote(ch)
	case ch.DB != "" && ch.Coll != "":
		s.Invalidate(ch.DB, ch.Coll)
	default: // which collection, the event does not say
		s.Lost(errUnreadableEvent)
		s.Synced()
	}
}

var errUnreadableEvent = errors.New("cache: a change event without a namespace")

func (s sink) Lost(reason error) {
	// Stop storing first, so nothing loaded before the flush is kept.
	s.c.synced.Store(false)
	s.c.resyncs.Add(1)
	s.c.InvalidateAll()
	s.c.lostAt.CompareAndSwap(0, time.Now().UnixNano())
	if s.c.tracer != nil {
		s.c.tracer.Source(context.Background(), &SourceTrace{Kind: SourceLost, Err: reason})
	}
}

// Delayed reports an event's propagation delay (cache.DelaySink).
func (s sink) Delayed(d time.Duration) {
	if s.c.tracer != nil {
		s.c.tracer.Source(context.Background(), &SourceTrace{Kind: SourceDelivered, Lag: d})
	}
}

func (s sink) Synced() {
	s.c.synced.Store(true)
	s.c.wakeAll() // writes may have been missed while not following
	var down time.Duration
	if at := s.c.lostAt.Swap(0); at != 0 {
		down = time.Duration(time.Now().UnixNano() - at)
	}
	if s.c.tracer != nil {
		s.c.tracer.Source(context.Background(), &SourceTrace{Kind: SourceSynced, Down: down})
	}
}
