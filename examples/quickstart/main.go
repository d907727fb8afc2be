// Command quickstart is the README's example: a typed, streaming read with
// range-over-func, a cached query, and a fast-path Save.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// User is the example model.
type User struct {
	ID    bson.ObjectID `bson:"_id"`
	Name  string        `bson:"name"`
	Email string        `bson:"email"`
	Age   int           `bson:"age"`
}

func main() {
	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		uri = "mongodb://127.0.0.1:27017"
	}
	// connect (connect.go) fails within 2 s with the driver's error, and
	// says to start the dev server when nothing listens at uri.
	client, err := connect(uri)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if err := run(context.Background(), client.Database("quickstart"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, db *mongo.Database, out io.Writer) error {
	// Once, at start-up: a cache, and the collection's typed handle with it.
	// (An application's main may also bind the type to the handle with
	// query.Register[User](users), for query.Iter[User] and friends.)
	c, err := cache.New(cache.Config{MaxCost: 64 << 20})
	if err != nil {
		return err
	}
	defer c.Close()
	users, err := odm.New[User](db.Collection("users"), odm.WithCache(c))
	if err != nil {
		return err
	}
	// Start from an empty collection, so that every run prints the same.
	if _, err := users.DeleteMany(ctx, bson.D{}); err != nil {
		return err
	}

	// Writes: Save inserts (and fills in u.ID); the fast path skips
	// validation and hooks for data you already trust.
	for i, name := range []string{"Ada", "Grace", "Barbara"} {
		u := User{Name: name, Email: name + "@example.com", Age: 30 + i*10}
		if err := users.Save(ctx, &u, odm.WithoutValidation(), odm.WithoutHooks()); err != nil {
			return err
		}
	}

	// A streaming, typed read: range-over-func, values decoded straight
	// from the driver's batches.
	for u, err := range users.Iter(ctx, query.Gte("age", 35), query.Sort(bson.D{{Key: "age", Value: 1}})) {
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s is %d\n", u.Name, u.Age)
	}

	// A cached read: later identical reads are served from memory until a
	// write invalidates them (through databridge, or any write on a client
	// with cache.Observer, as connect's is), or until 30 s pass.
	all, err := users.FindMany(ctx, nil, query.Cached(30*time.Second))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d users\n", len(all))
	return nil
}
