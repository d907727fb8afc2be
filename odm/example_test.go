package odm_test

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
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

type Account struct {
	ID    bson.ObjectID `bson:"_id"`
	Email string        `bson:"email"`
	Plan  string        `bson:"plan"`
}

func accounts() *odm.Collection[Account] {
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")))
	if err != nil {
		log.Fatal(err)
	}
	c, err := odm.New[Account](client.Database("app").Collection("accounts"))
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// Save inserts a document with a zero ObjectID (filling in its _id) and
// upserts it by _id afterwards.
func ExampleCollection_Save() {
	ctx := context.Background()
	accts := accounts()
	a := Account{Email: "ada@example.com", Plan: "free"}
	if err := accts.Save(ctx, &a); err != nil {
		log.Fatal(err)
	}
	a.Plan = "pro"
	if err := accts.Save(ctx, &a); err != nil { // by a.ID now
		log.Fatal(err)
	}
	fmt.Println(!a.ID.IsZero())
}

// A bulk write that does not write everything says which documents were
// written, rejected, or sent without a reply.
func ExampleCollection_InsertMany() {
	ctx := context.Background()
	batch := []Account{{Email: "a@x"}, {Email: "b@x"}}
	err := accounts().InsertMany(ctx, batch, odm.Unordered())
	var be *odm.BulkError
	if errors.As(err, &be) {
		fmt.Println("written", be.Written, "rejected", len(be.Failed), "unknown", be.Unknown)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
}

// UpdateMany and DeleteOne take filters; Upsert inserts when none matches.
func ExampleCollection_UpdateMany() {
	ctx := context.Background()
	res, err := accounts().UpdateMany(ctx, query.Eq("plan", "trial"),
		bson.D{{Key: "$set", Value: bson.D{{Key: "plan", Value: "free"}}}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.MatchedCount, res.ModifiedCount)
}

// EnsureIndexes creates what the model declares (Indexer) and can run at
// every start-up; an index that exists in another form is a typed error.
func ExampleCollection_EnsureIndexes() {
	err := accounts().EnsureIndexes(context.Background())
	var conflict *odm.IndexConflictError
	if errors.As(err, &conflict) {
		log.Printf("index %v: %v", conflict.Index.Keys, conflict.Err)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
}

// BulkWrite sends mixed models in one round trip; hooks and validation run
// for the documents, and a partial failure says which models were applied.
func ExampleCollection_BulkWrite() {
	ctx := context.Background()
	newcomer := Account{Email: "grace@example.com", Plan: "free"}
	res, err := accounts().BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewInsertOneModel().SetDocument(&newcomer),
		mongo.NewUpdateManyModel().SetFilter(query.Eq("plan", "trial")).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "plan", Value: "free"}}}}),
		mongo.NewDeleteOneModel().SetFilter(query.Eq("email", "gone@example.com")),
	}, odm.Unordered())
	var be *odm.BulkError
	if errors.As(err, &be) {
		fmt.Println("applied", be.Written, "rejected", len(be.Failed))
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.InsertedCount, res.ModifiedCount, res.DeletedCount)
}

// FindMany collects into a slice the caller owns; with query.Cached,
// repeats are served from the collection's cache until a write invalidates
// them.
func ExampleCollection_FindMany() {
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
	accounts, err := odm.New[Account](client.Database("app").Collection("accounts"), odm.WithCache(c))
	if err != nil {
		log.Fatal(err)
	}
	pro, err := accounts.FindMany(ctx, query.Eq("plan", "pro"), query.Limit(100), query.Cached(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(pro))
}

// FindOne returns query.ErrNotFound (which also matches
// mongo.ErrNoDocuments) when nothing matches.
func ExampleCollection_FindOne() {
	a, err := accounts().FindOne(context.Background(), query.Eq("email", "ada@example.com"))
	if errors.Is(err, query.ErrNotFound) {
		fmt.Println("no such account")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Plan)
}

// Aggregate decodes a pipeline's results into a type of their own, here a
// $group's output; with query.Cached it is served from the cache until a
// write to any collection the pipeline reads.
func ExampleAggregate() {
	type planSize struct {
		Plan string `bson:"_id"`
		N    int    `bson:"n"`
	}
	sizes, err := odm.Aggregate[planSize](context.Background(), accounts(), mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$plan"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "n", Value: -1}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sizes {
		fmt.Println(s.Plan, s.N)
	}
}

// Distinct decodes each distinct value as a field of type V would be.
func ExampleDistinct() {
	plans, err := odm.Distinct[string](context.Background(), accounts(), "plan", bson.D{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plans)
}

// A collection whose client (or database, or collection) was made with a
// registry or BSON options of its own declares them: reads then decode,
// and writes store, what the driver does with them.
func ExampleWithBSON() {
	reg := bson.NewRegistry()
	bsonOpts := &options.BSONOptions{UseLocalTimeZone: true}
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")).SetRegistry(reg).SetBSONOptions(bsonOpts))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if _, err := odm.New[Account](client.Database("app").Collection("accounts"), odm.WithBSON(reg, bsonOpts)); err != nil {
		log.Fatal(err)
	}
}

// A handle whose writes by _id carry the document's prior values to the
// cache: a status change of one order keeps the cached lists of every
// other tenant (docs/caching.md, "Pre-images").
func ExampleWithPreImages() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URI")).SetMonitor(cache.Observer(nil)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	c, err := cache.New(cache.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	type Order struct {
		ID     int    `bson:"_id"`
		Tenant string `bson:"tenant"`
		Status string `bson:"status"`
	}
	orders, err := odm.New[Order](client.Database("app").Collection("orders"), odm.WithCache(c), odm.WithPreImages())
	if err != nil {
		log.Fatal(err)
	}
	paid, err := orders.FindMany(ctx, bson.D{{Key: "tenant", Value: "t1"}, {Key: "status", Value: "paid"}},
		query.Sort(bson.D{{Key: "_id", Value: 1}}), query.Cached(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	// Order 42 belongs to another tenant: its pre-image says so, and the
	// list above stays cached.
	if _, err := orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: 42}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "paid"}}}}); err != nil {
		log.Fatal(err)
	}
	s := c.Stats()
	fmt.Println(len(paid), s.Held, s.Released)
}
