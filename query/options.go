package query

import (
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/optset"
)

// Option configures one query. Options that do not apply to an operation
// (a sort for Count, say) are ignored by it.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	sort       any
	limit      int64
	skip       int64
	projection any
	hint       any
	collation  *options.Collation
	batchSize  int32
	maxTime    time.Duration
	cursorOpts []cursor.Option
	cached     bool
	cacheTTL   time.Duration
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

func (c *config) findOptions() *options.FindOptionsBuilder {
	f := options.Find()
	optset.SetShape(f, c.sort, c.projection, c.hint, c.collation)
	if c.limit != 0 {
		f.SetLimit(c.limit)
	}
	if c.skip != 0 {
		f.SetSkip(c.skip)
	}
	if c.batchSize != 0 {
		f.SetBatchSize(c.batchSize)
	}
	return f
}

// Sort orders the results, e.g. Sort(bson.D{{Key: "age", Value: -1}}).
// Default: server order.
func Sort(spec any) Option { return optionFunc(func(c *config) { c.sort = spec }) }

// Limit returns at most n documents. Default: no limit.
func Limit(n int64) Option { return optionFunc(func(c *config) { c.limit = n }) }

// Skip skips the first n matching documents. Default: 0.
func Skip(n int64) Option { return optionFunc(func(c *config) { c.skip = n }) }

// Projection selects the fields the server returns; decode into a struct
// that has just those fields. Default: whole documents.
func Projection(spec any) Option { return optionFunc(func(c *config) { c.projection = spec }) }

// Hint forces an index, by name or key pattern. Default: the planner's choice.
func Hint(index any) Option { return optionFunc(func(c *config) { c.hint = index }) }

// Collation sets the string comparison rules. Default: the collection's.
func Collation(col *options.Collation) Option {
	return optionFunc(func(c *config) { c.collation = col })
}

// DefaultGetMoreBatchSize is the batch size of getMore when no BatchSize
// option is given. Streaming 10,000 ~1 KB documents from the dev server
// measured 2.02 s wall at 1000 against 2.57 s at the server's default, with
// less client CPU; with pipelined getMore it also bounds memory to about two
// such batches (on MongoDB the default getMore batch is up to 16 MiB). See
// docs/performance.md.
const DefaultGetMoreBatchSize = 1000

// BatchSize sets how many documents each server batch holds, the first and
// every getMore. Default: the server's first batch (101 documents), then
// DefaultGetMoreBatchSize.
func BatchSize(n int32) Option { return optionFunc(func(c *config) { c.batchSize = n }) }

// MaxTime bounds the whole query, from find to the last getMore, with a
// context deadline (the driver turns it into the server's maxTimeMS).
// Default: only the caller's context bounds it.
func MaxTime(d time.Duration) Option { return optionFunc(func(c *config) { c.maxTime = d }) }

// CursorOptions passes options to the query's cursor (package cursor owns
// them): cursor.WithoutPrefetch, cursor.CloseTimeout, cursor.DecodeOptions.
// Default: the cursor's defaults.
func CursorOptions(opts ...cursor.Option) Option {
	return optionFunc(func(c *config) { c.cursorOpts = append(c.cursorOpts, opts...) })
}

// ZeroCopy decodes the query's strings with decode.ZeroCopy: they share
// the driver's batch memory (valid, but a string you keep holds its whole
// batch). It forwards to cursor.DecodeOptions(decode.ZeroCopy()). Default:
// strings are copied. Cached reads ignore it: they always decode strings
// from the cache's immutable buffer without copying.
func ZeroCopy() Option {
	return CursorOptions(cursor.DecodeOptions(decode.ZeroCopy()))
}

// Cached serves the query from the result cache (see package cache) and
// fills it on a miss; ttl 0 uses the cache's DefaultTTL. The cache is the
// handle's (Handle.WithCache) or the process default (UseCache); with
// neither, the query fails with ErrNoCache rather than silently running
// uncached. Cached results reflect every write made through this process's
// odm package (or any write, with cache.Observer on the client) as soon as
// that write returns; writes by other processes are seen through a
// coherence source, or after ttl. Default: no caching.
//
// It applies to FindMany, FindOne, Count (its number is cached) and Iter.
// A cached Iter is a cached FindMany: the whole result is loaded (and held
// by the cache) before the first value is yielded, so use it for results
// that fit in memory, not for streams. The read right after a miss stored
// its entry is a hit. Reads in a transaction ignore it.
func Cached(ttl time.Duration) Option {
	return optionFunc(func(c *config) { c.cached, c.cacheTTL = true, ttl })
}

var (
	cacheMu      sync.RWMutex
	defaultCache *cache.Cache
)

// UseCache sets the process-wide result cache used by queries with the
// Cached option whose handle has none. It returns a function that restores
// the previous one.
func UseCache(c *cache.Cache) (restore func()) {
	cacheMu.Lock()
	prev := defaultCache
	defaultCache = c
	cacheMu.Unlock()
	return func() {
		cacheMu.Lock()
		defaultCache = prev
		cacheMu.Unlock()
	}
}

func processCache() *cache.Cache {
	cacheMu.RLock()
	defer cacheMu.RUnlock()
	return defaultCache
}

// Shape is what a list of options says about the documents an operation
// returns: the sort, projection, hint and collation. It is for operations
// of other packages that take query options as they are (odm's
// find-and-modify, through odm.ReadWith).
type Shape struct {
	Sort, Projection, Hint any
	Collation              *options.Collation
}

// ShapeOf returns the Shape set by opts; options about anything else are
// ignored.
func ShapeOf(opts ...Option) Shape {
	c := newConfig(opts)
	return Shape{Sort: c.sort, Projection: c.projection, Hint: c.hint, Collation: c.collation}
}
