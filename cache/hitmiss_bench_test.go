package cache_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/cachecore"
)

// BenchmarkFetchPath measures the cache's own cost, no server involved: a
// hit of a 100-document result plus its decode (path=hit; path=hit-point,
// the same by _id), and a miss whose load returns at once (path=miss: the
// key, the load's copy into one buffer, the set and its wait).
func BenchmarkFetchPath(b *testing.B) {
	load, plan := hitFixture()
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		filter any
	}{
		{"hit", bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 18}}}}},
		{"hit-point", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{int32(1), int32(2), int32(3)}}}}}},
	} {
		b.Run("path="+tt.name, func(b *testing.B) {
			c, _ := cache.New(cache.Config{})
			defer c.Close()
			q := cachecore.Key{Database: "db", Collection: "users", Filter: tt.filter}
			_, _ = cache.Core(c).Fetch(ctx, q, time.Minute, load, nil)
			cache.Core(c).Wait()
			b.ReportAllocs()
			for b.Loop() {
				res, err := cache.Core(c).Fetch(ctx, q, time.Minute, load, nil)
				if err != nil {
					b.Fatal(err)
				}
				out := make([]benchdata.Small, len(res.Docs))
				for i, d := range res.Docs {
					_ = plan.Decode(d, &out[i])
				}
			}
		})
	}
	b.Run("path=miss", func(b *testing.B) {
		c, _ := cache.New(cache.Config{MaxCost: 1 << 30})
		defer c.Close()
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			q := cachecore.Key{Database: "db", Collection: "users", Filter: bson.D{{Key: "n", Value: strconv.Itoa(i)}}}
			if _, err := cache.Core(c).Fetch(ctx, q, time.Minute, load, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHitParallel is path=hit of BenchmarkFetchPath from every P at
// once: how hits scale with cores (one key, so every goroutine reads the
// same entry and the same collection state).
//
//	go test ./cache -run '^$' -bench BenchmarkHitParallel -cpu 1,2 -count 8
func BenchmarkHitParallel(b *testing.B) {
	load, plan := hitFixture()
	ctx := context.Background()
	c, _ := cache.New(cache.Config{})
	defer c.Close()
	q := cachecore.Key{Database: "db", Collection: "users", Filter: bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 18}}}}}
	_, _ = cache.Core(c).Fetch(ctx, q, time.Minute, load, nil)
	cache.Core(c).Wait()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := cache.Core(c).Fetch(ctx, q, time.Minute, load, nil)
			if err != nil {
				b.Error(err)
				return
			}
			out := make([]benchdata.Small, len(res.Docs))
			for i, d := range res.Docs {
				_ = plan.Decode(d, &out[i])
			}
		}
	})
	if n := c.Stats().Loads; n != 1 {
		b.Fatalf("expected hits only, got %d loads", n)
	}
}

// hitFixture is the hit benchmarks' result: a load of 100 small documents,
// and the zero-copy plan a hit decodes them with.
func hitFixture() (cachecore.LoadFunc, *decode.Plan[benchdata.Small]) {
	docs := make([]bson.Raw, 100)
	for i := range docs {
		docs[i], _ = bson.Marshal(benchdata.NewSmall(i))
	}
	load := cache.Observed(func(context.Context) ([]bson.Raw, error) { return docs, nil })
	return load, decode.MustCompile[benchdata.Small](decode.ZeroCopy())
}
