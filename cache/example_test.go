package cache_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
)

// New sizes a cache in bytes of results; the zero Config is valid.
func ExampleNew() {
	c, err := cache.New(cache.Config{MaxCost: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Give it to collection handles: odm.New(coll, odm.WithCache(c)).
	fmt.Println(c.Stats().MaxBytes>>20, "MiB,", c.Stats().HitRatio())
	// Output: 256 MiB, 0
}

// Observer installed at connect, on every client whose reads a cache
// caches, keeps every cache of the process correct for every write the
// client sends, raw driver writes and transactions included; a cache
// stores nothing loaded through a client without it. Pass your own
// monitor, if any, to have it chained.
func ExampleObserver() {
	client, err := mongo.Connect(options.Client().
		ApplyURI(os.Getenv("MONGODB_URI")).
		SetMonitor(cache.Observer(nil)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
}
