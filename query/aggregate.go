package query

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/optset"
	"github.com/databridge-go/databridge/internal/outcome"
	"github.com/databridge-go/databridge/internal/pipeline"
)

// ErrUncacheable is returned by an aggregation with the Cached option that
// cannot be cached: one that writes ($out, $merge), or whose pipeline
// could not be read for the collections it depends on.
var ErrUncacheable = errors.New("query: aggregation cannot be cached")

// Aggregate runs pipeline (mongo.Pipeline, bson.A, []bson.D, …) on the
// handle's collection and returns a streaming cursor of its results,
// decoded into T, as Cursor does for a find: the next batch is fetched
// while this one is consumed, values may be owned (All, Collect) or
// borrowed (Borrowed, ForEach), and the caller must close the cursor (its
// iterators and collectors do). BatchSize, MaxTime, Hint, Collation and
// CursorOptions apply; Cached does not (see AggregateAll).
//
// A pipeline ending in $out or $merge is a write: when it ends, its target
// collection is invalidated in the handle's cache (as the write observer
// does for any client that has one).
func (h Handle[T]) Aggregate(ctx context.Context, pipeline any, opts ...Option) (*cursor.Cursor[T], error) {
	if h.coll == nil {
		return nil, ErrNotRegistered
	}
	c := newConfig(opts)
	deps, derr := dependencies(h.coll.Database().Name(), pipeline)
	cur, err := h.coll.Aggregate(ctx, pipeline, c.aggregateOptions())
	if derr == nil && deps.Target != "" {
		h.invalidateTarget(ctx, deps.Target, err)
	}
	if err != nil {
		return nil, fmt.Errorf("query: aggregate on %s: %w", h.coll.Name(), err)
	}
	if c.batchSize == 0 {
		cur.SetBatchSize(DefaultGetMoreBatchSize)
	}
	return cursor.New[T](cur, h.cursorOptions(ctx, c)...)
}

// AggregateAll runs pipeline and returns all its results in a new slice the
// caller owns. With Cached, the result is served from the cache and
// depends on every collection the pipeline reads: the handle's, and those
// named by $lookup, $graphLookup and $unionWith, also inside $facet and
// sub-pipelines; a write to any of them invalidates it. A pipeline ending
// in $out or $merge is a write and is never cached (ErrUncacheable).
func (h Handle[T]) AggregateAll(ctx context.Context, pipeline any, opts ...Option) ([]T, error) {
	if h.coll == nil {
		return nil, ErrNotRegistered
	}
	c := newConfig(opts)
	ctx, cancel := c.withMaxTime(ctx)
	defer cancel()
	if !c.cached || inTransaction(ctx) {
		cur, err := h.Aggregate(ctx, pipeline, opts...)
		if err != nil {
			return nil, err
		}
		return cur.Collect(ctx)
	}
	rc := h.Cache()
	if rc == nil {
		return nil, ErrNoCache
	}
	db := h.coll.Database().Name()
	deps, err := dependencies(db, pipeline)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUncacheable, err)
	}
	if deps.Target != "" {
		return nil, fmt.Errorf("%w: it writes to %s", ErrUncacheable, deps.Target)
	}
	k := cache.Key{
		Scope: cache.ScopeOf(h.coll), Op: "aggregate",
		Database: db, Collection: h.coll.Name(), Also: deps.Reads,
		Filter: pipeline, Hint: c.hint,
	}
	if c.collation != nil {
		k.Collation = *c.collation
	}
	return h.fetchAll(ctx, rc, k, c.cacheTTL, func(ctx context.Context) (*mongo.Cursor, error) {
		cur, err := h.coll.Aggregate(ctx, pipeline, c.aggregateOptions())
		if err != nil {
			return nil, fmt.Errorf("query: aggregate on %s: %w", h.coll.Name(), err)
		}
		return cur, nil
	})
}

func (c *config) aggregateOptions() *options.AggregateOptionsBuilder {
	o := options.Aggregate()
	optset.SetHintCollation(o, c.hint, c.collation)
	if c.batchSize != 0 {
		o.SetBatchSize(c.batchSize)
	}
	return o
}

// invalidateTarget invalidates the collection an $out or $merge wrote.
func (h Handle[T]) invalidateTarget(ctx context.Context, target string, err error) {
	rc := h.Cache()
	if rc == nil {
		return
	}
	db, coll, _ := strings.Cut(target, ".")
	if outcome.Of(err) == outcome.Unknown {
		deadline, _ := ctx.Deadline()
		rc.Unsettled(db, coll, deadline)
		return
	}
	rc.Invalidate(db, coll)
}

// dependencies reads the collections a pipeline depends on and the one it
// writes (see package internal/pipeline).
func dependencies(db string, p any) (pipeline.Deps, error) {
	t, data, err := bson.MarshalValue(p)
	if err != nil {
		return pipeline.Deps{}, err
	}
	if t != bson.TypeArray {
		return pipeline.Deps{}, fmt.Errorf("the pipeline is a BSON %s, not an array", t)
	}
	return pipeline.Of(db, bson.RawArray(data))
}
