package cache_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
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
