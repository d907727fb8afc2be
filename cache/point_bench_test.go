package cache_test

import (
	"context"
	"math/rand"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// BenchmarkPointReads is the point-read workload: 10,000 documents, reads
// by _id drawn Zipf (s = 1.1), 10% of operations Saves of random documents,
// 4 goroutines; rule=collection-wide is every write dropping every cached
// read of the collection (Config.CollectionWideOnly), rule=precise keeps point
// reads of other ids. It reports the hit ratio and the client CPU per
// operation:
//
//	go test ./cache -run '^$' -bench BenchmarkPointReads -count 6 | benchstat -col /rule -
func BenchmarkPointReads(b *testing.B) {
	const docs = 10_000
	ctx := context.Background()
	coll := testdb.DB(b).Collection("points")
	all := make([]benchdata.Small, docs)
	for i := range all {
		all[i] = benchdata.NewSmall(i)
	}
	seed, err := odm.New[benchdata.Small](coll)
	if err != nil {
		b.Fatal(err)
	}
	if err := seed.InsertMany(ctx, all, odm.WithoutHooks(), odm.WithoutValidation()); err != nil {
		b.Fatal(err)
	}
	for _, rule := range []string{"collection-wide", "precise"} {
		b.Run("rule="+rule, func(b *testing.B) {
			c, err := cache.New(cache.Config{CollectionWideOnly: rule == "collection-wide", MaxCost: 256 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			users, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			next := 0
			b.SetParallelism(2) // 4 goroutines on 2 cores
			start := benchdata.CPUTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				next++
				r := rand.New(rand.NewSource(int64(next)))
				mu.Unlock()
				zipf := rand.NewZipf(r, 1.1, 1, docs-1)
				for pb.Next() {
					if r.Intn(10) == 0 {
						d := all[r.Intn(docs)]
						d.Age++
						if err := users.Save(ctx, &d, odm.WithoutHooks(), odm.WithoutValidation()); err != nil {
							b.Error(err)
							return
						}
						continue
					}
					id := all[zipf.Uint64()].ID
					if _, err := users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, query.Cached(time.Minute)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(benchdata.CPUTime()-start)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(c.Stats().HitRatio(), "hit-ratio")
		})
	}
}
