package cache_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// BenchmarkPreImageWrite is what a pre-image costs a write (issue #36):
// odm's UpdateOne by _id setting the status of an order of tenant t7
// (alternately "paid" and "open"), with no cached read (a handle with
// pre-images sends the plain update then) and with 1,000 live on the
// collection (BenchmarkWritePathLiveEntries' mix: lists of each tenant's
// paid orders, counts, reads by _id), with pre-images off (an update
// command; every paid list is invalidated, since the update does not say
// the order's tenant) and on (a findAndModify returning the order's
// tenant and status; the lists of other tenants are kept). The entries a
// write dropped are stored again before the next, untimed, so that every
// write meets the same 1,000. Reported per write: wall time, client CPU
// (cpu-ns/op, this process's user+system time around the write alone),
// allocations, and the bytes of the write's command and reply
// (wire-B/op, as the command monitor sees them):
//
//	go test ./cache -run '^$' -bench BenchmarkPreImageWrite -count 6 | benchstat -col /pre -
func BenchmarkPreImageWrite(b *testing.B) {
	var wire atomic.Int64
	mon := cache.Observer(&event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == "update" || e.CommandName == "findAndModify" {
				wire.Add(int64(len(e.Command)))
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			if e.CommandName == "update" || e.CommandName == "findAndModify" {
				wire.Add(int64(len(e.Reply)))
			}
		},
	})
	cl := testdb.NewClient(b, options.Client().SetMonitor(mon))
	db := testdb.DBOn(b, cl)
	for _, entries := range []int{0, 1000} {
		for _, pre := range []string{"off", "on"} {
			b.Run(fmt.Sprintf("entries=%d/pre=%s", entries, pre), func(b *testing.B) {
				preImageWrite(b, db, &wire, entries, pre == "on")
			})
		}
	}
}

// preImageWrite is one case of BenchmarkPreImageWrite.
func preImageWrite(b *testing.B, db *mongo.Database, wire *atomic.Int64, entries int, on bool) {
	ctx := context.Background()
	var opts []odm.Option
	if on {
		opts = append(opts, odm.WithPreImages())
	}
	name := fmt.Sprintf("preimage_%d_%v", entries, on)
	c, h, target := liveEntries(b, db, name, entries, opts...)
	runtime.GC()
	status := []string{"paid", "open"}
	var cpu time.Duration
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		u := bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status[i%2]}}}}
		w0, c0 := wire.Load(), benchdata.CPUTime()
		_, err := h.UpdateOne(ctx, query.Eq("_id", target.ID), u)
		cpu += benchdata.CPUTime() - c0
		bytes += wire.Load() - w0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fill(b, c, db.Name(), name, entries) // what the write dropped, again
		runtime.GC()                         // the fill's garbage is not the write's
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(bytes)/float64(b.N), "wire-B/op")
	if s := c.Stats(); on && entries > 0 && s.PreImages == 0 {
		b.Fatalf("no write carried a pre-image: %+v", s)
	}
}
