package odm_test

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
	fmt.Println(res.Matched, res.Modified)
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
	res, err := accounts().BulkWrite(ctx, []odm.WriteModel{
		odm.InsertModel(&newcomer),
		odm.UpdateManyModel(query.Eq("plan", "trial"), bson.D{{Key: "$set", Value: bson.D{{Key: "plan", Value: "free"}}}}),
		odm.DeleteOneModel(query.Eq("email", "gone@example.com")),
	}, odm.Unordered())
	var be *odm.BulkError
	if errors.As(err, &be) {
		fmt.Println("applied", be.Written, "rejected", len(be.Failed))
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Inserted, res.Modified, res.Deleted)
}
