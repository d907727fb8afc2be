package odm

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// WithCache gives the handle cache c: its reads with query.Cached are
// served from c. Only this handle reads through c (another handle on the
// same collection needs WithCache too); every write of the process
// invalidates c (see New). Default: no cache, and a Cached read fails with
// query.ErrUncacheable.
func WithCache(c *cache.Cache) Option { return collOptionFunc(func(cc *collConfig) { cc.cache = c }) }

// WithBSON declares the registry and BSON options that the collection's
// client, database or collection was created with (SetRegistry,
// SetBSONOptions), which the driver gives no way to read back: reads decode,
// and writes store, exactly as the driver does with them. Default: the
// driver's default registry and no options, as bson.Unmarshal reads.
func WithBSON(reg *bson.Registry, opts *options.BSONOptions) Option {
	return collOptionFunc(func(cc *collConfig) { cc.reg, cc.bsonOpts = reg, opts })
}

// WriteTimeout bounds each driver call of a write whose context has no
// deadline (each batch of InsertMany is one call). The driver sends the
// deadline to the server as maxTimeMS, so even a write whose reply is lost
// ends by then, which is what lets the cache resume after it. A write with
// its own context deadline keeps it. d <= 0 sends no limit: after a lost
// reply such a write's collection then bypasses the cache for the longest
// TTL of its entries (DefaultTTL at least). Default: 1 minute.
func WriteTimeout(d time.Duration) Option {
	return collOptionFunc(func(cc *collConfig) { cc.writeTimeout = d })
}

// The options of one write are query.WriteOptions: the ones below, and
// the options of reads and writes alike (query.Option: Sort, Projection,
// Hint and Collation), which apply to the writes that take a filter
// (Sort chooses which document a find-and-modify changes). A write ignores
// options that do not apply to it; a read option (query.Limit,
// query.Cached, …) given to a write does not compile.

func writeOption(f opt.Func) query.WriteOption { return opt.WriteFunc(f) }

// WithoutValidation skips Validate for this write: the fast path for data
// already known to be valid. Default: validation runs. Skipping it writes
// whatever the struct holds; use it only for trusted, already-checked data.
func WithoutValidation() query.WriteOption {
	return writeOption(func(c *opt.Config) { c.SkipValidation = true })
}

// WithoutHooks skips every hook for this write. Default: hooks run. With
// WithoutValidation too, Save is a single driver call. What a hook would
// have filled in (a default, a timestamp, a slug) stays as the struct
// holds it, zero if unset, and is written so: use it for documents that
// are complete without their hooks.
func WithoutHooks() query.WriteOption { return writeOption(func(c *opt.Config) { c.SkipHooks = true }) }

// Unordered lets InsertMany, BulkSave and BulkWrite continue past a
// rejected document; the returned *BulkError lists every rejected one.
// Default: ordered (stop at the first failure).
func Unordered() query.WriteOption { return writeOption(func(c *opt.Config) { c.Unordered = true }) }

// Upsert makes UpdateOne, UpdateMany, FindOneAndUpdate, FindOneAndReplace
// and BulkWrite's update and replace models insert a document when none
// matches the filter; the result's UpsertedID is then its _id. Default: no
// upsert. Save always upserts by _id.
func Upsert() query.WriteOption { return writeOption(func(c *opt.Config) { c.Upsert = true }) }

// ReturnAfter makes FindOneAndUpdate and FindOneAndReplace return the
// document as it is after the write. Default: as it was before (the
// driver's default too).
func ReturnAfter() query.WriteOption {
	return writeOption(func(c *opt.Config) { c.ReturnAfter = true })
}

// ArrayFilters sets the filters that choose which array elements an
// update's $[identifier] positions change (UpdateOne, UpdateMany,
// FindOneAndUpdate), e.g. ArrayFilters(bson.D{{Key: "e.qty", Value:
// bson.D{{Key: "$lt", Value: 0}}}}). Default: none.
func ArrayFilters(filters ...any) query.WriteOption {
	return writeOption(func(c *opt.Config) { c.ArrayFilters = filters })
}

// Let defines variables ($$name) that the filter and update of UpdateOne,
// UpdateMany, DeleteOne, DeleteMany and FindOneAndUpdate may use. Default:
// none.
func Let(vars any) query.WriteOption { return writeOption(func(c *opt.Config) { c.Let = vars }) }

// InsertBatch makes InsertMany send at most n documents per driver call.
// Each call is acknowledged before the next is sent, so when one fails,
// every document of the earlier calls is known to be written: a smaller n
// narrows what a lost connection leaves unknown, a larger one saves round
// trips. n < 1 means the default, 10,000.
func InsertBatch(n int) query.WriteOption {
	return writeOption(func(c *opt.Config) { c.InsertBatch = n })
}

// defaultInsertBatch is how many documents InsertMany sends per
// acknowledged driver call unless InsertBatch says otherwise.
const defaultInsertBatch = 10_000

// readConfig reads the options of one read.
func readConfig(opts []query.ReadOption) *opt.Config { return opt.Reads(opts) }

// writeConfig reads the options of one write.
func writeConfig(opts []query.WriteOption) *opt.Config {
	c := opt.Writes(opts)
	if c.InsertBatch < 1 {
		c.InsertBatch = defaultInsertBatch
	}
	return c
}
