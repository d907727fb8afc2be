// Command live serves a live list of open to-do items: open
// http://localhost:8080 and change the collection (mongosh, another
// program, this one's writes): the page shows each change as it lands,
// through a live query (odm's Live) streamed as Server-Sent Events.
package main

import (
	"context"
	"log"
	"net/http"
	"os"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/examples/live/livepage"
	"github.com/databridge-go/databridge/odm"
)

func main() {
	// The observer makes raw driver writes on this client reach the cache
	// (and the live queries); writes of other processes need a Source
	// (package coherence).
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")).SetMonitor(cache.Observer(nil)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	c, err := cache.New(cache.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	items, err := odm.New[livepage.Item](client.Database("live_example").Collection("items"), odm.WithCache(c))
	if err != nil {
		log.Fatal(err)
	}
	addr := "localhost:8080"
	log.Printf("serving http://%s", addr)
	log.Fatal(http.ListenAndServe(addr, livepage.Handler(items)))
}
