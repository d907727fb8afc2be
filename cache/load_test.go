package cache_test

import (
	"context"
	"math/rand"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestCacheUnderLoad runs 64 goroutines for a bounded time (3 s, or
// $DATABRIDGE_SOAK: `make soak` runs it for 10 minutes), mixing cached and
// uncached reads with writes, against the dev server: zero errors, zero
// stale cached reads, the cache within MaxCost, and the heap and goroutine
// count back where they started.
func TestCacheUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3 s load test")
	}
	length := 3 * time.Second
	if s := os.Getenv("DATABRIDGE_SOAK"); s != "" {
		var err error
		length, err = time.ParseDuration(s)
		require.NoError(t, err, "DATABRIDGE_SOAK")
	}
	leakcheck.Check(t, 10*time.Second)
	const workers = 64
	e := setup(t, workers)
	const maxCost = 256 << 10
	c := newCache(t, cache.Config{MaxCost: maxCost})
	h := handle[Doc](t, e.coll.Database().Collection(e.coll.Name()), odm.WithCache(c))
	db, coll := e.coll.Database().Name(), e.coll.Name()
	ctx := context.Background()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	var committed [workers]atomic.Int64
	var errs, stale, ops atomic.Int64
	deadline := time.Now().Add(length)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			version := 0
			for time.Now().Before(deadline) {
				ops.Add(1)
				switch k := r.Intn(20); {
				case k == 0: // write my own document, as odm writes do
					version++
					_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: w}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: version}}}})
					c.Invalidate(db, coll)
					if err != nil {
						errs.Add(1)
						continue
					}
					committed[w].Store(int64(version))
				case k < 4: // uncached
					if _, err := h.FindMany(ctx, query.Lt("_id", r.Intn(workers))); err != nil {
						errs.Add(1)
					}
				default: // cached, over a handful of distinct queries
					var floor [workers]int64
					for i := range floor {
						floor[i] = committed[i].Load()
					}
					got, err := h.FindMany(ctx, query.Gte("_id", r.Intn(8)), query.Cached(time.Minute))
					if err != nil {
						errs.Add(1)
						continue
					}
					for _, d := range got {
						if int64(d.V) < floor[d.ID] {
							stale.Add(1)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	cache.Core(c).Wait()

	s := c.Stats()
	t.Logf("%d operations: %d hits, %d misses, %d loads, %d invalidations, %d evictions, %d of %d bytes used",
		ops.Load(), s.Hits, s.Misses, s.Loads, s.Applied, s.Evictions, s.UsedBytes, s.MaxBytes)
	assert.Zero(t, errs.Load(), "errors")
	assert.Zero(t, stale.Load(), "stale cached reads")
	assert.Positive(t, s.Hits)
	assert.LessOrEqual(t, s.UsedBytes, int64(maxCost))

	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 10*time.Second, 50*time.Millisecond,
		"goroutines: %d before, %d after", goroutines, runtime.NumGoroutine())
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("heap in use: %d KiB before, %d KiB after", before.HeapAlloc>>10, after.HeapAlloc>>10)
	assert.Less(t, after.HeapAlloc, before.HeapAlloc+2*maxCost+8<<20, "heap back to its starting size plus the cache")
}
