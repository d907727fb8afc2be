package query

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/opt"
)

// Option configures one call, a read or a write: the one option type of
// databridge. The options of this package shape reads (and the document a
// find-and-modify returns); package odm's options (odm.Upsert,
// odm.WithoutHooks, …) configure writes. An operation ignores the options
// that do not apply to it (a sort for Count, say).
//
// The zero Option sets nothing.
type Option struct{ set opt.Func }

func optionFunc(f opt.Func) Option { return Option{set: f} }

func init() {
	// An Option is one pointer: these conversions to any do not allocate.
	opt.Make = func(f opt.Func) any { return Option{set: f} }
	opt.Setter = func(o any) opt.Func { return o.(Option).set }
	opt.CheckField = checkField
	opt.FilterD = func(f any) (bson.D, error, bool) {
		ff, ok := f.(Filter)
		if !ok {
			return nil, nil, false
		}
		return ff.d, ff.err, true
	}
}

// Sort orders the results, e.g. Sort(bson.D{{Key: "age", Value: -1}}), and
// chooses which document a find-and-modify changes when several match.
// Default: server order.
func Sort(spec any) Option { return optionFunc(func(c *opt.Config) { c.Sort = spec }) }

// Limit returns at most n documents. Default: no limit.
func Limit(n int64) Option { return optionFunc(func(c *opt.Config) { c.Limit = n }) }

// Skip skips the first n matching documents. Default: 0.
func Skip(n int64) Option { return optionFunc(func(c *opt.Config) { c.Skip = n }) }

// Projection selects the fields the server returns (decode into a struct
// that has just those fields), also of a find-and-modify's document.
// Default: whole documents.
func Projection(spec any) Option { return optionFunc(func(c *opt.Config) { c.Projection = spec }) }

// Hint forces an index, by name or key pattern, for reads and for the
// writes that take a filter. Default: the planner's choice.
func Hint(index any) Option { return optionFunc(func(c *opt.Config) { c.Hint = index }) }

// Collation sets the string comparison rules of reads and of the writes
// that take a filter. Default: the collection's.
func Collation(col *options.Collation) Option {
	return optionFunc(func(c *opt.Config) { c.Collation = col })
}

// BatchSize sets how many documents each server batch holds, the first and
// every getMore. Default: the server's first batch (101 documents), then
// 1000 documents per getMore (streaming 10,000 ~1 KB documents from the dev
// server measured 2.02 s at 1000 against 2.57 s at the server's default,
// with less client CPU; see docs/performance.md). With pipelined getMore,
// memory stays bounded by about two batches.
func BatchSize(n int32) Option { return optionFunc(func(c *opt.Config) { c.BatchSize = n }) }

// CursorOptions passes options to a stream's cursor (package cursor owns
// them): cursor.WithoutPrefetch, cursor.CloseTimeout, cursor.DecodeOptions
// (decode.ZeroCopy() decodes strings without copying them). Default: the
// cursor's defaults.
func CursorOptions(opts ...cursor.Option) Option {
	return optionFunc(func(c *opt.Config) { c.Cursor = append(c.Cursor, opts...) })
}

// Cached serves a read from the result cache of its collection (see
// package cache and odm.WithCache) and fills it on a miss; ttl 0 uses the
// cache's DefaultTTL. A collection without a cache fails the read with
// ErrNoCache rather than silently running it uncached. Cached results
// reflect every write made through databridge in this process (or any
// write, on a client with cache.Observer) as soon as that write returns;
// writes by other processes are seen through a coherence source, or after
// ttl. Default: no caching.
//
// It applies to FindMany, FindOne, Count, Iter and Aggregate. A cached Iter
// is a cached FindMany: the whole result is loaded (and held by the cache)
// before the first value is yielded, so use it for results that fit in
// memory, not for streams. The read right after a miss stored its entry is
// a hit. Reads in a transaction ignore it.
func Cached(ttl time.Duration) Option {
	return optionFunc(func(c *opt.Config) { c.Cached, c.TTL = true, ttl })
}
