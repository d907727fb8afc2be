package coherence

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
)

// ChangeStream is a cache.Source that watches a change stream, so that
// writes by any client (the shell, other services, other drivers) invalidate
// the cache, not only writes through databridge. It needs a replica set or a
// sharded cluster; a standalone server (and the dev server) has no change
// streams. Publish does nothing: the stream sees this process's writes too.
//
// When the stream fails, the cache is flushed and stops caching; the stream
// is resumed from its last resume token (or opened afresh when the token is
// no longer in the oplog) and caching starts again once it is open. On a
// standalone server the stream never opens, so the cache never caches (and
// OnError reports why): use a Log there.
type ChangeStream struct {
	watch     func(ctx context.Context, pipeline any, opts ...options.Lister[options.ChangeStreamOptions]) (*mongo.ChangeStream, error)
	onError   func(error)
	preImages bool
}

// ChangeStreamOption configures a ChangeStream.
type ChangeStreamOption interface{ applyStream(*ChangeStream) }

type streamOptionFunc func(*ChangeStream)

func (f streamOptionFunc) applyStream(c *ChangeStream) { f(c) }

// WatchDatabase limits the stream to one database (default: the whole
// deployment).
func WatchDatabase(db *mongo.Database) ChangeStreamOption {
	return streamOptionFunc(func(c *ChangeStream) { c.watch = db.Watch })
}

// PreImages asks the stream for each update's, replacement's and delete's
// pre-image (fullDocumentBeforeChange: "whenAvailable"; MongoDB 6.0 or
// later, whose server refuses the option otherwise): on a collection with
// changeStreamPreAndPostImages enabled, the event carries the document as
// it was before the write, and the rules judge the write by it, as they
// judge an odm write with pre-images (docs/caching.md). On other
// collections the events carry none, and are judged as without the
// option. The cost is the server's: it stores a pre-image of every
// change of such a collection.
func PreImages() ChangeStreamOption {
	return streamOptionFunc(func(c *ChangeStream) { c.preImages = true })
}

// NewChangeStream returns a ChangeStream on client's deployment.
func NewChangeStream(client *mongo.Client, opts ...ChangeStreamOption) *ChangeStream {
	c := &ChangeStream{watch: client.Watch, onError: func(error) {}}
	for _, o := range opts {
		o.applyStream(c)
	}
	return c
}

// Publish implements cache.Source; it does nothing (the stream reports this
// process's writes as well).
func (c *ChangeStream) Publish(db, coll string) {}

// changeEvents keeps the events that change data or drop namespaces, with
// only the fields the cache needs (and their pre-images with PreImages).
func (c *ChangeStream) changeEvents() mongo.Pipeline {
	if !c.preImages {
		return changeEvents
	}
	p := slices.Clone(changeEvents)
	p[1] = bson.D{{Key: "$project", Value: append(slices.Clone(projected), bson.E{Key: "fullDocumentBeforeChange", Value: 1})}}
	return p
}

var changeEvents = mongo.Pipeline{
	{{Key: "$match", Value: bson.D{{Key: "operationType", Value: bson.D{{Key: "$in", Value: bson.A{
		"insert", "update", "replace", "delete", "drop", "rename", "dropDatabase", "invalidate",
	}}}}}}},
	// The fields the rules read (cachecore.ChangeOfEvent): fullDocument of
	// inserts and replaces (in the event without updateLookup, which the
	// stream does not ask for), documentKey, and an update's
	// updateDescription.
	{{Key: "$project", Value: projected}},
}

var projected = bson.D{{Key: "operationType", Value: 1}, {Key: "ns", Value: 1}, {Key: "to", Value: 1},
	{Key: "documentKey", Value: 1}, {Key: "fullDocument", Value: 1}, {Key: "updateDescription", Value: 1}}

type namespace struct {
	DB   string `bson:"db"`
	Coll string `bson:"coll"`
}

type change struct {
	Op string    `bson:"operationType"`
	NS namespace `bson:"ns"`
	To namespace `bson:"to"` // rename's target
}

// Run implements cache.Source.
func (c *ChangeStream) Run(ctx context.Context, sink cache.Sink) {
	var token bson.Raw
	backoff := newBackoff()
	for ctx.Err() == nil {
		err := c.follow(ctx, sink, &token, backoff.reset)
		if ctx.Err() != nil {
			return
		}
		sink.Lost(err)
		c.onError(fmt.Errorf("coherence: change stream: %w", err))
		backoff.wait(ctx)
	}
}

func (c *ChangeStream) follow(ctx context.Context, sink cache.Sink, token *bson.Raw, opened func()) error {
	streamOpts := func() *options.ChangeStreamOptionsBuilder {
		opts := options.ChangeStream()
		if c.preImages {
			opts.SetFullDocumentBeforeChange(options.WhenAvailable)
		}
		return opts
	}
	pipeline := c.changeEvents()
	opts := streamOpts()
	if *token != nil {
		opts.SetStartAfter(*token)
	}
	cs, err := c.watch(ctx, pipeline, opts)
	if err != nil && *token != nil {
		// The token may have left the oplog: start from now (the cache
		// was flushed when the previous stream failed).
		*token = nil
		cs, err = c.watch(ctx, pipeline, streamOpts())
	}
	if err != nil {
		return err
	}
	defer closeAfter(ctx, cs.Close)
	opened()
	sink.Synced()
	for cs.Next(ctx) {
		*token = cs.ResumeToken()
		if err := applyEvent(sink, cs.Current); err != nil {
			return err
		}
	}
	if err := cs.Err(); err != nil {
		return err
	}
	return errStreamClosed
}

// applyEvent reports one change event to sink: a write to documents with
// what it changed, a drop or rename as its namespaces, and an event of more
// than one collection (dropDatabase, invalidate) as a lost place.
func applyEvent(sink cache.Sink, raw bson.Raw) error {
	var ev change
	if err := bson.Unmarshal(raw, &ev); err != nil {
		return fmt.Errorf("malformed change event: %w", err)
	}
	switch ev.Op {
	case "insert", "update", "replace", "delete":
		sink.ChangeEvent(raw)
	case "drop":
		sink.Invalidate(ev.NS.DB, ev.NS.Coll)
	case "rename":
		sink.Invalidate(ev.NS.DB, ev.NS.Coll)
		sink.Invalidate(ev.To.DB, ev.To.Coll)
	default: // dropDatabase, invalidate: more than one collection
		sink.Lost(fmt.Errorf("%s of %s", ev.Op, ev.NS.DB))
		sink.Synced()
	}
	return nil
}

var errStreamClosed = fmt.Errorf("coherence: the change stream was closed")
