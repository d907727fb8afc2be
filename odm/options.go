package odm

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/query"
)

// WriteOption configures one write.
type WriteOption interface{ apply(*writeConfig) }

type writeConfig struct {
	skipValidation, skipHooks, unordered, upsert, returnAfter bool
	shape                                                     query.Shape
	batchSize                                                 int
	arrayFilters                                              []any
	let                                                       any
}

type writeOptionFunc func(*writeConfig)

func (f writeOptionFunc) apply(c *writeConfig) { f(c) }

// WithoutValidation skips Validate for this write: the fast path for data
// already known to be valid. Default: validation runs. Skipping it writes
// whatever the struct holds; use it only for trusted, already-checked data.
func WithoutValidation() WriteOption {
	return writeOptionFunc(func(c *writeConfig) { c.skipValidation = true })
}

// WithoutHooks skips every hook for this write. Default: hooks run. With
// WithoutValidation too, Save is a single driver call.
func WithoutHooks() WriteOption { return writeOptionFunc(func(c *writeConfig) { c.skipHooks = true }) }

// Unordered lets InsertMany and BulkSave continue past a rejected document;
// the returned *BulkError lists every rejected one. Default: ordered (stop at
// the first failure).
func Unordered() WriteOption { return writeOptionFunc(func(c *writeConfig) { c.unordered = true }) }

// Upsert makes UpdateOne and UpdateMany insert a document when none
// matches the filter; UpdateResult.UpsertedID is then its _id. Default: no
// upsert. Other writes ignore it (Save always upserts by _id).
func Upsert() WriteOption { return writeOptionFunc(func(c *writeConfig) { c.upsert = true }) }

// ReturnAfter makes FindOneAndUpdate and FindOneAndReplace return the
// document as it is after the write. Default: as it was before (the
// driver's default too).
func ReturnAfter() WriteOption { return writeOptionFunc(func(c *writeConfig) { c.returnAfter = true }) }

// ReadWith passes query options to a write that takes them (package query
// owns them; the others are ignored here): query.Sort (which document a
// find-and-modify picks when several match), query.Projection (which of
// its fields come back), query.Hint and query.Collation (also for
// UpdateOne, UpdateMany, DeleteOne and DeleteMany).
func ReadWith(opts ...query.Option) WriteOption {
	return writeOptionFunc(func(c *writeConfig) { c.shape = query.ShapeOf(opts...) })
}

// ArrayFilters sets the filters that choose which array elements an
// update's $[identifier] positions change (UpdateOne, UpdateMany,
// FindOneAndUpdate), e.g. ArrayFilters(bson.D{{Key: "e.qty", Value:
// bson.D{{Key: "$lt", Value: 0}}}}). Default: none.
func ArrayFilters(filters ...any) WriteOption {
	return writeOptionFunc(func(c *writeConfig) { c.arrayFilters = filters })
}

// Let defines variables ($$name) that the filter and update of UpdateOne,
// UpdateMany, DeleteOne, DeleteMany and FindOneAndUpdate may use. Default:
// none.
func Let(vars any) WriteOption { return writeOptionFunc(func(c *writeConfig) { c.let = vars }) }

// DefaultInsertBatch is how many documents InsertMany sends per
// acknowledged driver call unless InsertBatch says otherwise.
const DefaultInsertBatch = 10_000

// InsertBatch makes InsertMany send at most n documents per driver call
// (default DefaultInsertBatch). Each call is acknowledged before the next is
// sent, so when one fails, every document of the earlier calls is known to
// be written: a smaller n narrows what a lost connection leaves unknown, a
// larger one saves round trips. n < 1 means the default.
func InsertBatch(n int) WriteOption {
	return writeOptionFunc(func(c *writeConfig) { c.batchSize = n })
}

func newWriteConfig(opts []WriteOption) writeConfig {
	c := writeConfig{batchSize: DefaultInsertBatch}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.batchSize < 1 {
		c.batchSize = DefaultInsertBatch
	}
	return c
}

// Option configures a Collection.
type Option interface{ applyColl(*collConfig) }

type collConfig struct {
	cache        *cache.Cache
	writeTimeout time.Duration
	bson         bool
	reg          *bson.Registry
	bsonOpts     *options.BSONOptions
}

type collOptionFunc func(*collConfig)

func (f collOptionFunc) applyColl(c *collConfig) { f(c) }

// WithCache makes the collection invalidate (and its reads use) c instead of
// the process default set by query.UseCache.
func WithCache(c *cache.Cache) Option { return collOptionFunc(func(cc *collConfig) { cc.cache = c }) }

// WithBSON declares the registry and BSON options of a database or
// collection created with its own SetRegistry or SetBSONOptions (see
// query.Handle.WithBSON); a client's are declared once with
// query.UseClientOptions. Reads decode, and writes store, as the driver
// does with them.
func WithBSON(reg *bson.Registry, opts *options.BSONOptions) Option {
	return collOptionFunc(func(cc *collConfig) { cc.bson, cc.reg, cc.bsonOpts = true, reg, opts })
}

// DefaultWriteTimeout is the WriteTimeout default.
const DefaultWriteTimeout = time.Minute

// WriteTimeout bounds each driver call of a write whose context has no
// deadline (each batch of InsertMany is one call). The driver sends the
// deadline to the server as maxTimeMS, so even a write whose reply is lost
// ends by then, which is what lets the cache resume after it (see
// cache.Cache.Unsettled). A write with its own context deadline keeps it.
// d <= 0 sends no limit: after a lost reply such a write's collection is
// then not cached for the cache's DefaultTTL. Default: DefaultWriteTimeout.
func WriteTimeout(d time.Duration) Option {
	return collOptionFunc(func(cc *collConfig) { cc.writeTimeout = d })
}
