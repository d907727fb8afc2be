package odm_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

type Tenanted struct {
	ID     int `bson:"_id"`
	Tenant int `bson:"tenant"`
	V      int `bson:"v"`
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLiveWrite is a write that changes one tenant's list in a
// multi-tenant collection (1,000 tenants of 3 documents): live=none with
// no live query; live=reread with each tenant's list cached and, after
// the write, read again through the cache (the least a live query's
// re-read costs); live=live with 1,000 live queries, one per tenant
// (each: its tenant's documents, sorted by _id). Each op is one odm UpdateOne by _id and, with live
// queries, the wait until its tenant's live query has yielded the new
// list. It reports the client's CPU per write (user+system of this
// process: the write, the wake-ups, the re-read, the decode), the reads
// per write (Stats.Loads; 1 is the number of results that changed), the
// delay from the write's return to the yield (p50, p99), and the heap per
// live query.
//
//	go test ./odm -run '^$' -bench BenchmarkLiveWrite -count 6 | benchstat -col /live -
func BenchmarkLiveWrite(b *testing.B) {
	tenants := 1000
	if s := os.Getenv("DATABRIDGE_LIVE_TENANTS"); s != "" {
		tenants, _ = strconv.Atoi(s)
	}
	for _, mode := range []string{"none", "reread", "live"} {
		live := 0
		if mode == "live" {
			live = tenants
		}
		b.Run("live="+mode, func(b *testing.B) {
			ctx := context.Background()
			c, err := cache.New(cache.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			cl := testdb.NewClient(b, options.Client().SetMonitor(cache.Observer(nil)))
			coll := testdb.DBOn(b, cl).Collection("tenants")
			h, err := odm.New[Tenanted](coll, odm.WithCache(c))
			if err != nil {
				b.Fatal(err)
			}
			docs := make([]Tenanted, 0, 3*tenants)
			for i := range 3 * tenants {
				docs = append(docs, Tenanted{ID: i, Tenant: i % tenants})
			}
			if err := h.InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			// yielded[t] receives tenant t's yields after the first.
			yielded := make([]chan struct{}, live)
			var wg sync.WaitGroup
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			started := make(chan struct{}, live)
			for t := range live {
				if t >= 50 {
					// At most 50 first reads at once: 1,000 at once time
					// out waiting for the driver's pool (100 connections)
					// behind the dev server's slow filtered reads.
					<-started
				}
				yielded[t] = make(chan struct{}, 1024)
				wg.Go(func() {
					first := true
					for _, err := range h.Live(lctx, query.Eq("tenant", t), query.Sort(bson.D{{Key: "_id", Value: 1}})) {
						if err != nil {
							if lctx.Err() == nil {
								b.Errorf("tenant %d: %v", t, err)
							}
							if first {
								started <- struct{}{}
							}
							return
						}
						if first {
							first = false
							started <- struct{}{}
							continue
						}
						yielded[t] <- struct{}{}
					}
				})
			}
			for range min(live, 50) {
				<-started
			}
			if b.Failed() {
				b.FailNow()
			}
			runtime.GC()
			runtime.ReadMemStats(&ms1)
			byTenant := func(t int) error {
				_, err := h.FindMany(ctx, query.Eq("tenant", t), query.Sort(bson.D{{Key: "_id", Value: 1}}), query.Cached(time.Hour))
				return err
			}
			if mode == "reread" {
				for t := range tenants { // each tenant's list cached, as the live queries' are
					if err := byTenant(t); err != nil {
						b.Fatal(err)
					}
				}
			}
			loads0, cpu0 := c.Stats().Loads, cpuTime()
			var delays []time.Duration
			i := 0
			b.ResetTimer()
			for b.Loop() {
				t := i % tenants
				_, err := h.UpdateOne(ctx, query.Eq("_id", t), bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "reread" {
					// What a live query's re-read costs at least: the
					// tenant's list read again through the cache (a miss:
					// the write invalidated it).
					if err := byTenant(t); err != nil {
						b.Fatal(err)
					}
				}
				if live > 0 {
					done := time.Now()
					select {
					case <-yielded[t]:
					case <-time.After(30 * time.Second):
						b.Fatalf("tenant %d's live query did not yield", t)
					}
					delays = append(delays, time.Since(done))
				}
				i++
			}
			b.StopTimer()
			n := float64(b.N)
			if live > 0 {
				b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(live), "heap-B/live")
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "cpu-µs/write")
			b.ReportMetric(float64(c.Stats().Loads-loads0)/n, "reads/write")
			if len(delays) > 0 {
				slices.Sort(delays)
				b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "p99-µs")
			}
			cancel()
			wg.Wait()
		})
	}
}
