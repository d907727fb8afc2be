package odm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// getMoreBatch is the batch size of getMore when no BatchSize option is
// given (see query.BatchSize for the measurement behind it).
const getMoreBatch = 1000

// readFilter returns the filter a read sends: nil (or a zero query.Filter)
// reads every document; an invalid query.Filter is its construction error.
func readFilter(filter any) (any, error) {
	if filter == nil {
		return bson.D{}, nil
	}
	if d, err, ok := opt.FilterD(filter); ok {
		if err != nil {
			return nil, err
		}
		if d == nil {
			return bson.D{}, nil
		}
		return d, nil
	}
	return filter, nil
}

// Cursor runs the query and returns a streaming cursor, for full control:
// Next and Decode, borrowed values (cursor.Cursor.Borrowed), AppendAll. The
// caller must close it (its iterators and collectors close it themselves).
// A cursor is never served from the cache: with query.Cached it fails with
// query.ErrUncacheable (use FindMany or Iter).
func (c *Collection[T]) Cursor(ctx context.Context, filter any, opts ...query.ReadOption) (*cursor.Cursor[T], error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if cfg.Cached {
		return nil, fmt.Errorf("%w: Cursor streams from the server (use FindMany or Iter)", query.ErrUncacheable)
	}
	return c.cursor(ctx, filter, cfg)
}

func (c *Collection[T]) cursor(ctx context.Context, filter any, cfg *opt.Config) (*cursor.Cursor[T], error) {
	f, err := readFilter(filter)
	if err != nil {
		return nil, err
	}
	cur, err := c.coll.Find(ctx, f, findOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("odm: find in %s: %w", c.name, err)
	}
	if cfg.BatchSize == 0 {
		// The first batch keeps the server's default (101 documents), which
		// serves small results in one round trip; later batches are larger.
		cur.SetBatchSize(getMoreBatch)
	}
	return cursor.New[T](cur, c.cursorOptions(ctx, cfg)...)
}

func findOptions(cfg *opt.Config) *options.FindOptionsBuilder {
	f := options.Find()
	opt.SetShape(f, cfg)
	if cfg.Limit != 0 {
		f.SetLimit(cfg.Limit)
	}
	if cfg.Skip != 0 {
		f.SetSkip(cfg.Skip)
	}
	if cfg.BatchSize != 0 {
		f.SetBatchSize(cfg.BatchSize)
	}
	return f
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
// prefetch, 1000 documents per getMore), so an early break may have fetched
// up to two batches it does not use. When you will read only the first
// few, say so: query.Limit, a smaller query.BatchSize, or
// query.CursorOptions(cursor.WithoutPrefetch()). With query.Cached the
// whole result is loaded first.
func (c *Collection[T]) Iter(ctx context.Context, filter any, opts ...query.ReadOption) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		if err := c.usable(); err != nil {
			var zero T
			yield(zero, err)
			return
		}
		cfg := readConfig(opts)
		if cfg.Err != nil {
			var zero T
			yield(zero, cfg.Err)
			return
		}
		if cfg.Cached && !inTransaction(ctx) {
			vals, err := c.cachedMany(ctx, filter, cfg)
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
		cur, err := c.cursor(ctx, filter, cfg)
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

// FindMany returns all matching documents in a new slice the caller owns,
// or the first error (nothing partial). With query.Cached, repeats are
// served from the cache until a write invalidates them.
func (c *Collection[T]) FindMany(ctx context.Context, filter any, opts ...query.ReadOption) ([]T, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if cfg.Cached && !inTransaction(ctx) {
		return c.cachedMany(ctx, filter, cfg)
	}
	cur, err := c.cursor(ctx, filter, cfg)
	if err != nil {
		return nil, err
	}
	var dst []T
	if cfg.Limit > 0 && cfg.Limit <= 1024 {
		dst = make([]T, 0, cfg.Limit)
	}
	return cur.AppendAll(ctx, dst)
}

// FindOne returns the first matching document (in query.Sort order, if
// given), or query.ErrNotFound.
func (c *Collection[T]) FindOne(ctx context.Context, filter any, opts ...query.ReadOption) (T, error) {
	var v T
	if err := c.usable(); err != nil {
		return v, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		var zero T
		return zero, cfg.Err
	}
	if cfg.Cached && !inTransaction(ctx) {
		cfg.Limit = 1
		vals, err := c.cachedMany(ctx, filter, cfg)
		if err != nil {
			return v, err
		}
		if len(vals) == 0 {
			return v, fmt.Errorf("odm: find one in %s: %w", c.name, query.ErrNotFound)
		}
		return vals[0], nil
	}
	f, err := readFilter(filter)
	if err != nil {
		return v, err
	}
	o := options.FindOne()
	opt.SetShape(o, cfg)
	if cfg.Skip != 0 {
		o.SetSkip(cfg.Skip)
	}
	raw, err := c.coll.FindOne(ctx, f, o).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return v, fmt.Errorf("odm: find one in %s: %w", c.name, query.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("odm: find one in %s: %w", c.name, err)
	}
	if err := decode.Unmarshal(raw, &v, c.codecs.decodeOptions()...); err != nil {
		return v, err
	}
	return v, nil
}

// Count returns the number of matching documents (honouring query.Skip,
// Limit, Hint, Collation and Cached).
func (c *Collection[T]) Count(ctx context.Context, filter any, opts ...query.ReadOption) (int64, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return 0, cfg.Err
	}
	f, err := readFilter(filter)
	if err != nil {
		return 0, err
	}
	o := countOptions(cfg)
	if cfg.Cached && !inTransaction(ctx) {
		return c.cachedCount(ctx, f, cfg, o)
	}
	n, err := c.coll.CountDocuments(ctx, f, o)
	if err != nil {
		return 0, fmt.Errorf("odm: count in %s: %w", c.name, err)
	}
	return n, nil
}

func countOptions(cfg *opt.Config) *options.CountOptionsBuilder {
	o := options.Count()
	if cfg.Skip != 0 {
		o.SetSkip(cfg.Skip)
	}
	if cfg.Limit != 0 {
		o.SetLimit(cfg.Limit)
	}
	opt.SetHintCollation(o, cfg)
	return o
}

// EstimatedCount returns the collection's document count from its metadata
// (no filter, no scan): fast, and possibly off after an unclean shutdown or
// in a sharded cluster with orphaned documents.
func (c *Collection[T]) EstimatedCount(ctx context.Context) (int64, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	n, err := c.coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("odm: estimated count of %s: %w", c.name, err)
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

// cursorOptions are the options of the handle's cursors: the call's, the
// codecs in use, and no prefetch with an explicit session.
func (c *Collection[T]) cursorOptions(ctx context.Context, cfg *opt.Config) []cursor.Option {
	var copts []cursor.Option
	for _, o := range cfg.Cursor {
		copts = append(copts, o.(cursor.Option))
	}
	if c.codecs != nil {
		copts = slices.Concat(copts, []cursor.Option{cursor.DecodeOptions(c.codecs.dec...)})
	}
	if mongo.SessionFromContext(ctx) != nil {
		// A getMore on the caller's session must not run while the
		// caller uses it: mongo.Session is not safe for concurrent use.
		copts = slices.Concat(copts, []cursor.Option{cursor.WithoutPrefetch()})
	}
	return copts
}
