package coherence_test

import (
	"context"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/coherence"
)

// Every replica of a service gives its cache the same Log: each one's
// writes invalidate the others' cached reads, and a replica that loses the
// log's server flushes and bypasses its cache until it follows again.
func ExampleNewLog() {
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")).SetMonitor(cache.Observer(nil)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	c, err := cache.New(cache.Config{Source: coherence.NewLog(client.Database("app"),
		coherence.OnError(func(err error) { log.Print(err) }))})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Then give c to the handles of the collections it caches: odm.New(coll, odm.WithCache(c)).
}
