package compare

// The peer: the official driver used idiomatically, as its documentation and
// most Go services use it. Reviewed for fairness: filters and options are
// built once outside the timed region, the connection settings are the same
// client as databridge's (one shared *mongo.Client), the documents are the
// same types and values, and no step does work the driver does not need.

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/benchdata"
)

var (
	everything = bson.D{}
	incAge     = bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}}
)

// driverInsertOne inserts one fresh document with InsertOne.
func driverInsertOne(coll *mongo.Collection) func(context.Context, int) error {
	return func(ctx context.Context, i int) error {
		u := benchdata.NewSmall(i)
		_, err := coll.InsertOne(ctx, &u)
		return err
	}
}

// driverInsertMany inserts 1000 fresh documents given as []Small.
func driverInsertMany(coll *mongo.Collection, n int) func(context.Context, int) error {
	return func(ctx context.Context, i int) error {
		docs := make([]benchdata.Small, n)
		for k := range docs {
			docs[k] = benchdata.NewSmall(i*n + k)
		}
		_, err := coll.InsertMany(ctx, docs)
		return err
	}
}

// driverFindAll reads every document with Find and cursor.All.
func driverFindAll[T any](coll *mongo.Collection, want int) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		cur, err := coll.Find(ctx, everything)
		if err != nil {
			return err
		}
		var out []T
		if err := cur.All(ctx, &out); err != nil {
			return err
		}
		return count(len(out), want)
	}
}

// driverStream iterates with Next and Decode into one reused value, keeping
// nothing: the driver's streaming idiom.
func driverStream[T any](coll *mongo.Collection, want int) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		cur, err := coll.Find(ctx, everything)
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		var v T
		n := 0
		for cur.Next(ctx) {
			if err := cur.Decode(&v); err != nil {
				return err
			}
			n++
		}
		if err := cur.Err(); err != nil {
			return err
		}
		return count(n, want)
	}
}

// driverUpdateMany increments a field of every document.
func driverUpdateMany(coll *mongo.Collection, want int64) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		res, err := coll.UpdateMany(ctx, everything, incAge)
		if err != nil {
			return err
		}
		return count(int(res.MatchedCount), int(want))
	}
}

// driverBulkSave upserts 1000 documents by _id in one BulkWrite.
func driverBulkSave(coll *mongo.Collection, n int) func(context.Context, int) error {
	return func(ctx context.Context, i int) error {
		docs := make([]benchdata.Small, n)
		for k := range docs {
			docs[k] = benchdata.NewSmall(i*n + k)
		}
		models := make([]mongo.WriteModel, len(docs))
		for k := range docs {
			models[k] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: docs[k].ID}}).SetReplacement(&docs[k]).SetUpsert(true)
		}
		_, err := coll.BulkWrite(ctx, models)
		return err
	}
}

func count(got, want int) error {
	if got != want {
		return fmt.Errorf("got %d documents, want %d", got, want)
	}
	return nil
}
