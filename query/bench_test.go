package query_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
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

// measure runs fn in the benchmark loop and reports client CPU per op
// (cpu-ns/op: this process's user+system time; the server is another
// process) beside wall time.
func measure(b *testing.B, fn func() error) {
	b.ReportAllocs()
	start := benchdata.CPUTime()
	for b.Loop() {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchdata.CPUTime()-start)/float64(b.N), "cpu-ns/op")
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
	filter := bson.D{}
	const want = 100
	check := func(n int) error {
		if n != want {
			return fmt.Errorf("got %d documents, want %d", n, want)
		}
		return nil
	}
	h := query.From[T](coll)
	b.Run("lib=databridge", func(b *testing.B) {
		measure(b, func() error {
			out, err := h.FindMany(ctx, filter)
			if err != nil {
				return err
			}
			return check(len(out))
		})
	})
	b.Run("lib=databridge-cached", func(b *testing.B) {
		c, err := cache.New(cache.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		hc := h.WithCache(c)
		if _, err := hc.FindMany(ctx, filter, query.Cache(time.Hour)); err != nil {
			b.Fatal(err)
		}
		c.Wait()
		measure(b, func() error {
			out, err := hc.FindMany(ctx, filter, query.Cache(time.Hour))
			if err != nil {
				return err
			}
			return check(len(out))
		})
		if s := c.Stats(); s.Loads != 1 {
			b.Fatalf("%d loads: the benchmark must measure hits", s.Loads)
		}
	})
	b.Run("lib=driver-all", func(b *testing.B) {
		measure(b, func() error {
			cur, err := coll.Find(ctx, filter)
			if err != nil {
				return err
			}
			var out []T
			if err := cur.All(ctx, &out); err != nil {
				return err
			}
			return check(len(out))
		})
	})
	b.Run("lib=driver-unmarshal", func(b *testing.B) {
		measure(b, func() error {
			cur, err := coll.Find(ctx, filter)
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			var out []T
			for cur.Next(ctx) {
				var v T
				if err := bson.Unmarshal(cur.Current, &v); err != nil {
					return err
				}
				out = append(out, v)
			}
			if err := cur.Err(); err != nil {
				return err
			}
			return check(len(out))
		})
	})
	b.Run("lib=driver-raw", func(b *testing.B) {
		measure(b, func() error {
			cur, err := coll.Find(ctx, filter)
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			n, size := 0, 0
			for cur.Next(ctx) {
				size += len(cur.Current)
				n++
			}
			if err := cur.Err(); err != nil {
				return err
			}
			return check(n)
		})
	})
}

// BenchmarkStream iterates over 10,000 medium documents per op without
// keeping them.
func BenchmarkStream(b *testing.B) {
	b.Run("docs=10000/doc=medium", func(b *testing.B) {
		coll := fixtures(b, "medium", 10000)
		benchStream[benchdata.Medium](b, coll, 10000, nil)
	})
}

func benchStream[T any](b *testing.B, coll *mongo.Collection, want int, findOpts *options.FindOptionsBuilder) {
	ctx := context.Background()
	filter := bson.D{}
	check := func(n int) error {
		if n != want {
			return fmt.Errorf("got %d documents, want %d", n, want)
		}
		return nil
	}
	h := query.From[T](coll)
	b.Run("lib=databridge", func(b *testing.B) {
		measure(b, func() error {
			cur, err := h.Cursor(ctx, filter)
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
			return check(n)
		})
	})
	b.Run("lib=databridge-iter", func(b *testing.B) {
		measure(b, func() error {
			n := 0
			for _, err := range h.Iter(ctx, filter) {
				if err != nil {
					return err
				}
				n++
			}
			return check(n)
		})
	})
	b.Run("lib=driver-all", func(b *testing.B) {
		measure(b, func() error {
			cur, err := coll.Find(ctx, filter, findOpts)
			if err != nil {
				return err
			}
			var out []T
			if err := cur.All(ctx, &out); err != nil {
				return err
			}
			return check(len(out))
		})
	})
	b.Run("lib=driver-unmarshal", func(b *testing.B) {
		measure(b, func() error {
			cur, err := coll.Find(ctx, filter, findOpts)
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			var v T
			n := 0
			for cur.Next(ctx) {
				if err := cur.Decode(&v); err != nil {
					return err
				}
				n++
			}
			if err := cur.Err(); err != nil {
				return err
			}
			return check(n)
		})
	})
	b.Run("lib=driver-raw", func(b *testing.B) {
		measure(b, func() error {
			cur, err := coll.Find(ctx, filter, findOpts)
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
			return check(n)
		})
	})
}
