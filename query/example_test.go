package query_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/query"
)

// A client connected with a registry or BSON options of its own is
// declared once, with the same options: every read and odm write through
// it then decodes and stores what the driver does for that client.
func ExampleUseClientOptions() {
	uri, reg := os.Getenv("MONGODB_URI"), bson.NewRegistry()
	if err := connect(uri, reg); err != nil {
		log.Fatal(err)
	}
}

func connect(uri string, reg *bson.Registry) error {
	opts := options.Client().ApplyURI(uri).SetRegistry(reg).SetBSONOptions(&options.BSONOptions{UseLocalTimeZone: true})
	client, err := mongo.Connect(opts)
	if err != nil {
		return err
	}
	query.UseClientOptions(client, opts)
	defer client.Disconnect(context.Background())
	return nil
}

// Member is the examples' model.
type Member struct {
	ID   bson.ObjectID `bson:"_id"`
	Name string        `bson:"name"`
	Age  int           `bson:"age"`
}

// Filters built by the helpers take every value literally; they print as
// the documents the server receives.
func ExampleAnd() {
	f := query.And(query.Gte("age", 18), query.In("team", "a", "b"), query.Eq("name", bson.M{"$ne": ""}))
	b, _ := bson.MarshalExtJSON(f, false, false)
	fmt.Println(string(b))
	// Output: {"$and":[{"age":{"$gte":18}},{"team":{"$in":["a","b"]}},{"name":{"$eq":{"$ne":""}}}]}
}

// An empty list of alternatives is an error, never "match everything".
func ExampleOr_empty() {
	var alternatives []query.Filter
	fmt.Println(query.Or(alternatives...).Err())
	// Output: query: And, Or, Nor, Not or ElemMatch without a filter
}

// Iter streams typed values; the error, if any, comes last. Register binds
// the type to its collection once.
func ExampleIter() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	defer query.Register[Member](client.Database("app").Collection("users"))()

	for u, err := range query.Iter[Member](ctx, query.Gte("age", 18), query.Sort(bson.D{{Key: "age", Value: 1}})) {
		if err != nil {
			log.Fatal(err) // the query's, a getMore's or a decoding error
		}
		fmt.Println(u.Name)
	}
}

// FindMany collects into a slice the caller owns; Cached serves repeats from
// the cache until a write invalidates them.
func ExampleHandle_FindMany() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	c, err := cache.New(cache.Config{MaxCost: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	users := query.From[Member](client.Database("app").Collection("users")).WithCache(c)

	adults, err := users.FindMany(ctx, query.Gte("age", 18), query.Limit(100), query.Cached(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(adults))
}

// FindOne returns ErrNotFound (which also matches mongo.ErrNoDocuments).
func ExampleHandle_FindOne() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	users := query.From[Member](client.Database("app").Collection("users"))

	u, err := users.FindOne(ctx, query.Eq("name", "Ada"))
	if errors.Is(err, query.ErrNotFound) {
		fmt.Println("no Ada")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Age)
}

// AggregateAll runs a typed aggregation; with Cached it is served from the
// cache until a write to any collection it reads.
func ExampleHandle_AggregateAll() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	type teamSize struct {
		Team string `bson:"_id"`
		N    int    `bson:"n"`
	}
	h := query.From[teamSize](client.Database("app").Collection("users"))
	sizes, err := h.AggregateAll(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$team"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "n", Value: -1}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sizes {
		fmt.Println(s.Team, s.N)
	}
}

// Distinct decodes each distinct value as a field of type V would be.
func ExampleDistinct() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	users := query.From[Member](client.Database("app").Collection("users"))
	names, err := query.Distinct[string](ctx, users, "name", query.Gte("age", 18))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(names))
}
