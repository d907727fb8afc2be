// Command readme is the README's example, whole: connect with the cache's
// write observer, make the collection's typed handle with a cache, write,
// stream, and serve a read from the cache.
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// User is the example model.
type User struct {
	ID   bson.ObjectID `bson:"_id"`
	Name string        `bson:"name"`
	Age  int           `bson:"age"`
}

func main() {
	uri := cmp.Or(os.Getenv("MONGODB_URI"), "mongodb://127.0.0.1:27017")
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(2 * time.Second). // fail fast when nothing listens
		SetMonitor(cache.Observer(nil)))            // a cache stores only what such a client loads
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if err := run(context.Background(), client.Database("readme"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, db *mongo.Database, out io.Writer) error {
	// Once, at start-up: a cache, and the collection's typed handle with it.
	c, err := cache.New(cache.Config{MaxCost: 64 << 20})
	if err != nil {
		return err
	}
	defer c.Close()
	users, err := odm.New[User](db.Collection("users"), odm.WithCache(c))
	if err != nil {
		return err
	}
	if _, err := users.DeleteMany(ctx, bson.D{}); err != nil { // the same output every run
		return err
	}

	// Writes: Save inserts, and fills in u.ID.
	for i, name := range []string{"Ada", "Grace", "Barbara"} {
		u := User{Name: name, Age: 30 + i*10}
		if err := users.Save(ctx, &u); err != nil {
			return err
		}
	}

	// A streaming, typed read, decoded straight from the driver's batches.
	for u, err := range users.Iter(ctx, query.Gte("age", 35), query.Sort(bson.D{{Key: "age", Value: 1}})) {
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s is %d\n", u.Name, u.Age)
	}

	// A cached read: repeats are served from memory until a write changes
	// what it returned, or for 30 s.
	all, err := users.FindMany(ctx, bson.D{}, query.Cached(30*time.Second))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d users\n", len(all))
	return nil
}
