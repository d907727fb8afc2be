package odm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/closecur"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// key returns the cache key of a read of the collection.
func (c *Collection[T]) key(op string, filter any, cfg *opt.Config) cachecore.Key {
	k := cachecore.Key{
		Scope: c.scope, Client: c.coll.Database().Client(), Op: op, Database: c.db, Collection: c.name,
		Filter: filter, Sort: cfg.Sort, Projection: cfg.Projection, Hint: cfg.Hint, Skip: cfg.Skip, Limit: cfg.Limit,
	}
	c.describe(&k, cfg)
	return k
}

// describe sets what the invalidation rules need to read a cached query:
// how to encode its parts, whether it compares strings simply, and how to
// ask what the collection is.
func (c *Collection[T]) describe(k *cachecore.Key, cfg *opt.Config) {
	if cfg.Collation != nil {
		k.Collation = *cfg.Collation
	}
	k.Simple = !nonSimple(cfg)
	k.Encode, k.Shape = c.encodeFn, c.shapeFn
}

// errNoCache is the error of a Cached read through a handle without a
// cache.
var errNoCache = fmt.Errorf("%w: the collection handle has no cache (give it one with odm.WithCache)", query.ErrUncacheable)

// cachedMany serves a find from the cache. The raw result is shared with
// the cache and never written, so it is decoded with zero-copy strings
// (immutable, hence safe to keep) into values the caller owns.
func (c *Collection[T]) cachedMany(ctx context.Context, filter any, cfg *opt.Config) ([]T, error) {
	k, f, pinned, err := c.findKey(filter, cfg)
	if err != nil {
		return nil, err
	}
	// A literal here (not returned by findKey): it stays on the stack.
	return fetchAll[T](ctx, c.cache, c.codecs, k, cfg.TTL, func(ctx context.Context) (*mongo.Cursor, error) {
		return c.openFind(ctx, f, pinned, cfg)
	})
}

// findKey returns the cache key of a find, and the filter it sends, pinned
// (see pinLater).
func (c *Collection[T]) findKey(filter any, cfg *opt.Config) (k cachecore.Key, f any, pinned func() any, err error) {
	if c.cache == nil {
		return cachecore.Key{}, nil, nil, errNoCache
	}
	if f, err = readFilter(filter); err != nil {
		return cachecore.Key{}, nil, nil, err
	}
	reg, bo := c.codecs.bson()
	k = c.key("", f, cfg) // maps sorted: equal filters share an entry
	pinned = pinLater(f, reg, bo)
	k.Sent = pinned // the bytes the rules read are the bytes sent
	return k, f, pinned, nil
}

// openFind sends a cached find's query.
func (c *Collection[T]) openFind(ctx context.Context, f any, pinned func() any, cfg *opt.Config) (*mongo.Cursor, error) {
	cur, err := c.coll.Find(ctx, sending(f, pinned), findOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("odm: find in %s: %w", c.name, err)
	}
	return cur, nil
}

// cachedCount serves a Count from the cache: its result is one document
// {n: count}, under a key of its own (Op "count").
func (c *Collection[T]) cachedCount(ctx context.Context, f any, cfg *opt.Config, o *options.CountOptionsBuilder) (int64, error) {
	k, pinned, err := c.countKey(f, cfg)
	if err != nil {
		return 0, err
	}
	tr, ctx, t := traceRead(ctx, c.cache, &k)
	if tr != nil {
		defer func() { t.ReadEnd(ctx, tr) }()
	}
	res, err := c.cache.FetchTraced(ctx, k, cfg.TTL, func(ctx context.Context) ([]bson.Raw, error) {
		return c.loadCount(ctx, f, pinned, o)
	}, nil, tr)
	if err != nil {
		return 0, tr.Fail(err)
	}
	n, err := countOf(res)
	return n, tr.Fail(err)
}

// countKey returns the cache key of a count, and its filter pinned (see
// pinLater).
func (c *Collection[T]) countKey(f any, cfg *opt.Config) (cachecore.Key, func() any, error) {
	if c.cache == nil {
		return cachecore.Key{}, nil, errNoCache
	}
	reg, bo := c.codecs.bson()
	k := c.key("count", f, cfg) // maps sorted: equal filters share an entry
	k.Sort, k.Projection = nil, nil
	pinned := pinLater(f, reg, bo)
	k.Sent = pinned // the bytes the rules read are the bytes sent
	return k, pinned, nil
}

// loadCount is a cached count's load: one document {n: count}.
func (c *Collection[T]) loadCount(ctx context.Context, f any, pinned func() any, o *options.CountOptionsBuilder) ([]bson.Raw, error) {
	n, err := c.coll.CountDocuments(ctx, sending(f, pinned), o)
	if err != nil {
		return nil, fmt.Errorf("odm: count in %s: %w", c.name, err)
	}
	doc, err := bson.Marshal(bson.D{{Key: "n", Value: n}})
	return []bson.Raw{doc}, err
}

// countOf reads a cached count's result.
func countOf(res *cachecore.Result) (int64, error) {
	if len(res.Docs) == 1 {
		if n, ok := res.Docs[0].Lookup("n").AsInt64OK(); ok {
			return n, nil
		}
	}
	return 0, errors.New("odm: malformed cached count")
}

// readTrace is a traced cached read (nil when the cache has no tracer).
type readTrace = cachecore.ReadTrace

// traceRead begins tracing a cached read of k when rc has a tracer, and
// returns its record, the context to run it in, and the tracer, whose
// ReadEnd ends it; a nil record otherwise (and ctx as it is). Only a nil
// check when there is no tracer: the hit path allocates nothing more.
func traceRead(ctx context.Context, rc *cachecore.Cache, k *cachecore.Key) (*readTrace, context.Context, cachecore.Tracer) {
	t := rc.Tracer()
	if t == nil {
		return nil, ctx, nil
	}
	op := k.Op
	if op == "" {
		op = "find"
	}
	tr := &readTrace{DB: k.Database, Coll: k.Collection, Op: op}
	return tr, t.ReadStart(ctx, tr), t
}

// fetchAll serves key from rc, loading it on a miss from the cursor open
// returns (a find's or an aggregation's), and returns values of R the
// caller owns: a copy of the memoized values for flat types, else a decode
// of the immutable raw result.
func fetchAll[R any](ctx context.Context, rc *cachecore.Cache, cc *codecs, k cachecore.Key, ttl time.Duration, open func(context.Context) (*mongo.Cursor, error)) ([]R, error) {
	r, err := cachedReaderFor[R](cc)
	if err != nil {
		return nil, err
	}
	tr, ctx, t := traceRead(ctx, rc, &k)
	if tr != nil {
		defer func() { t.ReadEnd(ctx, tr) }()
	}
	res, err := rc.FetchTraced(ctx, k, ttl, func(ctx context.Context) ([]bson.Raw, error) { return loadCursor(ctx, open) }, r.memo, tr)
	if err != nil {
		return nil, tr.Fail(err)
	}
	if len(res.Docs) == 0 {
		return nil, nil // as an uncached read returns no documents
	}
	if tr != nil {
		start := time.Now()
		defer func() { tr.Decode = time.Since(start) }() // runs before end: defers run last in, first out
	}
	if r.memo != nil {
		if m, ok := res.Memo(r.memo.Key); ok {
			return slices.Clone(m.([]R)), nil
		}
	}
	vals, err := r.decodeAll(res.Docs)
	return vals, tr.Fail(err)
}

// loadCursor is the load of a cached find or aggregation: all the
// documents of the cursor open returns. (Called from a function literal
// at each use: a closure returned from here would be allocated on every
// read, hits included.)
func loadCursor(ctx context.Context, open func(context.Context) (*mongo.Cursor, error)) ([]bson.Raw, error) {
	cur, err := open(ctx)
	if err != nil {
		return nil, err
	}
	// Bounded like cursor.Cursor's close: a cancelled load still frees
	// the server cursor.
	defer closecur.Close(ctx, cur, cursor.DefaultCloseTimeout)
	var docs []bson.Raw
	for cur.Next(ctx) {
		docs = append(docs, cur.Current)
	}
	return docs, cur.Err()
}

// cachedReader turns cached raw results into values of R; one per type,
// built on first use, so a cache hit does no per-call setup.
type cachedReader[R any] struct {
	plan *decode.Plan[R]
	memo *cachecore.Memo // nil unless R is flat
}

var cachedReaders sync.Map // readerKey → *cachedReader[R]

// readerKey identifies what a cached reader decodes: a type, read with
// some codecs (nil: the defaults).
type readerKey struct {
	t  reflect.Type
	cc *codecs
}

func cachedReaderFor[R any](cc *codecs) (*cachedReader[R], error) {
	t := reflect.TypeFor[R]()
	key := readerKey{t, cc}
	if r, ok := cachedReaders.Load(key); ok {
		return r.(*cachedReader[R]), nil
	}
	// The raw result is shared with the cache and never written, so it is
	// decoded with zero-copy strings (immutable, hence safe to keep).
	plan, err := decode.Compile[R](slices.Concat(cc.decodeOptions(), []decode.Option{decode.ZeroCopy()})...)
	if err != nil {
		return nil, err
	}
	r := &cachedReader[R]{plan: plan}
	// Values of a type that holds no slices, maps or pointers share only
	// immutable strings (pointing into the cache's immutable buffer), so a
	// decoded copy is memoized with the entry and a hit is a plain copy
	// (measured: 3 µs against 11 µs for a decode of 100 small documents,
	// docs/caching.md). Other types are decoded from the raw result on
	// every hit, so callers never share mutable memory with the cache.
	if isFlat(t) {
		r.memo = &cachecore.Memo{Key: key, Build: func(docs []bson.Raw) (any, int64, error) {
			vals, err := r.decodeAll(docs)
			return vals, int64(len(vals)) * int64(t.Size()), err
		}}
	}
	v, _ := cachedReaders.LoadOrStore(key, r)
	return v.(*cachedReader[R]), nil
}

func (r *cachedReader[R]) decodeAll(docs []bson.Raw) ([]R, error) {
	out := make([]R, len(docs))
	var arena decode.Arena
	for i, d := range docs {
		if err := r.plan.DecodeWith(d, &out[i], &arena); err != nil {
			return nil, &cursor.DocumentError{Index: i, ID: d.Lookup("_id"), Err: err}
		}
	}
	return out, nil
}

// isFlat reports whether values of t hold no references other than strings
// (which are immutable), so that copying a value shares nothing mutable.
func isFlat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return false
	case reflect.Struct:
		for i := range t.NumField() {
			if !isFlat(t.Field(i).Type) {
				return false
			}
		}
	case reflect.Array:
		return isFlat(t.Elem())
	}
	return true
}
