package odm

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/internal/outcome"
	"github.com/databridge-go/databridge/internal/pipeline"
	"github.com/databridge-go/databridge/query"
)

// Aggregations and Distinct are functions, not methods, because their
// results have a type of their own (a $group's output, the values of one
// field) and Go methods take no type parameters: R (or V) is given, T is
// the collection's:
//
//	type TenantTotal struct {
//		Tenant string `bson:"_id"`
//		Total  int64  `bson:"total"`
//	}
//	totals, err := odm.Aggregate[TenantTotal](ctx, orders, pipeline, query.Cached(time.Minute))

// Aggregate runs pipeline (mongo.Pipeline, bson.A, []bson.D, …) on c's
// collection and returns all its results, decoded into values of R (which
// may be T), in a new slice the caller owns. query.BatchSize, Hint,
// Collation and CursorOptions apply. With query.Cached the result is served
// from the cache and depends on every collection the pipeline reads: c's,
// and those named by $lookup, $graphLookup and $unionWith, also inside
// $facet and sub-pipelines; a write to any of them invalidates it. A
// pipeline ending in $out or $merge is a write: it is never cached
// (query.ErrUncacheable), and when it ends its target collection is
// invalidated, as the write observer does for any client that has one.
func Aggregate[R, T any](ctx context.Context, c *Collection[T], pipeline any, opts ...query.ReadOption) ([]R, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if !cfg.Cached || inTransaction(ctx) {
		cur, err := aggregateCursor[R](ctx, c, pipeline, cfg)
		if err != nil {
			return nil, err
		}
		return cur.AppendAll(ctx, nil)
	}
	k, sent, err := c.aggregateKey(pipeline, cfg)
	if err != nil {
		return nil, err
	}
	return fetchAll[R](ctx, c.cache, c.codecs, k, cfg.TTL, func(ctx context.Context) (*mongo.Cursor, error) {
		cur, err := c.coll.Aggregate(ctx, sent, aggregateOptions(cfg))
		if err != nil {
			return nil, fmt.Errorf("odm: aggregate on %s: %w", c.name, err)
		}
		return cur, nil
	})
}

// aggregateKey returns the cache key of a cached aggregation, and the
// pipeline it sends.
func (c *Collection[T]) aggregateKey(pipeline any, cfg *opt.Config) (cachecore.Key, any, error) {
	if c.cache == nil {
		return cachecore.Key{}, nil, errNoCache
	}
	reg, bo := c.codecs.bson()
	sent, pinned := pinPipeline(pipeline, reg, bo) // the bytes the rules read are the bytes sent
	deps, err := dependencies(c.db, sent)
	if err != nil {
		return cachecore.Key{}, nil, fmt.Errorf("%w: %w", query.ErrUncacheable, err)
	}
	if deps.Target != "" {
		return cachecore.Key{}, nil, fmt.Errorf("%w: it writes to %s", query.ErrUncacheable, deps.Target)
	}
	k := cachecore.Key{
		Scope: c.scope, Client: c.coll.Database().Client(), Op: "aggregate", Database: c.db, Collection: c.name, Also: deps.Reads,
		Filter: pipeline, Hint: cfg.Hint, // maps sorted: equal pipelines share an entry
	}
	if pinned {
		k.Sent = func() any { return sent }
	}
	c.describe(&k, cfg)
	return k, sent, nil
}

// AggregateCursor runs pipeline and returns a streaming cursor of its
// results decoded into R, as Cursor does for a find: the next batch is
// fetched while this one is consumed, values may be owned (All, AppendAll)
// or borrowed (Borrowed), and the caller must close the cursor (its
// iterators and collectors do). It is never served from the cache: with
// query.Cached it fails with query.ErrUncacheable (use Aggregate).
func AggregateCursor[R, T any](ctx context.Context, c *Collection[T], pipeline any, opts ...query.ReadOption) (*cursor.Cursor[R], error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if cfg.Cached {
		return nil, fmt.Errorf("%w: AggregateCursor streams from the server (use Aggregate)", query.ErrUncacheable)
	}
	return aggregateCursor[R](ctx, c, pipeline, cfg)
}

func aggregateCursor[R, T any](ctx context.Context, c *Collection[T], pipeline any, cfg *opt.Config) (*cursor.Cursor[R], error) {
	deps, derr := dependencies(c.db, pipeline)
	cur, err := c.coll.Aggregate(ctx, pipeline, aggregateOptions(cfg))
	if derr == nil && deps.Target != "" {
		invalidateTarget(ctx, c.cache, deps.Target, err)
	}
	if err != nil {
		return nil, fmt.Errorf("odm: aggregate on %s: %w", c.name, err)
	}
	if cfg.BatchSize == 0 {
		cur.SetBatchSize(getMoreBatch)
	}
	return cursor.New[R](cur, c.cursorOptions(ctx, cfg)...)
}

func aggregateOptions(cfg *opt.Config) *options.AggregateOptionsBuilder {
	o := options.Aggregate()
	opt.SetHintCollation(o, cfg)
	if cfg.BatchSize != 0 {
		o.SetBatchSize(cfg.BatchSize)
	}
	return o
}

// invalidateTarget invalidates the collection an $out or $merge wrote, in
// every cache of the process (of the domain of c, the writer's cache).
func invalidateTarget(ctx context.Context, c *cachecore.Cache, target string, err error) {
	db, coll, _ := strings.Cut(target, ".")
	ch := cachecore.Change{DB: db, Coll: coll, Drop: true} // $out replaces the collection
	if outcome.Of(err) == outcome.Unknown {
		ch.Unknown = true
		ch.Deadline, _ = ctx.Deadline()
	}
	cachecore.Apply(ch)
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

// valueOf is a one-field document, to decode a single value with decode's
// semantics (and the collection's codecs).
type valueOf[V any] struct {
	V V `bson:"v"`
}

// Distinct returns the distinct values of field among the documents of c
// that match filter, decoded into V as a field of type V would be (with
// the collection's codecs). A field name that could be read as an operator
// is refused with query.ErrInvalidField, as filters refuse it.
// query.Collation applies; the other options are ignored, but query.Cached,
// which fails with query.ErrUncacheable: distinct values are not cached.
//
//	teams, err := odm.Distinct[string](ctx, users, "team", query.Gte("age", 18))
func Distinct[V, T any](ctx context.Context, c *Collection[T], field string, filter any, opts ...query.ReadOption) ([]V, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	if err := opt.CheckField(field); err != nil {
		return nil, fmt.Errorf("odm: distinct: %w", err)
	}
	cfg := readConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if cfg.Cached {
		return nil, fmt.Errorf("%w: Distinct is not cached", query.ErrUncacheable)
	}
	f, err := readFilter(filter)
	if err != nil {
		return nil, err
	}
	o := options.Distinct()
	if cfg.Collation != nil {
		o.SetCollation(cfg.Collation)
	}
	arr, err := c.coll.Distinct(ctx, field, f, o).Raw()
	if err != nil {
		return nil, fmt.Errorf("odm: distinct %s in %s: %w", field, c.name, err)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("odm: distinct %s in %s: %w", field, c.name, err)
	}
	plan, err := decode.Compile[valueOf[V]](c.codecs.decodeOptions()...)
	if err != nil {
		return nil, err
	}
	out := make([]V, len(vals))
	var buf []byte
	for i, v := range vals {
		buf = wrapValue(buf[:0], v)
		var w valueOf[V]
		if err := plan.Decode(buf, &w); err != nil {
			return nil, fmt.Errorf("odm: distinct %s, value %d: %w", field, i, err)
		}
		out[i] = w.V
	}
	return out, nil
}

// wrapValue appends the document {v: value}.
func wrapValue(dst []byte, v bson.RawValue) []byte {
	size := 4 + 1 + 2 + len(v.Value) + 1
	dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
	dst = append(dst, byte(v.Type), 'v', 0)
	dst = append(dst, v.Value...)
	return append(dst, 0)
}
