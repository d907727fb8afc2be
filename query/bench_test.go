package query_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// The benchmarks read fixtures seeded once per process into their own
// database, dropped by TestMain.
const benchDB = "databridge_bench_query"

var (
	fixtureOnce sync.Once
	fixtureErr  error
	fixtureCl   *mongo.Client
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureCl != nil {
		_ = fixtureCl.Database(benchDB).Drop(context.Background())
	}
	os.Exit(code)
}

// fixtures returns the collection holding n documents of shape.
func fixtures(b *testing.B, shape string, n int) *mongo.Collection {
	b.Helper()
	cl := testdb.Client(b)
	fixtureOnce.Do(func() {
		fixtureCl = cl
		db := cl.Database(benchDB)
		_ = db.Drop(context.Background())
		for _, f := range []struct {
			shape string
			n     int
		}{{"small", 100}, {"medium", 100}, {"medium", 10000}} {
			name := fmt.Sprintf("%s_%d", f.shape, f.n)
			if fixtureErr = benchdata.Seed(context.Background(), db.Collection(name), f.shape, f.n); fixtureErr != nil {
				return
			}
		}
	})
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return cl.Database(benchDB).Collection(fmt.Sprintf("%s_%d", shape, n))
}

// BenchmarkFindMany reads 100 documents per op into a new []T.
// lib=driver-raw walks the raw documents without decoding: the round-trip
// floor that no library on the driver can go below.
func BenchmarkFindMany(b *testing.B) {
	b.Run("docs=100/doc=small", func(b *testing.B) { benchFindMany[benchdata.Small](b, fixtures(b, "small", 100)) })
	b.Run("docs=100/doc=medium", func(b *testing.B) { benchFindMany[benchdata.Medium](b, fixtures(b, "medium", 100)) })
}

func benchFindMany[T any](b *testing.B, coll *mongo.Collection) {
	ctx := context.Background()
	const want = 100
	h := handle[T](b, coll)
	b.Run("lib=databridge", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			out, err := h.FindMany(ctx, benchdata.Everything)
			if err != nil {
				return err
			}
			return benchdata.Count(len(out), want)
		})
	})
	b.Run("lib=databridge-zerocopy", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			out, err := h.FindMany(ctx, benchdata.Everything, query.CursorOptions(cursor.DecodeOptions(decode.ZeroCopy())))
			if err != nil {
				return err
			}
			return benchdata.Count(len(out), want)
		})
	})
	b.Run("lib=databridge-cached", func(b *testing.B) {
		c, err := cache.New(cache.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		hc := handle[T](b, coll.Database().Collection(coll.Name()), odm.WithCache(c))
		if _, err := hc.FindMany(ctx, benchdata.Everything, query.Cached(time.Hour)); err != nil {
			b.Fatal(err)
		}
		benchdata.Measure(b, func() error {
			out, err := hc.FindMany(ctx, benchdata.Everything, query.Cached(time.Hour))
			if err != nil {
				return err
			}
			return benchdata.Count(len(out), want)
		})
		if s := c.Stats(); s.Loads != 1 {
			b.Fatalf("%d loads: the benchmark must measure hits", s.Loads)
		}
	})
	b.Run("lib=driver-all", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverFindAll[T](coll, want)) })
	b.Run("lib=driver-unmarshal", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverFindUnmarshal[T](coll, want)) })
	b.Run("lib=driver-raw", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverRaw(coll, want)) })
}

// BenchmarkStream iterates over 10,000 medium documents per op without
// keeping them.
func BenchmarkStream(b *testing.B) {
	b.Run("docs=10000/doc=medium", func(b *testing.B) {
		coll := fixtures(b, "medium", 10000)
		benchStream[benchdata.Medium](b, coll, 10000)
	})
}

func benchStream[T any](b *testing.B, coll *mongo.Collection, want int) {
	ctx := context.Background()
	h := handle[T](b, coll)
	b.Run("lib=databridge", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			cur, err := h.Cursor(ctx, benchdata.Everything)
			if err != nil {
				return err
			}
			n := 0
			for _, err := range cur.Borrowed(ctx) {
				if err != nil {
					return err
				}
				n++
			}
			return benchdata.Count(n, want)
		})
	})
	b.Run("lib=databridge-iter", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			n := 0
			for _, err := range h.Iter(ctx, benchdata.Everything) {
				if err != nil {
					return err
				}
				n++
			}
			return benchdata.Count(n, want)
		})
	})
	b.Run("lib=driver-all", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverFindAll[T](coll, want)) })
	b.Run("lib=driver-unmarshal", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverStream[T](coll, want)) })
	b.Run("lib=driver-raw", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverRaw(coll, want)) })
}

// BenchmarkStreamBatchSize streams 10,000 medium documents per op at several
// batch sizes, to choose the default (docs/performance.md).
func BenchmarkStreamBatchSize(b *testing.B) {
	coll := fixtures(b, "medium", 10000)
	ctx := context.Background()
	for _, bs := range []int32{0, 101, 500, 1000, 5000} {
		name := fmt.Sprintf("batch=%d", bs)
		if bs == 0 {
			name = "batch=server-default"
		}
		b.Run(name, func(b *testing.B) {
			var opts []query.ReadOption
			if bs > 0 {
				opts = append(opts, query.BatchSize(bs))
			}
			h := handle[benchdata.Medium](b, coll)
			benchdata.Measure(b, func() error {
				cur, err := h.Cursor(ctx, bson.D{}, opts...)
				if err != nil {
					return err
				}
				n := 0
				for _, err := range cur.Borrowed(ctx) {
					if err != nil {
						return err
					}
					n++
				}
				if n != 10000 {
					return fmt.Errorf("got %d", n)
				}
				return nil
			})
		})
	}
}

// BenchmarkPrefetch compares pipelined getMore with fetching on demand for a
// consumer that works ~20 µs per document (stream of 10,000 medium).
func BenchmarkPrefetch(b *testing.B) {
	coll := fixtures(b, "medium", 10000)
	ctx := context.Background()
	work := func() {
		deadline := time.Now().Add(20 * time.Microsecond)
		for time.Now().Before(deadline) {
		}
	}
	for _, prefetch := range []bool{true, false} {
		b.Run(fmt.Sprintf("prefetch=%v", prefetch), func(b *testing.B) {
			opts := []query.ReadOption{query.BatchSize(500)}
			if !prefetch {
				opts = append(opts, query.CursorOptions(cursor.WithoutPrefetch()))
			}
			h := handle[benchdata.Medium](b, coll)
			benchdata.Measure(b, func() error {
				cur, err := h.Cursor(ctx, bson.D{}, opts...)
				if err != nil {
					return err
				}
				for _, err := range cur.Borrowed(ctx) {
					if err != nil {
						return err
					}
					work()
				}
				return nil
			})
		})
	}
}

// BenchmarkFindManyParallel measures find_many(100) small throughput with
// 1, 8 and 64 concurrent goroutines, with the driver's default pool and with
// tuned pool settings (docs/performance.md).
func BenchmarkFindManyParallel(b *testing.B) {
	fixtures(b, "small", 100) // seeds with the shared client
	pools := []struct {
		name string
		opts *options.ClientOptions
	}{
		{"default", options.Client()},
		{"maxPool=8,maxConnecting=8", options.Client().SetMaxPoolSize(8).SetMaxConnecting(8)},
		{"minPool=8,maxConnecting=8", options.Client().SetMinPoolSize(8).SetMaxConnecting(8)},
	}
	for _, p := range pools {
		cl := testdb.NewClient(b, p.opts)
		coll := cl.Database(benchDB).Collection("small_100")
		h := handle[benchdata.Small](b, coll)
		for _, g := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("goroutines=%d/pool=%s", g, p.name), func(b *testing.B) {
				ctx := context.Background()
				b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				start := benchdata.CPUTime()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						out, err := h.FindMany(ctx, bson.D{})
						if err != nil || len(out) != 100 {
							b.Errorf("%d docs, %v", len(out), err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
				b.ReportMetric(float64(benchdata.CPUTime()-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkAggregate runs a typed aggregation ($match of everything, $sort)
// of 100 medium documents: databridge's AggregateAll against the driver's
// Aggregate + cursor.All, and the driver's raw floor (Aggregate + Next, no
// decode).
//
//	go test ./query -run '^$' -bench BenchmarkAggregate -count 6 | benchstat -col /lib -
func BenchmarkAggregate(b *testing.B) {
	coll := fixtures(b, "medium", 100)
	ctx := context.Background()
	const want = 100
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.D{}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	}
	h := handle[benchdata.Medium](b, coll)
	b.Run("docs=100/doc=medium/lib=databridge", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			out, err := odm.Aggregate[benchdata.Medium](ctx, h, pipeline)
			if err != nil {
				return err
			}
			return benchdata.Count(len(out), want)
		})
	})
	b.Run("docs=100/doc=medium/lib=driver-all", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			cur, err := coll.Aggregate(ctx, pipeline)
			if err != nil {
				return err
			}
			var out []benchdata.Medium
			if err := cur.All(ctx, &out); err != nil {
				return err
			}
			return benchdata.Count(len(out), want)
		})
	})
	b.Run("docs=100/doc=medium/lib=driver-raw", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			cur, err := coll.Aggregate(ctx, pipeline)
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			n := 0
			for cur.Next(ctx) {
				n++
			}
			if err := cur.Err(); err != nil {
				return err
			}
			return benchdata.Count(n, want)
		})
	})
}
