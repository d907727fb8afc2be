package coherence

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// BenchmarkWriteOverhead measures what the Log adds to odm writes: the same
// Save and InsertMany(1000) with a cache alone and with a cache whose
// Source is a Log, which also reads the log as in production (polling on
// FerretDB, tailing elsewhere; "log+tail" tails on every server;
// "followonly" reads but never publishes, separating the two costs).
func BenchmarkWriteOverhead(b *testing.B) {
	ctx := context.Background()
	db := testdb.DB(b)
	for _, src := range []string{"cache", "cache+log", "cache+log+tail", "cache+followonly"} {
		cfg := cache.Config{}
		switch src {
		case "cache+log":
			cfg.Source = NewLog(db)
		case "cache+log+tail":
			cfg.Source = NewLog(db, PollInterval(0))
		case "cache+followonly":
			cfg.Source = followOnly{NewLog(db)}
		}
		c, err := cache.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		coll, err := odm.New[benchdata.Small](db.Collection("bench_"+src), odm.WithCache(c))
		if err != nil {
			b.Fatal(err)
		}
		events := countEvents(b, db, cfg.Source)
		b.Run("op=save/source="+src, func(b *testing.B) {
			defer events(b)()
			benchdata.Measure(b, func() error {
				doc := benchdata.NewSmall(1)
				doc.ID = bson.ObjectID{}
				return coll.Save(ctx, &doc)
			})
		})
		b.Run("op=insertmany1000/source="+src, func(b *testing.B) {
			defer events(b)()
			docs := make([]benchdata.Small, 1000)
			benchdata.Measure(b, func() error {
				for i := range docs {
					docs[i] = benchdata.NewSmall(i)
					docs[i].ID = bson.ObjectID{}
				}
				return coll.InsertMany(ctx, docs)
			})
		})
		c.Close()
	}
}

// countEvents returns a function that starts counting the events src
// appends and returns the function reporting them per op (events/op: how
// well bursts coalesce). For other sources it reports nothing.
func countEvents(b *testing.B, db *mongo.Database, src cache.Source) func(*testing.B) func() {
	l, ok := src.(*Log)
	if !ok {
		return func(*testing.B) func() { return func() {} }
	}
	count := func(b *testing.B) int64 {
		n, err := db.Collection(DefaultLogCollection).CountDocuments(context.Background(), bson.D{})
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return func(b *testing.B) func() {
		before := count(b)
		return func() {
			if err := l.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(count(b)-before)/float64(b.N), "events/op")
		}
	}
}

// followOnly is a Log that follows but never publishes: it separates the
// cost of reading the log from the cost of appending.
type followOnly struct{ *Log }

func (followOnly) Publish(db, coll string) {}

// BenchmarkFollowIdle measures what following the log costs a process that
// does nothing else: each op is 100 ms of an idle Log reading (cpu-ns/op is
// the client CPU per 100 ms), by default and tailing.
func BenchmarkFollowIdle(b *testing.B) {
	db := testdb.DB(b)
	for _, mode := range []struct {
		name string
		opts []LogOption
	}{{"default", nil}, {"tail", []LogOption{PollInterval(0)}}} {
		b.Run("mode="+mode.name, func(b *testing.B) {
			c, err := cache.New(cache.Config{Source: NewLog(db, mode.opts...)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			for !c.Stats().Synced {
				time.Sleep(time.Millisecond)
			}
			benchdata.Measure(b, func() error {
				time.Sleep(100 * time.Millisecond)
				return nil
			})
		})
	}
}

// BenchmarkPublishCost measures, without a server, the client CPU that a
// write's event costs its writer: the cache's work to publish it (with
// descriptors, the descriptor's encoding: cachecore.AppendDescriptor),
// the Log's bookkeeping (PublishDescribed, or Publish for namespace
// events) and the encoding of an event for the append (bson.Marshal, as
// the driver's InsertOne does), one write per event: the most a write
// pays, since a burst shares one event per coalescing window. The writes
// are those odm reports: an UpdateOne by _id with $set, a Save (a
// replacement by _id, upsert) of a benchdata.Small, and an InsertMany of
// 10 of them.
func BenchmarkPublishCost(b *testing.B) {
	db := (&mongo.Client{}).Database("bench") // names only: nothing connects
	raw := func(v any) bson.Raw {
		r, err := bson.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	id := bson.NewObjectID()
	small := benchdata.NewSmall(1)
	small.ID = id
	var inserts []cachecore.Stmt
	for i := range 10 {
		d := benchdata.NewSmall(i)
		d.ID = bson.NewObjectID()
		inserts = append(inserts, cachecore.Stmt{Op: cachecore.OpInsert, Doc: raw(d)})
	}
	writes := []struct {
		name  string
		stmts []cachecore.Stmt
	}{
		{"updateone", []cachecore.Stmt{{Op: cachecore.OpUpdate, Filter: raw(bson.D{{Key: "_id", Value: id}}),
			Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw(bson.D{{Key: "$set", Value: bson.D{{Key: "score", Value: 7}}}})}}}},
		{"save", []cachecore.Stmt{{Op: cachecore.OpReplace, Filter: raw(bson.D{{Key: "_id", Value: id}}), Doc: raw(small), Upsert: true, NotUpserted: true}}},
		{"insertmany10", inserts},
	}
	for _, w := range writes {
		for _, mode := range []string{"namespace", "descriptor"} {
			b.Run("write="+w.name+"/event="+mode, func(b *testing.B) {
				l := NewLog(db)
				ch := cachecore.Change{DB: "bench", Coll: "docs", Stmts: w.stmts}
				size := 0
				benchdata.Measure(b, func() error {
					if mode == "descriptor" {
						desc, ok := cachecore.AppendDescriptor(nil, &ch, cachecore.MaxDescriptor)
						if !ok {
							b.Fatal("not described")
						}
						l.PublishDescribed(ch.DB, ch.Coll, desc)
					} else {
						l.Publish(ch.DB, ch.Coll)
					}
					l.mu.Lock()
					ev := l.next()
					l.mu.Unlock()
					out, err := bson.Marshal(ev)
					size = len(out)
					return err
				})
				b.ReportMetric(float64(size), "event-bytes")
			})
		}
	}
}

// BenchmarkLiveAcrossTheLog is the delay from a write's return in one
// process to the yield of a live query in another, through the Log: the
// writer (peer a) replaces document 1 and publishes the write as odm
// would, off this binary's invalidation bus (a process of its own, as the
// other coherence tests do); the reader's (peer b) live query of document
// 1 yields the new version. Each op is one write and the wait for its
// yield; the delay's p50 and p99 are reported (the Log's propagation plus
// one read).
//
//	go test ./coherence -run '^$' -bench BenchmarkLiveAcrossTheLog -count 6
func BenchmarkLiveAcrossTheLog(b *testing.B) {
	db := testdb.DB(b).Name()
	a := newPeer(b, observedClient(b), db)
	r := newPeer(b, observedClient(b), db)
	a.replace(b, 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	versions := make(chan int, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s, err := range r.reader.Live(ctx, query.Eq("_id", 1)) {
			if err != nil || len(s.Value) != 1 {
				return
			}
			versions <- s.Value[0].V
		}
	}()
	for <-versions != 0 {
	}
	var delays []time.Duration
	v := 0
	for b.Loop() {
		v++
		a.replace(b, 1, v)
		wrote := time.Now()
		for got := -1; got != v; {
			select {
			case got = <-versions:
			case <-time.After(30 * time.Second):
				b.Fatalf("version %d never reached the other process's live query", v)
			}
		}
		delays = append(delays, time.Since(wrote))
	}
	cancel()
	<-done
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "p99-µs")
}
