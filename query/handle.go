package query

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/optset"
)

// Handle runs typed queries against one collection: the explicit form, for
// code that prefers no registration. The zero Handle is not usable; get one
// from From.
type Handle[T any] struct {
	coll      *mongo.Collection
	cache     *cache.Cache
	codecs    *codecs // WithBSON's, when ownCodecs
	ownCodecs bool
}

// WithCache returns a copy of the handle whose cached queries use c instead
// of the process default.
func (h Handle[T]) WithCache(c *cache.Cache) Handle[T] {
	h.cache = c
	return h
}

// Cache returns the cache the handle's cached queries use (and the odm
// package invalidates): its own (WithCache), else the process default
// (UseCache), else nil.
func (h Handle[T]) Cache() *cache.Cache {
	if h.cache != nil {
		return h.cache
	}
	return processCache()
}

// From returns a Handle that reads documents of coll into values of type T.
func From[T any](coll *mongo.Collection) Handle[T] { return Handle[T]{coll: coll} }

// Collection returns the handle's collection.
func (h Handle[T]) Collection() *mongo.Collection { return h.coll }

func normFilter(filter any) (any, error) {
	switch f := filter.(type) {
	case nil:
		return bson.D{}, nil
	case Filter:
		if f.err != nil {
			return nil, f.err
		}
		if f.d == nil {
			return bson.D{}, nil
		}
		return f.d, nil
	}
	return filter, nil
}

// withMaxTime applies MaxTime; the returned cancel must be called.
func (c *config) withMaxTime(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.maxTime > 0 {
		return context.WithTimeout(ctx, c.maxTime)
	}
	return ctx, func() {}
}

// Cursor runs the query and returns a streaming cursor, for full control
// (Next/Decode, Borrowed, AppendAll). The caller must close it.
func (h Handle[T]) Cursor(ctx context.Context, filter any, opts ...Option) (*cursor.Cursor[T], error) {
	return h.cursor(ctx, filter, newConfig(opts))
}

func (h Handle[T]) cursor(ctx context.Context, filter any, c *config) (*cursor.Cursor[T], error) {
	if h.coll == nil {
		return nil, ErrNotRegistered
	}
	f, err := normFilter(filter)
	if err != nil {
		return nil, err
	}
	cur, err := h.coll.Find(ctx, f, c.findOptions())
	if err != nil {
		return nil, fmt.Errorf("query: find in %s: %w", h.coll.Name(), err)
	}
	if c.batchSize == 0 {
		// The first batch keeps the server's default (101 documents), which
		// serves small results in one round trip; later batches are larger.
		cur.SetBatchSize(DefaultGetMoreBatchSize)
	}
	return cursor.New[T](cur, h.cursorOptions(ctx, c)...)
}

// Iter returns a single-use iterator over the matching documents, for
//
//	for u, err := range users.Iter(ctx, filter) { … }
//
// The query runs when the loop starts. Each value is the caller's to keep.
// An error (from the query, a getMore or decoding) is yielded once, last,
// with a zero T; the stream ends with the whole result or with an error,
// never a silent prefix. The server cursor is closed when the loop ends, on
// break too. The one-variable form `for u := range …` drops the error:
// prefer FindMany or check the error.
//
// While you handle one batch the next is already being fetched (cursor
// prefetch, DefaultGetMoreBatchSize documents per getMore), so an early
// break may have fetched up to two batches it does not use. When you will
// read only the first few, say so: Limit, a smaller BatchSize, or
// CursorOptions(cursor.WithoutPrefetch()). With Cached the whole result is
// loaded first (see Cached).
func (h Handle[T]) Iter(ctx context.Context, filter any, opts ...Option) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		c := newConfig(opts)
		ctx, cancel := c.withMaxTime(ctx)
		defer cancel()
		if c.cached && !inTransaction(ctx) {
			vals, err := h.cachedMany(ctx, filter, c)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range vals {
				if !yield(v, nil) {
					return
				}
			}
			return
		}
		cur, err := h.cursor(ctx, filter, c)
		if err != nil {
			var zero T
			yield(zero, err)
			return
		}
		for v, err := range cur.All(ctx) {
			if !yield(v, err) {
				return
			}
		}
	}
}

// FindMany returns all matching documents in a new slice the caller owns.
func (h Handle[T]) FindMany(ctx context.Context, filter any, opts ...Option) ([]T, error) {
	c := newConfig(opts)
	ctx, cancel := c.withMaxTime(ctx)
	defer cancel()
	if c.cached && !inTransaction(ctx) {
		return h.cachedMany(ctx, filter, c)
	}
	return h.findMany(ctx, filter, c)
}

func (h Handle[T]) findMany(ctx context.Context, filter any, c *config) ([]T, error) {
	cur, err := h.cursor(ctx, filter, c)
	if err != nil {
		return nil, err
	}
	var dst []T
	if c.limit > 0 && c.limit <= 1024 {
		dst = make([]T, 0, c.limit)
	}
	return cur.AppendAll(ctx, dst)
}

// FindOne returns the first matching document (in Sort order, if given), or
// ErrNotFound.
func (h Handle[T]) FindOne(ctx context.Context, filter any, opts ...Option) (T, error) {
	var v T
	if h.coll == nil {
		return v, ErrNotRegistered
	}
	c := newConfig(opts)
	ctx, cancel := c.withMaxTime(ctx)
	defer cancel()
	if c.cached && !inTransaction(ctx) {
		c.limit = 1
		vals, err := h.cachedMany(ctx, filter, c)
		if err != nil {
			return v, err
		}
		if len(vals) == 0 {
			return v, ErrNotFound
		}
		return vals[0], nil
	}
	f, err := normFilter(filter)
	if err != nil {
		return v, err
	}
	o := options.FindOne()
	optset.SetShape(o, c.sort, c.projection, c.hint, c.collation)
	if c.skip != 0 {
		o.SetSkip(c.skip)
	}
	raw, err := h.coll.FindOne(ctx, f, o).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("query: find one in %s: %w", h.coll.Name(), err)
	}
	if err := decode.Unmarshal(raw, &v, h.codecsInUse().decodeOptions()...); err != nil {
		return v, err
	}
	return v, nil
}

// Count returns the number of matching documents (honouring Skip, Limit,
// Hint and Collation).
func (h Handle[T]) Count(ctx context.Context, filter any, opts ...Option) (int64, error) {
	if h.coll == nil {
		return 0, ErrNotRegistered
	}
	c := newConfig(opts)
	ctx, cancel := c.withMaxTime(ctx)
	defer cancel()
	f, err := normFilter(filter)
	if err != nil {
		return 0, err
	}
	o := options.Count()
	if c.skip != 0 {
		o.SetSkip(c.skip)
	}
	if c.limit != 0 {
		o.SetLimit(c.limit)
	}
	optset.SetHintCollation(o, c.hint, c.collation)
	if c.cached && !inTransaction(ctx) {
		return h.cachedCount(ctx, f, c, o)
	}
	n, err := h.coll.CountDocuments(ctx, f, o)
	if err != nil {
		return 0, fmt.Errorf("query: count in %s: %w", h.coll.Name(), err)
	}
	return n, nil
}

// cachedCount serves a Count from the cache: its result is one document
// {n: count}, under a key of its own (Op "count").
func (h Handle[T]) cachedCount(ctx context.Context, f any, c *config, o *options.CountOptionsBuilder) (int64, error) {
	rc := h.Cache()
	if rc == nil {
		return 0, ErrNoCache
	}
	k := cache.Key{
		Scope: cache.ScopeOf(h.coll), Op: "count",
		Database: h.coll.Database().Name(), Collection: h.coll.Name(),
		Filter: f, Skip: c.skip, Limit: c.limit, Hint: c.hint,
	}
	if c.collation != nil {
		k.Collation = *c.collation
	}
	res, err := rc.Fetch(ctx, k, c.cacheTTL, func(ctx context.Context) ([]bson.Raw, error) {
		n, err := h.coll.CountDocuments(ctx, f, o)
		if err != nil {
			return nil, fmt.Errorf("query: count in %s: %w", h.coll.Name(), err)
		}
		doc, err := bson.Marshal(bson.D{{Key: "n", Value: n}})
		return []bson.Raw{doc}, err
	}, nil)
	if err != nil {
		return 0, err
	}
	n, ok := res.Docs[0].Lookup("n").AsInt64OK()
	if !ok {
		return 0, errors.New("query: malformed cached count")
	}
	return n, nil
}

// inTransaction reports whether ctx carries a session with a transaction
// running. Such reads never read, fill or share a load with the cache: they
// must see the transaction's snapshot and its own writes, and their results
// may never be committed.
func inTransaction(ctx context.Context) bool {
	s := mongo.SessionFromContext(ctx)
	return s != nil && s.TransactionRunning()
}

// cursorOptions are the options of the handle's cursors: the query's, the
// codecs in use, and no prefetch with an explicit session.
func (h Handle[T]) cursorOptions(ctx context.Context, c *config) []cursor.Option {
	copts := c.cursorOpts
	if cc := h.codecsInUse(); cc != nil {
		copts = slices.Concat(copts, []cursor.Option{cursor.DecodeOptions(cc.dec...)})
	}
	if mongo.SessionFromContext(ctx) != nil {
		// A getMore on the caller's session must not run while the
		// caller uses it: mongo.Session is not safe for concurrent use.
		copts = slices.Concat(copts, []cursor.Option{cursor.WithoutPrefetch()})
	}
	return copts
}
