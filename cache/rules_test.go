package cache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Order is the document of the invalidation rule tests.
type Order struct {
	ID        int      `bson:"_id"`
	Tenant    string   `bson:"tenant"`
	Status    string   `bson:"status"`
	CreatedAt int      `bson:"createdAt"`
	Total     int      `bson:"total"`
	Addr      *Addr    `bson:"addr,omitempty"`
	Tags      []string `bson:"tags,omitempty"`
}

// Addr is a nested document.
type Addr struct {
	City string `bson:"city,omitempty"`
	Zip  string `bson:"zip,omitempty"`
}

var seedOrders = []Order{
	{ID: 1, Tenant: "a", Status: "paid", CreatedAt: 10, Total: 5, Addr: &Addr{City: "x", Zip: "1"}, Tags: []string{"t1"}},
	{ID: 2, Tenant: "a", Status: "paid", CreatedAt: 20, Total: 7, Addr: &Addr{City: "y"}},
	{ID: 3, Tenant: "a", Status: "open", CreatedAt: 30},
	{ID: 4, Tenant: "b", Status: "paid", CreatedAt: 40},
	{ID: 5, Tenant: "b", Status: "open", CreatedAt: 50},
	{ID: 6, Tenant: "a", Status: "paid", CreatedAt: 60},
}

// ruleEnv is one collection seeded with seedOrders, a cache, and two ways
// to write: through odm (h) and raw through the driver, seen by the
// observer (raw).
type ruleEnv struct {
	c   *cache.Cache
	h   *odm.Collection[Order]
	raw *mongo.Collection
}

// A cached read of the rule tests: run cached, and run uncached for the
// truth it is compared with.
type ruleRead struct {
	name string
	run  func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error)
}

func set(kv ...any) bson.D {
	d := bson.D{}
	for i := 0; i < len(kv); i += 2 {
		d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return bson.D{{Key: "$set", Value: d}}
}

func id(v int) bson.D { return bson.D{{Key: "_id", Value: v}} }

func opts(cached bool, o ...query.ReadOption) []query.ReadOption {
	if cached {
		o = append(o, query.Cached(time.Hour))
	}
	return o
}

var (
	newestPaid = ruleRead{"the 2 newest paid orders of tenant a", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindMany(ctx, query.And(query.Eq("tenant", "a"), query.Eq("status", "paid")),
			opts(cached, query.Sort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}), query.Limit(2))...)
	}}
	allPaid = ruleRead{"every paid order of tenant a", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindMany(ctx, query.And(query.Eq("tenant", "a"), query.Eq("status", "paid")),
			opts(cached, query.Sort(bson.D{{Key: "_id", Value: 1}}))...)
	}}
	countA = ruleRead{"the count of tenant a", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.Count(ctx, query.Eq("tenant", "a"), opts(cached)...)
	}}
	inCityX = ruleRead{"the orders of city x", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindMany(ctx, query.Eq("addr.city", "x"), opts(cached)...)
	}}
	byID3       = byIDRead(3)
	statusesOfA = ruleRead{"tenant a's orders per status (aggregation)", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		type row struct {
			Status string `bson:"_id"`
			N      int    `bson:"n"`
		}
		return odm.Aggregate[row](ctx, h, bson.A{
			bson.D{{Key: "$match", Value: bson.D{{Key: "tenant", Value: "a"}}}},
			bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$status"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
			bson.D{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
		}, opts(cached)...)
	}}
	tenantsOfB = ruleRead{"tenant b's orders, projected to tenant", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindMany(ctx, query.Eq("tenant", "b"), opts(cached, query.Projection(bson.D{{Key: "tenant", Value: 1}}), query.Sort(bson.D{{Key: "_id", Value: 1}}))...)
	}}
	paidByRegex = ruleRead{"status by $regex (outside the rules)", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindMany(ctx, query.Regex("status", "^pa", ""), opts(cached, query.Sort(bson.D{{Key: "_id", Value: 1}}))...)
	}}
	oneOfB = ruleRead{"one order of tenant b, limit without sort (outside the rules)", func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindMany(ctx, query.Eq("tenant", "b"), opts(cached, query.Limit(1))...)
	}}
)

func byIDRead(id int) ruleRead {
	return ruleRead{fmt.Sprint("order ", id), func(ctx context.Context, h *odm.Collection[Order], cached bool) (any, error) {
		return h.FindOne(ctx, query.Eq("_id", id), opts(cached)...)
	}}
}

// A write of the rule tests, and what the rules must do with the read's
// entry: keep it (the next read is a hit) or drop it by the named rule.
type ruleCase struct {
	read  ruleRead
	write string
	do    func(ctx context.Context, e ruleEnv) error
	keep  bool
	rule  string // with !keep: "id", "match", "path" or "wide"
	// prime, when set, is the _id of an order read (cached, by _id) before
	// the write, so that a cached read holds it whole: the rules then read
	// the fields the write does not touch.
	prime int
}

func odmInsert(o Order) func(context.Context, ruleEnv) error {
	return func(ctx context.Context, e ruleEnv) error { return e.h.Insert(ctx, &o) }
}

func rawInsert(o Order) func(context.Context, ruleEnv) error {
	return func(ctx context.Context, e ruleEnv) error { _, err := e.raw.InsertOne(ctx, o); return err }
}

func odmUpdate(filter, update bson.D, o ...query.WriteOption) func(context.Context, ruleEnv) error {
	return func(ctx context.Context, e ruleEnv) error {
		_, err := e.h.UpdateMany(ctx, filter, update, o...)
		return err
	}
}

func rawUpdate(filter, update bson.D) func(context.Context, ruleEnv) error {
	return func(ctx context.Context, e ruleEnv) error {
		_, err := e.raw.UpdateMany(ctx, filter, update)
		return err
	}
}

func odmDelete(filter bson.D) func(context.Context, ruleEnv) error {
	return func(ctx context.Context, e ruleEnv) error { _, err := e.h.DeleteMany(ctx, filter); return err }
}

func rawDelete(filter bson.D) func(context.Context, ruleEnv) error {
	return func(ctx context.Context, e ruleEnv) error { _, err := e.raw.DeleteMany(ctx, filter); return err }
}

var ruleCases = []ruleCase{
	// Inserts: the document against the filter, and a full sorted limited
	// result against its last document.
	{newestPaid, "insert of a paid order of a that sorts after the last", odmInsert(Order{ID: 7, Tenant: "a", Status: "paid", CreatedAt: 5}), true, "", 0},
	{newestPaid, "insert of a paid order of a that sorts first", odmInsert(Order{ID: 7, Tenant: "a", Status: "paid", CreatedAt: 70}), false, "match", 0},
	{allPaid, "insert of an order of b (raw)", rawInsert(Order{ID: 7, Tenant: "b", Status: "paid"}), true, "", 0},
	{allPaid, "insert of a paid order of a (raw)", rawInsert(Order{ID: 7, Tenant: "a", Status: "paid", CreatedAt: 5}), false, "match", 0},
	// Writes by _id.
	{newestPaid, "update by _id of an order not in it, of a path it does not read", odmUpdate(id(3), set("total", 9)), true, "", 0},
	{newestPaid, "update by _id of an order in it", odmUpdate(id(2), set("total", 9)), false, "id", 0},
	{newestPaid, "update by _id (raw) of an order in it", rawUpdate(id(6), set("total", 9)), false, "id", 0},
	{newestPaid, "update by _id that makes an order enter", odmUpdate(id(3), set("status", "paid")), false, "path", 0},
	{newestPaid, "update by _id of a path it reads, to a value it excludes", odmUpdate(id(3), set("status", "void")), true, "", 0},
	{newestPaid, "delete by _id of an order not in it", odmDelete(id(5)), true, "", 0},
	{newestPaid, "delete by _id (raw) of an order in it", rawDelete(id(6)), false, "id", 0},
	{byID3, "update by _id of another order", odmUpdate(id(4), set("total", 1)), true, "", 0},
	{byID3, "update by _id of the order", rawUpdate(id(3), set("total", 1)), false, "id", 0},
	{byID3, "insert of another order", odmInsert(Order{ID: 7, Tenant: "a"}), true, "", 0},
	// Writes by another filter: the stored documents against it.
	{newestPaid, "update by a filter no stored order matches, of a path it does not read", odmUpdate(bson.D{{Key: "tenant", Value: "b"}}, set("total", 1)), true, "", 0},
	{newestPaid, "update by a filter no stored order matches (raw)", rawUpdate(bson.D{{Key: "tenant", Value: "b"}}, set("total", 1)), true, "", 0},
	{newestPaid, "update by a filter stored orders match", odmUpdate(bson.D{{Key: "status", Value: "paid"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "total", Value: 1}}}}), false, "match", 0},
	{allPaid, "delete by a filter a stored order matches (raw)", rawDelete(bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: 15}}}}), false, "match", 0},
	{allPaid, "delete by a filter no stored order matches", odmDelete(bson.D{{Key: "createdAt", Value: bson.D{{Key: "$gt", Value: 100}}}}), true, "", 0},
	{tenantsOfB, "update by a filter on a path the projection dropped", odmUpdate(bson.D{{Key: "status", Value: "open"}}, set("total", 3)), false, "match", 0},
	{tenantsOfB, "update by a filter on a kept path no stored order matches", odmUpdate(bson.D{{Key: "tenant", Value: "a"}}, set("total", 3)), true, "", 0},
	// Nested paths.
	{inCityX, "update of a sibling path of the one it reads", odmUpdate(id(2), set("addr.zip", "9")), true, "", 0},
	{inCityX, "update of the path it reads", odmUpdate(id(2), set("addr.city", "x")), false, "path", 0},
	{inCityX, "update of the parent to a document that does not match", odmUpdate(id(2), set("addr", bson.D{{Key: "city", Value: "z"}})), true, "", 0},
	{inCityX, "update of the parent to a document that matches", odmUpdate(id(2), set("addr", bson.D{{Key: "city", Value: "x"}})), false, "path", 0},
	// Upserts: an update plus a possible insert.
	{newestPaid, "upsert that inserts a matching order", odmUpdate(id(9), set("tenant", "a", "status", "paid", "createdAt", 90), odm.Upsert()), false, "path", 0},
	{allPaid, "upsert that inserts an order of b", odmUpdate(bson.D{{Key: "_id", Value: 9}, {Key: "tenant", Value: "b"}}, set("total", 1), odm.Upsert()), true, "", 0},
	// Counts.
	{countA, "insert of an order of b", odmInsert(Order{ID: 7, Tenant: "b"}), true, "", 0},
	{countA, "insert of an order of a (raw)", rawInsert(Order{ID: 7, Tenant: "a"}), false, "match", 0},
	{countA, "delete of an order", odmDelete(id(5)), false, "wide", 0},
	// Decided before the reply (the write may run at any moment once sent):
	// a delete that turns out to delete nothing has invalidated counts.
	{countA, "delete that deletes nothing", odmDelete(id(99)), false, "wide", 0},
	{countA, "update of a path it does not read", odmUpdate(id(1), set("total", 1)), true, "", 0},
	{countA, "update of the path it reads (raw)", rawUpdate(id(4), set("tenant", "a")), false, "path", 0},
	// Aggregations whose first stage is $match.
	{statusesOfA, "insert of an order of b", odmInsert(Order{ID: 7, Tenant: "b", Status: "paid"}), true, "", 0},
	{statusesOfA, "insert of an order of a", odmInsert(Order{ID: 7, Tenant: "a", Status: "paid"}), false, "match", 0},
	{statusesOfA, "update of a path no stage reads", odmUpdate(id(4), set("total", 1)), true, "", 0},
	{statusesOfA, "update of a path a later stage reads", odmUpdate(id(1), set("status", "open")), false, "path", 0},
	{statusesOfA, "delete of an order", rawDelete(id(5)), false, "wide", 0},
	// With the document held whole by a cached read, the fields a write by
	// _id does not touch are known.
	{read: newestPaid, write: "update by _id making an order of b paid, the order cached", do: odmUpdate(id(5), set("status", "paid")), keep: true, rule: "", prime: 5},
	{read: newestPaid, write: "update by _id making an order of a paid, the order cached", do: odmUpdate(id(3), set("status", "paid")), keep: false, rule: "path", prime: 3},
	{read: countA, write: "delete by _id of an order of b, the order cached", do: odmDelete(id(5)), keep: true, rule: "", prime: 5},
	{read: countA, write: "delete by _id of an order of a, the order cached", do: rawDelete(id(3)), keep: false, rule: "match", prime: 3},
	{read: statusesOfA, write: "update by _id of the status of an order of b, the order cached", do: rawUpdate(id(4), set("status", "open")), keep: true, rule: "", prime: 4},
	{read: statusesOfA, write: "update by _id of the status of an order of a, the order cached", do: odmUpdate(id(3), set("status", "paid")), keep: false, rule: "path", prime: 3},
	// Reads outside the rules: any write.
	{paidByRegex, "insert of an unrelated order", odmInsert(Order{ID: 7, Tenant: "z", Status: "none"}), false, "wide", 0},
	{oneOfB, "insert of an unrelated order", odmInsert(Order{ID: 7, Tenant: "z", Status: "none"}), false, "wide", 0},
}

// TestInvalidationRules: for every rule of the invalidation (docs/caching.md),
// a write it must let the entry survive and one that must drop it, through
// odm and raw through the observer; the counter of the rule moves; and
// every read, hit or miss, equals the same read uncached. On df68764 (every
// write dropped every cached read of its collection but those by _id) the
// 16 "keep" cases on other reads fail.
func TestInvalidationRules(t *testing.T) {
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	for i, tc := range ruleCases {
		t.Run(fmt.Sprintf("%s/%s", tc.read.name, tc.write), func(t *testing.T) {
			coll := db.Collection(fmt.Sprintf("rules%d", i))
			docs := make([]any, len(seedOrders))
			for k, o := range seedOrders {
				docs[k] = o
			}
			_, err := coll.InsertMany(ctx, docs)
			require.NoError(t, err)
			c := newCache(t, cache.Config{})
			e := ruleEnv{c: c, h: handle[Order](t, coll, odm.WithCache(c)), raw: coll}

			if tc.prime != 0 {
				_, err := byIDRead(tc.prime).run(ctx, e.h, true)
				require.NoError(t, err)
			}
			hits := c.Stats().Hits
			first, err := tc.read.run(ctx, e.h, true)
			require.NoError(t, err)
			again, err := tc.read.run(ctx, e.h, true)
			require.NoError(t, err)
			require.Equal(t, first, again)
			require.EqualValues(t, hits+1, c.Stats().Hits, "the read is cached")

			before := c.Stats()
			require.NoError(t, tc.do(ctx, e))
			after := c.Stats()

			got, err := tc.read.run(ctx, e.h, true)
			require.NoError(t, err)
			truth, err := tc.read.run(ctx, e.h, false)
			require.NoError(t, err)
			assert.Equal(t, truth, got, "the read after the write is the server's")
			hit := c.Stats().Hits > after.Hits
			if tc.keep {
				assert.True(t, hit, "the write cannot change the result: the entry must survive")
				primed := uint64(0)
				if tc.prime != 0 {
					primed = 1 // the read by _id of the document written
				}
				assert.Equal(t, before.InvalidatedByID+primed, after.InvalidatedByID, "no invalidation counted but the primed read's")
				assert.Equal(t, before.InvalidatedByMatch+before.InvalidatedByPath+before.InvalidatedWide,
					after.InvalidatedByMatch+after.InvalidatedByPath+after.InvalidatedWide, "no invalidation counted")
				return
			}
			assert.False(t, hit, "the write may change the result: the entry must go")
			moved := map[string]uint64{
				"id":    after.InvalidatedByID - before.InvalidatedByID,
				"match": after.InvalidatedByMatch - before.InvalidatedByMatch,
				"path":  after.InvalidatedByPath - before.InvalidatedByPath,
				"wide":  after.InvalidatedWide - before.InvalidatedWide,
			}
			assert.EqualValues(t, 1, moved[tc.rule], "invalidated by the %s rule: %v", tc.rule, moved)
		})
	}
}

// TestCollectionWideOnly: the fallback switch makes every write drop every
// entry of its collection, the baseline of the precision benchmark.
func TestCollectionWideOnly(t *testing.T) {
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	coll := testdb.DBOn(t, cl).Collection("wideonly")
	ctx := context.Background()
	docs := make([]any, len(seedOrders))
	for k, o := range seedOrders {
		docs[k] = o
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)
	c := newCache(t, cache.Config{CollectionWideOnly: true})
	h := handle[Order](t, coll, odm.WithCache(c))
	for _, r := range []ruleRead{newestPaid, countA, byID3} {
		_, err := r.run(ctx, h, true)
		require.NoError(t, err)
	}
	require.NoError(t, h.Insert(ctx, &Order{ID: 7, Tenant: "z"})) // matches none of them
	for _, r := range []ruleRead{newestPaid, countA, byID3} {
		before := c.Stats().Hits
		_, err := r.run(ctx, h, true)
		require.NoError(t, err)
		assert.Equal(t, before, c.Stats().Hits, "%s: every write drops every entry", r.name)
	}
	assert.EqualValues(t, 3, c.Stats().InvalidatedWide)
}

// TestViewReadsFollowTheirCollection: a cached read of a view is
// invalidated by writes to the collection under it (writes name the
// collection, never the view). Before this change a view's cached reads
// survived every write to its collection.
func TestViewReadsFollowTheirCollection(t *testing.T) {
	testdb.NotRunOnFerretDB(t, "no views")
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	base := db.Collection("orders")
	_, err := base.InsertOne(ctx, seedOrders[0])
	require.NoError(t, err)
	require.NoError(t, db.CreateView(ctx, "paid", "orders", bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "status", Value: "paid"}}}}}))
	require.NoError(t, db.CreateView(ctx, "paidA", "paid", bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "tenant", Value: "a"}}}}}))
	c := newCache(t, cache.Config{})
	orders := handle[Order](t, base, odm.WithCache(c))
	for _, name := range []string{"paid", "paidA"} {
		view := handle[Order](t, db.Collection(name), odm.WithCache(c))
		before, err := view.Count(ctx, query.Eq("tenant", "a"), query.Cached(time.Hour))
		require.NoError(t, err)
		o := Order{ID: 100 + len(name), Tenant: "a", Status: "paid"}
		require.NoError(t, orders.Insert(ctx, &o))
		after, err := view.Count(ctx, query.Eq("tenant", "a"), query.Cached(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, before+1, after, "%s: a write to the collection under the view", name)
	}
}

// TestDefaultCollationKeepsStringsUndecided: on a collection whose default
// collation is case-insensitive, {status: "paid"} matches "PAID": the rules
// must not decide string comparisons there (they learn the collation from
// listCollections).
func TestDefaultCollationKeepsStringsUndecided(t *testing.T) {
	testdb.NotRunOnFerretDB(t, "no collations")
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	require.NoError(t, db.CreateCollection(ctx, "ci", options.CreateCollection().SetCollation(&options.Collation{Locale: "en", Strength: 2})))
	c := newCache(t, cache.Config{})
	h := handle[Order](t, db.Collection("ci"), odm.WithCache(c))
	require.NoError(t, h.Insert(ctx, &Order{ID: 1, Status: "paid"}))
	n, err := h.Count(ctx, query.Eq("status", "paid"), query.Cached(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.NoError(t, h.Insert(ctx, &Order{ID: 2, Status: "PAID"}))
	n, err = h.Count(ctx, query.Eq("status", "paid"), query.Cached(time.Hour))
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "\"PAID\" equals \"paid\" under the collection's collation")
}
