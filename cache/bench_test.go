package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/cachecore"
)

// BenchmarkHit measures what a cache hit of find_many(100) small costs for
// each way of holding values, to choose one by the numbers:
//
//   - raw-zerocopy: raw BSON, decoded per hit with strings pointing into the
//     immutable cached buffer (what the cache does);
//   - raw-copy: raw BSON, decoded per hit with copied strings;
//   - msgpack: msgpack bytes, unmarshaled per hit;
//   - shallow-copy: a decoded []T copied per hit: the floor of "immutable
//     decoded copy", correct only for types whose fields hold no slices, maps
//     or pointers (others need a deep copy, which costs about a decode).
//
// lib=fetch is the whole hit path of Cache.Fetch (key, lookup) plus the
// raw-zerocopy decode.
func BenchmarkHit(b *testing.B) {
	docs := make([]bson.Raw, 100)
	values := make([]benchdata.Small, 100)
	for i := range docs {
		values[i] = benchdata.NewSmall(i)
		docs[i], _ = bson.Marshal(values[i])
	}
	packed, _ := msgpack.Marshal(values)

	b.Run("lib=raw-zerocopy", func(b *testing.B) {
		plan := decode.MustCompile[benchdata.Small](decode.ZeroCopy())
		b.ReportAllocs()
		for b.Loop() {
			out := make([]benchdata.Small, len(docs))
			for i, d := range docs {
				_ = plan.Decode(d, &out[i])
			}
		}
	})
	b.Run("lib=raw-copy", func(b *testing.B) {
		plan := decode.MustCompile[benchdata.Small]()
		b.ReportAllocs()
		for b.Loop() {
			out := make([]benchdata.Small, len(docs))
			for i, d := range docs {
				_ = plan.Decode(d, &out[i])
			}
		}
	})
	b.Run("lib=msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out []benchdata.Small
			if err := msgpack.Unmarshal(packed, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lib=shallow-copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]benchdata.Small, len(values))
			copy(out, values)
		}
	})
	b.Run("lib=fetch", func(b *testing.B) {
		c, _ := cache.New(cache.Config{})
		defer c.Close()
		q := cachecore.Key{Database: "db", Collection: "users", Filter: bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 18}}}}}
		load := cache.Observed(func(context.Context) ([]bson.Raw, error) { return docs, nil })
		ctx := context.Background()
		_, _ = cache.Core(c).Fetch(ctx, q, time.Minute, load, nil)
		cache.Core(c).Wait()
		plan := decode.MustCompile[benchdata.Small](decode.ZeroCopy())
		b.ReportAllocs()
		for b.Loop() {
			res, err := cache.Core(c).Fetch(ctx, q, time.Minute, load, nil)
			if err != nil {
				b.Fatal(err)
			}
			raw := res.Docs
			out := make([]benchdata.Small, len(raw))
			for i, d := range raw {
				_ = plan.Decode(d, &out[i])
			}
		}
		if c.Stats().Loads != 1 {
			b.Fatalf("expected hits only, got %d loads", c.Stats().Loads)
		}
	})
}
