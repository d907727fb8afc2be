package odm

import (
	"context"
	"iter"
	"reflect"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/outcome"
	"github.com/databridge-go/databridge/query"
)

// Collection writes (and reads) model values of type T in one MongoDB
// collection. It is safe for concurrent use.
type Collection[T any] struct {
	coll         *mongo.Collection
	cache        *cache.Cache
	id           idField
	h            query.Handle[T]
	writeTimeout time.Duration
}

// Iter streams the documents matching filter: see query.Handle.Iter.
func (c *Collection[T]) Iter(ctx context.Context, filter any, opts ...query.Option) iter.Seq2[T, error] {
	return c.h.Iter(ctx, filter, opts...)
}

// FindMany returns the documents matching filter: see query.Handle.FindMany.
func (c *Collection[T]) FindMany(ctx context.Context, filter any, opts ...query.Option) ([]T, error) {
	return c.h.FindMany(ctx, filter, opts...)
}

// FindOne returns the first document matching filter, or ErrNotFound: see
// query.Handle.FindOne.
func (c *Collection[T]) FindOne(ctx context.Context, filter any, opts ...query.Option) (T, error) {
	return c.h.FindOne(ctx, filter, opts...)
}

// Cursor runs a query and returns a streaming cursor: see
// query.Handle.Cursor.
func (c *Collection[T]) Cursor(ctx context.Context, filter any, opts ...query.Option) (*cursor.Cursor[T], error) {
	return c.h.Cursor(ctx, filter, opts...)
}

// Aggregate runs pipeline and returns a streaming cursor of its results:
// see query.Handle.Aggregate.
func (c *Collection[T]) Aggregate(ctx context.Context, pipeline any, opts ...query.Option) (*cursor.Cursor[T], error) {
	return c.h.Aggregate(ctx, pipeline, opts...)
}

// AggregateAll runs pipeline and returns all its results, cacheable: see
// query.Handle.AggregateAll.
func (c *Collection[T]) AggregateAll(ctx context.Context, pipeline any, opts ...query.Option) ([]T, error) {
	return c.h.AggregateAll(ctx, pipeline, opts...)
}

// EstimatedCount returns the collection's count from its metadata: see
// query.Handle.EstimatedCount.
func (c *Collection[T]) EstimatedCount(ctx context.Context, opts ...query.Option) (int64, error) {
	return c.h.EstimatedCount(ctx, opts...)
}

// Handle returns the query handle the collection reads with: the same
// collection, cache and codecs.
func (c *Collection[T]) Handle() query.Handle[T] { return c.h }

// Count counts the documents matching filter: see query.Handle.Count.
func (c *Collection[T]) Count(ctx context.Context, filter any, opts ...query.Option) (int64, error) {
	return c.h.Count(ctx, filter, opts...)
}

// New returns the Collection of T in coll. T must be a struct with an _id
// field (a field whose bson key is "_id").
func New[T any](coll *mongo.Collection, opts ...Option) (*Collection[T], error) {
	cfg := collConfig{writeTimeout: DefaultWriteTimeout}
	for _, o := range opts {
		o.applyColl(&cfg)
	}
	id, err := idFieldOf(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	h := query.From[T](coll)
	if cfg.cache != nil {
		h = h.WithCache(cfg.cache)
	}
	if cfg.bson {
		h = h.WithBSON(cfg.reg, cfg.bsonOpts)
	}
	return &Collection[T]{coll: coll, cache: cfg.cache, id: id, h: h, writeTimeout: cfg.writeTimeout}, nil
}

// Collection returns the driver collection.
func (c *Collection[T]) Collection() *mongo.Collection { return c.coll }

// invalidate runs after every driver write call, successful or not: the
// server may have applied part of it. When the outcome is unknown (sent,
// no reply), the write may still be running until its deadline, the
// maxTimeMS the driver sent from wctx: the cache treats the collection as
// unsettled until then (see cache.Cache.Unsettled).
//
// w says what the write may have changed: documents of known ids (a write
// by _id, an insert), those a filter matches, or anything.
func (c *Collection[T]) invalidate(wctx context.Context, err error, w changed) {
	rc := c.h.Cache()
	if rc == nil {
		return
	}
	db, coll := c.coll.Database().Name(), c.coll.Name()
	switch {
	case outcome.Of(err) == outcome.Unknown:
		deadline, _ := wctx.Deadline()
		rc.Unsettled(db, coll, deadline)
	case w.ids != nil:
		rc.InvalidateIDs(db, coll, w.ids...)
	case w.filter != nil:
		rc.InvalidateMatching(db, coll, w.filter)
	default:
		rc.Invalidate(db, coll)
	}
}

// changed is what a write may have changed (see invalidate); the zero
// value is anything in the collection.
type changed struct {
	ids    []any
	filter any
}

func byID(ids ...any) changed { return changed{ids: ids} }
func byFilter(f any) changed  { return changed{filter: f} }

var anything = changed{}

// encodesNatively reports whether the compiled encoder stores what the
// driver would with the registry and BSON options declared for the
// collection's client (query.UseClientOptions) or handle; where not, the
// values go to the driver, which encodes them with the client's settings.
func (c *Collection[T]) encodesNatively() bool {
	reg, opts := c.h.BSON()
	return encode.Native(reflect.TypeFor[T](), reg, opts)
}

// bounded returns the context of one driver write call: ctx, or, when ctx
// has no deadline, ctx bounded by the collection's WriteTimeout. The
// driver sends the deadline as maxTimeMS, so the server stops the write by
// then: that is what bounds the cache's wait after a write whose reply was
// lost.
func (c *Collection[T]) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.writeTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.writeTimeout)
}
