// Command coherence shows two replicas of a service, each with its own
// cache, kept coherent through an invalidation log in MongoDB: a write
// through one replica reaches the other's cached reads within milliseconds.
// (The two replicas share this process for the example; in production each
// is its own process, and nothing else changes.)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/coherence"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Item is the example model.
type Item struct {
	ID    int `bson:"_id"`
	Price int `bson:"price"`
}

func main() {
	var dbs [2]*mongo.Database
	for i := range dbs {
		client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")).SetMonitor(cache.Observer(nil)))
		if err != nil {
			log.Fatal(err)
		}
		defer client.Disconnect(context.Background())
		dbs[i] = client.Database("coherence_example")
	}
	if err := run(context.Background(), dbs[0], dbs[1], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// replica is what each process sets up once: a cache that shares its
// invalidations through the log in db, and the typed collection.
func replica(db *mongo.Database) (*cache.Cache, *odm.Collection[Item], error) {
	c, err := cache.New(cache.Config{Source: coherence.NewLog(db)})
	if err != nil {
		return nil, nil, err
	}
	items, err := odm.New[Item](db.Collection("items"), odm.WithCache(c))
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, items, nil
}

func run(ctx context.Context, dbA, dbB *mongo.Database, out io.Writer) error {
	cacheA, itemsA, err := replica(dbA)
	if err != nil {
		return err
	}
	defer cacheA.Close()
	cacheB, itemsB, err := replica(dbB)
	if err != nil {
		return err
	}
	defer cacheB.Close()
	// A cache caches nothing until its log is followed (milliseconds).
	if err := waitFor(func() bool { return cacheA.Stats().Synced && cacheB.Stats().Synced }); err != nil {
		return err
	}

	price := func() (int, error) { // replica A's cached read
		it, err := itemsA.FindOne(ctx, query.Eq("_id", 1), query.Cached(time.Minute))
		return it.Price, err
	}
	if err := itemsA.Save(ctx, &Item{ID: 1, Price: 10}); err != nil {
		return err
	}
	p, err := price()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "A reads", p)

	if err := itemsB.Save(ctx, &Item{ID: 1, Price: 12}); err != nil {
		return err
	}
	fmt.Fprintln(out, "B writes 12")
	var readErr error
	if err := waitFor(func() bool { p, readErr = price(); return readErr != nil || p == 12 }); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	fmt.Fprintln(out, "A reads", p)
	return nil
}

// waitFor polls cond for up to 5 seconds.
func waitFor(cond func() bool) error {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return errors.New("timed out")
}
