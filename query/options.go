package query

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/opt"
)

// ReadOption configures one read: a find (Iter, FindMany, FindOne,
// Cursor), Count, Distinct or an aggregation. The read options are Limit,
// Skip, BatchSize, CursorOptions and Cached, and the options of reads and
// writes alike (Option). Only this module's options implement it (a type
// of yours can, only by embedding one, and must not embed a nil one), so an
// option of writes (odm.Upsert, odm.WithoutHooks, …) given to a read does
// not compile. A read ignores the options that do not apply to it (a sort
// for Count, say). A nil ReadOption sets nothing.
type ReadOption interface{ opt.Read }

// WriteOption configures one write of package odm. The write options are
// package odm's (odm.Upsert, odm.Unordered, odm.WithoutHooks, …) and the
// options of reads and writes alike (Option). Only this module's options
// implement it (a type of yours can, only by embedding one, and must not
// embed a nil one), so a read option (Limit, Cached, …) given to a write
// does not compile. A write ignores the options that do not apply to it. A
// nil WriteOption sets nothing.
type WriteOption interface{ opt.Write }

// Option is an option of reads and writes alike: Sort and Projection shape
// a read and a find-and-modify write (Sort chooses which document it
// changes, Projection what it returns; other writes ignore them), Hint and
// Collation a read and every write that takes a filter.
type Option interface {
	ReadOption
	WriteOption
}

func init() {
	opt.CheckField = checkField
	opt.FilterD = func(f any) (bson.D, error, bool) {
		ff, ok := f.(Filter)
		if !ok {
			return nil, nil, false
		}
		return ff.d, ff.err, true
	}
}

// Sort orders the results, e.g. Sort(bson.D{{Key: "age", Value: -1}, {Key:
// "_id", Value: 1}}), and chooses which document a find-and-modify changes
// when several match. spec is a sort document: a bson.D (or bson.Raw) of
// fields, each 1 (ascending), -1 (descending) or {$meta: …}, or a map of
// one field (a map of several has no order). Anything else (a field name
// as a string, say) fails the call with ErrInvalidValue, naming what was
// given. A cached sorted list with a limit is invalidated precisely only
// when its sort ends in _id (docs/caching.md). Default: server order.
func Sort(spec any) Option {
	err := checkSort(spec)
	return opt.BothFunc(func(c *opt.Config) {
		c.Sort = spec
		if err != nil {
			c.Fail(err)
		}
	})
}

// checkSort returns why spec is not a sort document, or nil.
func checkSort(spec any) error {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("query: Sort: %w: %s; want a sort document such as bson.D{{Key: \"age\", Value: -1}}",
			ErrInvalidValue, fmt.Sprintf(why, args...))
	}
	var d bson.D
	switch s := spec.(type) {
	case nil:
		return nil
	case bson.D:
		d = s
	case bson.M:
		if len(s) > 1 {
			return bad("a map of %d fields has no order", len(s))
		}
		for k, v := range s {
			d = bson.D{{Key: k, Value: v}}
		}
	case map[string]any:
		return checkSort(bson.M(s))
	case bson.Raw:
		if err := bson.Unmarshal(s, &d); err != nil {
			return bad("%v", err)
		}
	default:
		return bad("got a %T", spec)
	}
	seen := make(map[string]bool, len(d))
	for _, e := range d {
		if !sortDirection(e.Value) {
			return bad("field %q has %v (%T), not 1, -1 or {$meta: …}", e.Key, e.Value, e.Value)
		}
		if seen[e.Key] {
			return bad("field %q is sorted on twice", e.Key)
		}
		seen[e.Key] = true
	}
	return nil
}

// sortDirection reports whether v is a direction of a sort document: 1,
// -1 (any numeric type) or a {$meta: …} document.
func sortDirection(v any) bool {
	var f float64
	switch n := v.(type) {
	case int:
		f = float64(n)
	case int32:
		f = float64(n)
	case int64:
		f = float64(n)
	case float64:
		f = n
	case bson.D:
		return len(n) == 1 && n[0].Key == "$meta"
	case bson.M:
		_, ok := n["$meta"]
		return ok && len(n) == 1
	case bson.Raw:
		_, err := n.LookupErr("$meta")
		return err == nil
	default:
		return false
	}
	return f == 1 || f == -1
}

// Limit returns at most n documents. Default: no limit.
func Limit(n int64) ReadOption { return opt.ReadFunc(func(c *opt.Config) { c.Limit = n }) }

// Skip skips the first n matching documents. Default: 0.
func Skip(n int64) ReadOption { return opt.ReadFunc(func(c *opt.Config) { c.Skip = n }) }

// Projection selects the fields the server returns (decode into a struct
// that has just those fields), also of a find-and-modify's document.
// Default: whole documents.
func Projection(spec any) Option { return opt.BothFunc(func(c *opt.Config) { c.Projection = spec }) }

// Hint forces an index, by name or key pattern, for reads and for the
// writes that take a filter. Default: the planner's choice.
func Hint(index any) Option { return opt.BothFunc(func(c *opt.Config) { c.Hint = index }) }

// Collation sets the string comparison rules of reads and of the writes
// that take a filter. Default: the collection's.
func Collation(col *options.Collation) Option {
	return opt.BothFunc(func(c *opt.Config) { c.Collation = col })
}

// BatchSize sets how many documents each server batch holds, the first and
// every getMore. Default: the server's first batch (101 documents), then
// 1000 documents per getMore (streaming 10,000 ~1 KB documents from the dev
// server measured 2.02 s at 1000 against 2.57 s at the server's default,
// with less client CPU; see docs/performance.md). With pipelined getMore,
// memory stays bounded by about two batches.
func BatchSize(n int32) ReadOption { return opt.ReadFunc(func(c *opt.Config) { c.BatchSize = n }) }

// CursorOptions passes options to a stream's cursor (package cursor owns
// them): cursor.WithoutPrefetch, cursor.CloseTimeout, cursor.DecodeOptions
// (decode.ZeroCopy() decodes strings without copying them). Default: the
// cursor's defaults.
func CursorOptions(opts ...cursor.Option) ReadOption {
	return opt.ReadFunc(func(c *opt.Config) {
		for _, o := range opts {
			c.Cursor = append(c.Cursor, o)
		}
	})
}

// Cached serves a read from the result cache of its collection (see
// package cache and odm.WithCache) and fills it on a miss; ttl 0 uses the
// cache's DefaultTTL. A handle without a cache fails the read with
// ErrUncacheable rather than silently running it uncached; a cache stores
// only what it loads through a client with cache.Observer. Cached results
// reflect every write made in this process (through databridge, or any
// write on such a client) as soon as that write returns; writes by other
// processes are seen through a coherence source, or after ttl. Default: no
// caching.
//
// A write drops only the cached reads it can change, for the shapes
// docs/caching.md lists; any other read is dropped by every write to its
// collection. In particular, a sorted list with a Limit is kept across
// writes that cannot change it only when its sort ends in _id (a total
// order), e.g. Sort(bson.D{{Key: "age", Value: -1}, {Key: "_id", Value: 1}});
// a Skip, a Hint, a $regex or $where filter always fall back to the
// collection-wide rule.
//
// It applies to FindMany, FindOne, Count, Iter and Aggregate; Cursor,
// AggregateCursor and Distinct refuse it with ErrUncacheable. A cached Iter
// is a cached FindMany: the whole result is loaded (and held by the cache)
// before the first value is yielded, so use it for results that fit in
// memory, not for streams. The read right after a miss stored its entry is
// a hit. Reads in a transaction ignore it.
func Cached(ttl time.Duration) ReadOption {
	return opt.ReadFunc(func(c *opt.Config) { c.Cached, c.TTL = true, ttl })
}

// MinInterval sets the shortest time between two reads of a live query
// (odm's Live, LiveCount, LiveAggregate): writes that come faster are
// coalesced into one read, whose result reflects all of them. Default 0:
// a read as soon as a write may have changed the result (a burst still
// coalesces while a read runs). Other reads ignore it.
func MinInterval(d time.Duration) ReadOption {
	return opt.ReadFunc(func(c *opt.Config) {
		if d < 0 {
			c.Fail(fmt.Errorf("query: MinInterval: %w: %v is negative; want 0 (no minimum) or more", ErrInvalidValue, d))
			return
		}
		c.MinInterval = d
	})
}
