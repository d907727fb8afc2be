package query

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/closecur"
	"github.com/databridge-go/databridge/internal/outcome"
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
	if derr == nil && deps.target != "" {
		h.invalidateTarget(ctx, deps.target, err)
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
	if deps.target != "" {
		return nil, fmt.Errorf("%w: it writes to %s", ErrUncacheable, deps.target)
	}
	k := cache.Key{
		Scope: cache.ScopeOf(h.coll), Op: "aggregate",
		Database: db, Collection: h.coll.Name(), Also: deps.reads,
		Filter: pipeline, Hint: c.hint,
	}
	if c.collation != nil {
		k.Collation = *c.collation
	}
	r, err := cachedReaderFor[T](h.codecsInUse())
	if err != nil {
		return nil, err
	}
	res, err := rc.Fetch(ctx, k, c.cacheTTL, func(ctx context.Context) ([]bson.Raw, error) {
		cur, err := h.coll.Aggregate(ctx, pipeline, c.aggregateOptions())
		if err != nil {
			return nil, fmt.Errorf("query: aggregate on %s: %w", h.coll.Name(), err)
		}
		defer closecur.Close(ctx, cur, cursor.DefaultCloseTimeout)
		var docs []bson.Raw
		for cur.Next(ctx) {
			docs = append(docs, cur.Current)
		}
		return docs, cur.Err()
	}, r.memo)
	if err != nil {
		return nil, err
	}
	if r.memo != nil {
		if m, ok := res.Memo(r.memo.Key); ok {
			return slices.Clone(m.([]T)), nil
		}
	}
	return r.decodeAll(res.Docs)
}

func (c *config) aggregateOptions() *options.AggregateOptionsBuilder {
	o := options.Aggregate()
	if c.hint != nil {
		o.SetHint(c.hint)
	}
	if c.collation != nil {
		o.SetCollation(c.collation)
	}
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
	db, coll := splitNS(target)
	if outcome.Of(err) == outcome.Unknown {
		deadline, _ := ctx.Deadline()
		rc.Unsettled(db, coll, deadline)
		return
	}
	rc.Invalidate(db, coll)
}

func splitNS(ns string) (db, coll string) {
	for i := 0; i < len(ns); i++ {
		if ns[i] == '.' {
			return ns[:i], ns[i+1:]
		}
	}
	return ns, ""
}

// pipelineDeps is what a pipeline reads besides its source collection, and
// the collection it writes ($out, $merge), as "db.coll".
type pipelineDeps struct {
	reads  []string
	target string
}

// dependencies reads the collections a pipeline depends on.
func dependencies(db string, pipeline any) (pipelineDeps, error) {
	t, data, err := bson.MarshalValue(pipeline)
	if err != nil {
		return pipelineDeps{}, err
	}
	if t != bson.TypeArray {
		return pipelineDeps{}, fmt.Errorf("the pipeline is a BSON %s, not an array", t)
	}
	var d pipelineDeps
	seen := map[string]bool{}
	if err := d.walk(db, bson.RawArray(data), seen, 0); err != nil {
		return pipelineDeps{}, err
	}
	slices.Sort(d.reads)
	return d, nil
}

func (d *pipelineDeps) read(ns string, seen map[string]bool) {
	if !seen[ns] {
		seen[ns] = true
		d.reads = append(d.reads, ns)
	}
}

func (d *pipelineDeps) walk(db string, stages bson.RawArray, seen map[string]bool, depth int) error {
	if depth > 20 {
		return errors.New("sub-pipelines nested too deeply")
	}
	vals, err := stages.Values()
	if err != nil {
		return err
	}
	for _, v := range vals {
		stage, ok := v.DocumentOK()
		if !ok {
			return errors.New("a stage is not a document")
		}
		elems, err := stage.Elements()
		if err != nil || len(elems) != 1 {
			return errors.New("a stage is not a one-field document")
		}
		name, arg := elems[0].Key(), elems[0].Value()
		switch name {
		case "$lookup", "$graphLookup":
			spec, ok := arg.DocumentOK()
			if !ok {
				return fmt.Errorf("%s is not a document", name)
			}
			if from, ok := spec.Lookup("from").StringValueOK(); ok {
				d.read(db+"."+from, seen)
			} else if fromDoc, ok := spec.Lookup("from").DocumentOK(); ok {
				fdb, _ := fromDoc.Lookup("db").StringValueOK()
				fcoll, _ := fromDoc.Lookup("coll").StringValueOK()
				if fdb == "" || fcoll == "" {
					return fmt.Errorf("%s from a document without db and coll", name)
				}
				d.read(fdb+"."+fcoll, seen)
			} else if name == "$graphLookup" {
				return errors.New("$graphLookup without from")
			}
			if sub, ok := spec.Lookup("pipeline").ArrayOK(); ok {
				if err := d.walk(db, sub, seen, depth+1); err != nil {
					return err
				}
			}
		case "$unionWith":
			if coll, ok := arg.StringValueOK(); ok {
				d.read(db+"."+coll, seen)
				continue
			}
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$unionWith is neither a name nor a document")
			}
			if coll, ok := spec.Lookup("coll").StringValueOK(); ok {
				d.read(db+"."+coll, seen)
			}
			if sub, ok := spec.Lookup("pipeline").ArrayOK(); ok {
				if err := d.walk(db, sub, seen, depth+1); err != nil {
					return err
				}
			}
		case "$facet":
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$facet is not a document")
			}
			facets, err := spec.Elements()
			if err != nil {
				return err
			}
			for _, f := range facets {
				sub, ok := f.Value().ArrayOK()
				if !ok {
					return errors.New("a $facet is not a pipeline")
				}
				if err := d.walk(db, sub, seen, depth+1); err != nil {
					return err
				}
			}
		case "$out":
			if s, ok := arg.StringValueOK(); ok {
				d.target = db + "." + s
				continue
			}
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$out is neither a name nor a document")
			}
			tdb, _ := spec.Lookup("db").StringValueOK()
			tcoll, _ := spec.Lookup("coll").StringValueOK()
			d.target = tdb + "." + tcoll
		case "$merge":
			if s, ok := arg.StringValueOK(); ok {
				d.target = db + "." + s
				continue
			}
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$merge is neither a name nor a document")
			}
			into := spec.Lookup("into")
			if s, ok := into.StringValueOK(); ok {
				d.target = db + "." + s
			} else if doc, ok := into.DocumentOK(); ok {
				tdb, _ := doc.Lookup("db").StringValueOK()
				tcoll, _ := doc.Lookup("coll").StringValueOK()
				if tdb == "" {
					tdb = db
				}
				d.target = tdb + "." + tcoll
			} else {
				return errors.New("$merge without into")
			}
		}
	}
	return nil
}
