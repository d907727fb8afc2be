package odm

import (
	"bytes"
	"context"
	"iter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// Snapshot is one result of a live query (Live, LiveCount, LiveAggregate).
type Snapshot[V any] struct {
	// Value is the query's result, the caller's to keep.
	Value V
	// Tracked reports whether the cache tracks this result with its
	// invalidation rules: only a write that may change it wakes the
	// query. When false (the result is outside the rules' forms or was
	// not stored: docs/live.md), every write to the collection wakes it,
	// until a later result is tracked.
	Tracked bool
}

// Live is a live query: it yields the result of the find (filter and the
// read options, as FindMany takes them) at once, then again each time a
// write lands that may have changed it — and only when the new result
// differs from the last one yielded. Each yield is the result of a new
// read through the handle's cache, made after the write that woke it
// returned: it never patches a result. Writes of this process (odm,
// and raw driver writes on a client with cache.Observer) and of other
// processes (the cache's Source, package coherence) wake it; which writes
// may change which results is the cache's invalidation rules' decision
// (docs/caching.md), and a result outside their forms is read again after
// every write to its collection (Snapshot.Tracked says which).
//
// Writes that land while a read runs, or while the loop's body runs,
// coalesce into the next read: a slow consumer gets the latest result,
// never a queue. query.MinInterval spaces reads further. The result is
// also read again when its cached entry expires (query.Cached's TTL, if
// given, else the cache's DefaultTTL), which bounds how long a write that
// reaches no cache goes unseen. The query ends when ctx is done or its
// deadline comes (no error is yielded) or the loop breaks; an error of a
// read is yielded once, last. The handle needs a cache (odm.WithCache);
// without one the error is query.ErrUncacheable. query.Cached's TTL, if
// given, is the TTL of the cached reads; it is not required.
//
//	for snap, err := range users.Live(ctx, query.Eq("team", "a"), query.Sort(bson.D{{Key: "_id", Value: 1}})) {
//		if err != nil { … }
//		render(snap.Value)
//	}
//
// See docs/live.md for the guarantees and their bounds.
func (c *Collection[T]) Live(ctx context.Context, filter any, opts ...query.ReadOption) iter.Seq2[Snapshot[[]T], error] {
	return func(yield func(Snapshot[[]T], error) bool) {
		cfg, err := c.liveConfig(opts)
		if err != nil {
			yield(Snapshot[[]T]{}, err)
			return
		}
		k, f, pinned, err := c.findKey(filter, cfg)
		if err != nil {
			yield(Snapshot[[]T]{}, err)
			return
		}
		r, err := cachedReaderFor[T](c.codecs)
		if err != nil {
			yield(Snapshot[[]T]{}, err)
			return
		}
		live(ctx, c.cache, k, cfg, r.memo, func(ctx context.Context) ([]bson.Raw, error) {
			return loadCursor(ctx, func(ctx context.Context) (*mongo.Cursor, error) { return c.openFind(ctx, f, pinned, cfg) })
		}, func(res *cachecore.Result) ([]T, error) { return r.values(res) }, yield)
	}
}

// LiveCount is Live for a count: it yields the number of documents that
// match filter (with Count's options), then the new number each time it
// changes.
func (c *Collection[T]) LiveCount(ctx context.Context, filter any, opts ...query.ReadOption) iter.Seq2[Snapshot[int64], error] {
	return func(yield func(Snapshot[int64], error) bool) {
		cfg, err := c.liveConfig(opts)
		if err != nil {
			yield(Snapshot[int64]{}, err)
			return
		}
		f, err := readFilter(filter)
		if err != nil {
			yield(Snapshot[int64]{}, err)
			return
		}
		k, pinned, err := c.countKey(f, cfg)
		if err != nil {
			yield(Snapshot[int64]{}, err)
			return
		}
		o := countOptions(cfg)
		live(ctx, c.cache, k, cfg, nil, func(ctx context.Context) ([]bson.Raw, error) {
			return c.loadCount(ctx, f, pinned, o)
		}, countOf, yield)
	}
}

// LiveAggregate is Live for an aggregation (as Aggregate takes it): it
// yields its results, then the new results each time they change. A
// pipeline in the forms the invalidation rules read (docs/caching.md:
// a leading $match, or none, then the stages listed there) is tracked
// like a find; any other, and one that reads other collections ($lookup,
// $unionWith), is read again after every write to each collection it
// reads (Snapshot.Tracked is false).
func LiveAggregate[R, T any](ctx context.Context, c *Collection[T], pipeline any, opts ...query.ReadOption) iter.Seq2[Snapshot[[]R], error] {
	return func(yield func(Snapshot[[]R], error) bool) {
		cfg, err := c.liveConfig(opts)
		if err != nil {
			yield(Snapshot[[]R]{}, err)
			return
		}
		k, sent, err := c.aggregateKey(pipeline, cfg)
		if err != nil {
			yield(Snapshot[[]R]{}, err)
			return
		}
		r, err := cachedReaderFor[R](c.codecs)
		if err != nil {
			yield(Snapshot[[]R]{}, err)
			return
		}
		live(ctx, c.cache, k, cfg, r.memo, func(ctx context.Context) ([]bson.Raw, error) {
			return loadCursor(ctx, func(ctx context.Context) (*mongo.Cursor, error) {
				return c.coll.Aggregate(ctx, sent, aggregateOptions(cfg))
			})
		}, func(res *cachecore.Result) ([]R, error) { return r.values(res) }, yield)
	}
}

// liveConfig reads a live query's options.
func (c *Collection[T]) liveConfig(opts []query.ReadOption) (*opt.Config, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if c.cache == nil {
		return nil, errNoCache
	}
	return cfg, nil
}

// values returns the caller's copy of a cached result's values.
func (r *cachedReader[R]) values(res *cachecore.Result) ([]R, error) {
	if len(res.Docs) == 0 {
		return nil, nil
	}
	if r.memo != nil {
		if m, ok := res.Memo(r.memo.Key); ok {
			return append([]R(nil), m.([]R)...), nil
		}
	}
	return r.decodeAll(res.Docs)
}

// live runs a live query of k: read (through the cache, tracked by a
// Watch), yield the value when the result differs from the last one
// yielded, wait until a write may have changed it, and again.
func live[V any](ctx context.Context, rc *cachecore.Cache, k cachecore.Key, cfg *opt.Config, memo *cachecore.Memo,
	load cachecore.LoadFunc, value func(*cachecore.Result) (V, error), yield func(Snapshot[V], error) bool) {
	w := rc.Watch(k)
	defer w.Close()
	var last []bson.Raw
	first := true
	for {
		w.Begin()
		res, h, err := rc.FetchLive(ctx, k, cfg.TTL, load, memo, nil)
		if err != nil {
			if !ended(ctx, err) {
				yield(Snapshot[V]{}, err)
			}
			return
		}
		w.Track(h)
		if first || !sameDocs(last, res.Docs) {
			v, err := value(res)
			if err != nil {
				yield(Snapshot[V]{}, err)
				return
			}
			if !yield(Snapshot[V]{Value: v, Tracked: h.Tracked()}, nil) {
				return
			}
			last, first = res.Docs, false // immutable: the cache's, or this read's own
		}
		read := time.Now()
		// Read again when a write may have changed the result, or when
		// its entry expires (a write that reaches no cache is then seen:
		// the TTL bounds it), whichever comes first.
		expires := h.Expires()
		if expires.IsZero() {
			ttl := cfg.TTL
			if ttl <= 0 {
				ttl = rc.DefaultTTL()
			}
			expires = read.Add(ttl)
		}
		ttl := time.NewTimer(time.Until(expires))
		select {
		case <-ctx.Done():
			ttl.Stop()
			return
		case <-w.C():
		case <-ttl.C:
		}
		ttl.Stop()
		if wait := cfg.MinInterval - time.Since(read); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// ended reports whether a read's error is the live query's end: its
// context is done, or the driver cut the read short at the context's
// deadline (a timeout within a second of it: the server's
// MaxTimeMSExpired, or "operation not sent, as Timeout would be
// exceeded", come just before the context itself is done).
func ended(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && mongo.IsTimeout(err) && time.Until(dl) < time.Second
}

// sameDocs reports whether two results are the same documents, byte for
// byte.
func sameDocs(a, b []bson.Raw) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
