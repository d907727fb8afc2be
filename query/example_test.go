package query_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

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
	// Output: query: a filter that says nothing: $or of no filters
}

// Iter streams typed values; the error, if any, comes last. Register binds
// the type once, at start-up, to the collection handle that reads it.
func ExampleIter() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	members, err := odm.New[Member](client.Database("app").Collection("members"))
	if err != nil {
		log.Fatal(err)
	}
	defer query.Register[Member](members)()

	for u, err := range query.Iter[Member](ctx, query.Gte("age", 18), query.Sort(bson.D{{Key: "age", Value: 1}})) {
		if err != nil {
			log.Fatal(err) // the query's, a getMore's or a decoding error
		}
		fmt.Println(u.Name)
	}
}

// Sanitize makes a filter from untrusted JSON match literally: an operator
// under a field is compared with $eq, and operators such as $where are
// refused before anything is sent.
func ExampleSanitize() {
	var untrusted bson.M
	_ = bson.UnmarshalExtJSON([]byte(`{"name": {"$ne": ""}}`), false, &untrusted)
	raw, _ := bson.Marshal(query.Sanitize(untrusted))
	fmt.Println(bson.Raw(raw))

	var hostile bson.M
	_ = bson.UnmarshalExtJSON([]byte(`{"$where": "sleep(1000)"}`), false, &hostile)
	f := query.Sanitize(hostile)
	var oe *query.OperatorError
	if errors.As(f.Err(), &oe) {
		fmt.Println(oe.Operator)
	}
	// Output:
	// {"name": {"$eq": {"$ne": ""}}}
	// $where
}
