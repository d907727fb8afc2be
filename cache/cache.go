package cache

import (
	"context"
	"time"

	"github.com/databridge-go/databridge/internal/cachecore"
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
	// CollectionWideOnly turns the invalidation rules off: every write
	// invalidates every cached read of its collection. An operator's
	// fallback if a rule is ever in doubt, and the baseline of the
	// precision benchmark (docs/caching.md).
	// Default false.
	CollectionWideOnly bool
	// SettleMargin is added to the deadline of a write whose outcome is
	// unknown (its reply was lost) before the cache trusts that the server
	// has finished it: it covers the round trip and clock error around the
	// server's own maxTimeMS. A server that does not enforce maxTimeMS on
	// writes (FerretDB v1.24) needs a margin as long as its longest write.
	// Default: DefaultSettleMargin.
	SettleMargin time.Duration
	// Tracer sees every cached read, and, if it implements WriteTracer or
	// SourceTracer, every write applied and the Source's state (LogTracer
	// writes them to a log/slog logger; the otel module makes OpenTelemetry
	// spans and metrics of them). Default: none, at no cost.
	Tracer Tracer
}

// DefaultSettleMargin is the Config.SettleMargin default.
const DefaultSettleMargin = cachecore.DefaultSettleMargin

// Cache is an in-process cache of query results. It is safe for concurrent
// use. Give it to collection handles with odm.WithCache; see the package
// documentation for its guarantees.
type Cache struct {
	core *cachecore.Cache
}

func init() {
	cachecore.Unwrap = func(public any) *cachecore.Cache {
		if c, ok := public.(*Cache); ok && c != nil {
			return c.core
		}
		return nil
	}
}

// New returns a Cache sized by cfg, and starts its Source, if any.
func New(cfg Config) (*Cache, error) {
	cc := cachecore.Config{
		MaxCost: cfg.MaxCost, NumCounters: cfg.NumCounters, DefaultTTL: cfg.DefaultTTL,
		CollectionWideOnly: cfg.CollectionWideOnly, SettleMargin: cfg.SettleMargin,
		Tracer: newTracer(cfg.Tracer),
	}
	switch src := cfg.Source.(type) {
	case nil:
	case DescribingSource:
		cc.Source = describing{source{src}, src}
	default:
		cc.Source = source{src}
	}
	core, err := cachecore.New(cc)
	if err != nil {
		return nil, err
	}
	return &Cache{core: core}, nil
}

// Close stops the cache's Source (waiting for it to return) and its
// background goroutines, and drops its entries.
func (c *Cache) Close() { c.core.Close() }

// Invalidate makes every cached result of collection coll of database db
// unreachable, as a write to it does, and publishes that to the other
// processes through the Source. It is for code that changes data by a path
// neither databridge nor the write observer sees. An empty coll stands for
// every collection of db, and an empty db and coll for every collection.
func (c *Cache) Invalidate(db, coll string) { c.core.Invalidate(db, coll) }

// InvalidateAll invalidates every collection the cache has seen, for code
// that lost track of which ones changed. It is not published to other
// processes.
func (c *Cache) InvalidateAll() { c.core.InvalidateAll() }

// source adapts a Source to the core: the same methods, with the core's
// Sink passed on as a Sink.
type source struct{ s Source }

func (s source) Publish(db, coll string) { s.s.Publish(db, coll) }

func (s source) Run(ctx context.Context, sink cachecore.Sink) { s.s.Run(ctx, sink) }

// describing adapts a DescribingSource.
type describing struct {
	source
	d DescribingSource
}

func (s describing) PublishDescribed(db, coll string, descriptor []byte) {
	s.d.PublishDescribed(db, coll, descriptor)
}
