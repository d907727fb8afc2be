package cache_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// BenchmarkWritePathLiveEntries is the cost the invalidation rules add to a
// write: odm's Insert of a new order and UpdateOne by _id ($inc), against
// the dev server, with 0, 1,000 and 10,000 cached reads live on the
// collection (a third each: a tenant's 20 newest paid orders, a tenant's
// count, an order by _id; every tenant's reads are distinct). It reports
// client CPU per write (cpu-ns/op, this process's user+system time):
//
//	go test ./cache -run '^$' -bench BenchmarkWritePathLiveEntries -count 6 | benchstat -col /entries -
//
// The entries are stored through the cache's own Fetch, with loads that
// return the documents the server would (each list's 20 orders, the
// count's document, the order): filling 10,000 from the dev server would
// take minutes, and what a write costs does not depend on where an entry's
// documents came from.
func BenchmarkWritePathLiveEntries(b *testing.B) {
	cl := testdb.NewClient(b, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(b, cl)
	ctx := context.Background()
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "total", Value: 1}}}}
	for _, entries := range []int{0, 1000, 10_000} {
		for _, op := range []string{"insert_one", "update_by_id"} {
			b.Run(fmt.Sprintf("entries=%d/op=%s", entries, op), func(b *testing.B) {
				c, h, target := liveEntries(b, db, fmt.Sprintf("writepath_%d_%s", entries, op), entries)
				next := 1
				runtime.GC() // the fill's garbage is not the writes'
				b.ReportAllocs()
				start := benchdata.CPUTime()
				b.ResetTimer()
				for b.Loop() {
					var err error
					if op == "insert_one" {
						next++
						err = h.Insert(ctx, &Order{ID: next, Tenant: fmt.Sprint("t", next%1000), Status: "open", CreatedAt: next})
					} else {
						_, err = h.UpdateOne(ctx, query.Eq("_id", target.ID), inc)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(benchdata.CPUTime()-start)/float64(b.N), "cpu-ns/op")
				b.StopTimer()
				if got := c.Stats(); got.InvalidatedWide != 0 {
					b.Fatalf("a write dropped every entry: %+v", got)
				}
			})
		}
	}
}

// liveEntries returns a handle of a collection of its own in db, small
// (an update by _id on the dev server scans it), with one order (target,
// _id 1, of tenant t7) and a cache holding n cached reads of it (fill);
// opts are the handle's options besides its cache, which is closed when b
// ends.
func liveEntries(b *testing.B, db *mongo.Database, name string, n int, opts ...odm.Option) (c *cache.Cache, h *odm.Collection[Order], target Order) {
	b.Helper()
	ctx := context.Background()
	coll := db.Collection(name)
	if err := coll.Drop(ctx); err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.Config{MaxCost: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	h, err = odm.New[Order](coll, append([]odm.Option{odm.WithCache(c)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	target = Order{ID: 1, Tenant: "t7", Status: "open"}
	if err := h.Insert(ctx, &target); err != nil {
		b.Fatal(err)
	}
	// One real cached read, so that the collection's shape is known.
	if _, err := h.Count(ctx, query.Eq("tenant", "none"), query.Cached(time.Hour)); err != nil {
		b.Fatal(err)
	}
	fill(b, c, db.Name(), coll.Name(), n)
	return c, h, target
}

// fill stores n cached reads of db.coll in c (see
// BenchmarkWritePathLiveEntries).
func fill(b *testing.B, c *cache.Cache, db, coll string, n int) {
	b.Helper()
	shape := func(context.Context) (cachecore.Shape, error) { return cachecore.Shape{Simple: true}, nil }
	store := func(q cachecore.Key, docs []bson.Raw) {
		q.Database, q.Collection, q.Simple, q.Shape = db, coll, true, shape
		if _, err := cache.Core(c).Fetch(context.Background(), q, time.Hour, cache.Observed(func(context.Context) ([]bson.Raw, error) {
			return docs, nil
		}), nil); err != nil {
			b.Fatal(err)
		}
	}
	order := func(id int, tenant string) bson.Raw {
		raw, err := bson.Marshal(Order{ID: id, Tenant: tenant, Status: "paid", CreatedAt: id})
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	for i := range n {
		tenant := fmt.Sprint("t", i)
		switch i % 3 {
		case 0:
			docs := make([]bson.Raw, 20)
			for k := range docs {
				docs[k] = order(10_000_000+i*20+20-k, tenant)
			}
			store(cachecore.Key{Filter: bson.D{{Key: "tenant", Value: tenant}, {Key: "status", Value: "paid"}},
				Sort: bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}, Limit: 20}, docs)
		case 1:
			doc, err := bson.Marshal(bson.D{{Key: "n", Value: int64(i)}})
			if err != nil {
				b.Fatal(err)
			}
			store(cachecore.Key{Op: "count", Filter: bson.D{{Key: "tenant", Value: tenant}}}, []bson.Raw{doc})
		default:
			store(cachecore.Key{Filter: bson.D{{Key: "_id", Value: 20_000_000 + i}}, Limit: 1}, []bson.Raw{order(20_000_000+i, tenant)})
		}
	}
	cache.Core(c).Wait()
}
