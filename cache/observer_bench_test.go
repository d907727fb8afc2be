package cache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/testdb"
)

// BenchmarkObserver measures the client CPU (cpu-ns/op) of the write
// observer: insert_one, find_many(100) and insert_many(1000) on a client
// with cache.Observer against one with an empty monitor, so that both pay
// the driver's own cost of building events. Compare with
//
//	go test ./cache -run '^$' -bench BenchmarkObserver -count 6 | benchstat -col /observer -
func BenchmarkObserver(b *testing.B) {
	ctx := context.Background()
	type side struct{ reads, one, many *mongo.Collection }
	sides := map[string]side{}
	for _, obs := range []string{"off", "on"} {
		mon := &event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) {}}
		if obs == "on" {
			mon = cache.Observer(nil)
		}
		db := testdb.DBOn(b, testdb.NewClient(b, options.Client().SetMonitor(mon)))
		if err := benchdata.Seed(ctx, db.Collection("reads"), "small", 100); err != nil {
			b.Fatal(err)
		}
		sides[obs] = side{db.Collection("reads"), db.Collection("one"), db.Collection("many")}
	}
	c, err := cache.New(cache.Config{}) // a live cache for the observer to invalidate
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	i := 0
	ops := []struct {
		name string
		run  func(s side) error
	}{
		{"insert_one", func(s side) error {
			i++
			_, err := s.one.InsertOne(ctx, benchdata.NewSmall(i))
			return err
		}},
		{"find_many(100)", func(s side) error {
			cur, err := s.reads.Find(ctx, bson.D{})
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			for cur.Next(ctx) {
			}
			return cur.Err()
		}},
		{"insert_many(1000)", func(s side) error {
			docs := make([]any, 1000)
			for k := range docs {
				i++
				docs[k] = benchdata.NewSmall(i)
			}
			_, err := s.many.InsertMany(ctx, docs)
			return err
		}},
	}
	for _, op := range ops { // off and on side by side, per op
		for _, obs := range []string{"off", "on"} {
			b.Run("op="+op.name+"/observer="+obs, func(b *testing.B) {
				benchdata.Measure(b, func() error { return op.run(sides[obs]) })
			})
		}
	}
}

// BenchmarkObserverEvents measures the observer's own work per command,
// from events built by hand the way the driver builds them (a command
// document with its documents array), so that its overhead can be stated
// against the client CPU of the operation itself without the noise of a
// server round trip: insert_one, find, insert of 1,000 documents, and an
// update by _id.
func BenchmarkObserverEvents(b *testing.B) {
	c, err := cache.New(cache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	m := cache.Observer(nil)
	ctx := context.Background()
	mk := func(name string, d bson.D) *event.CommandStartedEvent {
		raw, err := bson.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		return &event.CommandStartedEvent{Command: raw, DatabaseName: "app", CommandName: name, RequestID: 1, ConnectionID: "c"}
	}
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}
	docs := func(n int) bson.A {
		a := make(bson.A, n)
		for i := range a {
			a[i] = benchdata.NewSmall(i)
		}
		return a
	}
	for _, tt := range []struct {
		name string
		ev   *event.CommandStartedEvent
	}{
		{"insert_one", mk("insert", bson.D{{Key: "insert", Value: "users"}, {Key: "ordered", Value: true}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(1)}, {Key: "$db", Value: "app"}, {Key: "documents", Value: docs(1)}})},
		{"find", mk("find", bson.D{{Key: "find", Value: "users"}, {Key: "filter", Value: bson.D{}}, {Key: "lsid", Value: lsid}, {Key: "$db", Value: "app"}})},
		{"insert_many(1000)", mk("insert", bson.D{{Key: "insert", Value: "users"}, {Key: "ordered", Value: true}, {Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(1)}, {Key: "$db", Value: "app"}, {Key: "documents", Value: docs(1000)}})},
		{"update_by_id", mk("update", bson.D{{Key: "update", Value: "users"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: bson.NewObjectID()}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}}}}}, {Key: "lsid", Value: lsid}, {Key: "$db", Value: "app"}})},
	} {
		for _, entries := range []int{0, 1000, 10_000} {
			b.Run(fmt.Sprintf("op=%s/entries=%d", tt.name, entries), func(b *testing.B) {
				live := watch(b, c, "app", "users", entries)
				defer live()
				done := &event.CommandSucceededEvent{CommandFinishedEvent: event.CommandFinishedEvent{
					CommandName: tt.ev.CommandName, DatabaseName: "app", RequestID: 1, ConnectionID: "c"}}
				b.ReportAllocs()
				for b.Loop() {
					m.Started(ctx, tt.ev)
					m.Succeeded(ctx, done)
				}
			})
		}
	}
}

// watch fills c with n cached reads of db.coll (each {tenant: i}, one
// document, from a hand-made load: the observer's cost does not depend on
// what the server would say), so that writes go through the invalidation
// rules; it returns a func that drops them.
func watch(b *testing.B, c *cache.Cache, db, coll string, n int) func() {
	b.Helper()
	shape := func(context.Context) (cachecore.Shape, error) { return cachecore.Shape{Simple: true}, nil }
	for i := range n {
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "tenant", Value: fmt.Sprint("t", i)}})
		if err != nil {
			b.Fatal(err)
		}
		q := cachecore.Key{Database: db, Collection: coll, Filter: bson.D{{Key: "tenant", Value: fmt.Sprint("t", i)}}, Simple: true, Shape: shape}
		if _, err := cache.Core(c).Fetch(context.Background(), q, time.Hour, cache.Observed(func(context.Context) ([]bson.Raw, error) {
			return []bson.Raw{doc}, nil
		}), nil); err != nil {
			b.Fatal(err)
		}
	}
	return func() { c.Invalidate(db, coll) }
}
