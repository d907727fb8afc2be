package odm

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/encode"
)

// Collection is the typed handle of one MongoDB collection: every read,
// write and aggregation of documents of type T, with the collection's
// cache and codecs, comes from it. It is safe for concurrent use; make one
// per collection at start-up and share it.
type Collection[T any] struct {
	coll           *mongo.Collection
	db, name       string
	cache          *cachecore.Cache // nil: no cache
	scope          uint64           // the cache scope of coll (see cachecore.Cache.ScopeOf)
	writers        []*mongo.Client  // coll's client, as each write reports it (cachecore.Change.Writers)
	codecs         *codecs          // nil: the driver's defaults
	docMaps        bool             // a T can hold a Go map (see stable.go)
	id             idField
	idErr          error // why T cannot be written whole (no _id field), or nil
	writeTimeout   time.Duration
	preImages      bool        // WithPreImages
	preImagesOff   atomic.Bool // a server refused them (see withPreImage)
	preImagesWhole atomic.Bool // a server refused their projection
	// For the cache's invalidation rules: made once, not per read.
	encodeFn func(any) (bson.Raw, error)
	shapeFn  func(context.Context) (cachecore.Shape, error)
}

// New returns the handle of coll for documents of type T. It fails when T
// cannot be decoded as the driver would (a bson key used twice, say), or
// when coll is nil (ErrNilCollection). Writes of
// whole documents (Save, Insert, Replace, Delete, InsertMany, BulkSave,
// FindOneAndReplace, BulkWrite's insert and replace models) need T to be a
// struct with an _id field (a field whose bson key is "_id", at the top
// level or in a struct inlined with bson:",inline", found as the driver
// finds it), and fail without one; reads, aggregations and the writes by
// filter do not.
//
// The handle reads through the cache WithCache gives it, or none: a
// handle made without WithCache reads from the server every time, even
// when another handle caches the same collection. Writes through any
// handle, with a cache or without, reach every cache of the process (the
// invalidation bus: docs/caching.md), so a handle without a cache never
// leaves another handle's cached reads out of date. Handles with one cache
// on one *mongo.Collection value share entries (see query.Cached).
func New[T any](coll *mongo.Collection, opts ...Option) (*Collection[T], error) {
	if coll == nil {
		return nil, ErrNilCollection
	}
	cfg := collConfig{writeTimeout: time.Minute}
	for _, o := range opts {
		if o != nil {
			o.applyColl(&cfg)
		}
	}
	t := reflect.TypeFor[T]()
	id, idErr := idFieldOf(t)
	c := &Collection[T]{coll: coll, db: coll.Database().Name(), name: coll.Name(), id: id, idErr: idErr,
		codecs: newCodecs(cfg.reg, cfg.bsonOpts), writeTimeout: cfg.writeTimeout, preImages: cfg.preImages,
		writers: []*mongo.Client{coll.Database().Client()}}
	if _, err := decode.Compile[T](c.codecs.decodeOptions()...); err != nil {
		return nil, fmt.Errorf("odm: %v cannot be read: %w", t, err)
	}
	encode.For(t) // compiled now rather than at the first write
	c.docMaps = typeMayHoldMap(t, map[reflect.Type]bool{})
	c.encodeFn, c.shapeFn = c.encoded, c.shape
	if cfg.cache != nil {
		c.cache = cachecore.Unwrap(cfg.cache)
		c.scope = c.cache.ScopeOf(coll)
	}
	return c, nil
}

// usable returns ErrNilCollection for a handle New did not make: a nil
// *Collection or a zero Collection. Every exported method and function
// that takes a handle checks it first.
func (c *Collection[T]) usable() error {
	if c == nil || c.coll == nil {
		return ErrNilCollection
	}
	return nil
}

// Option configures a Collection (New). Per-call options are
// query.ReadOption and query.WriteOption.
type Option interface{ applyColl(*collConfig) }

type collConfig struct {
	preImages    bool
	cache        *cache.Cache
	writeTimeout time.Duration
	reg          *bson.Registry
	bsonOpts     *options.BSONOptions
}

type collOptionFunc func(*collConfig)

func (f collOptionFunc) applyColl(c *collConfig) { f(c) }
