package benchdata

// The peer: the official driver used idiomatically, as its documentation and
// most Go services use it. Every benchmark that compares databridge with the
// driver (this module's and the bench module's compare command) takes the
// driver's side from here. Reviewed for fairness: filters and options are
// built once outside the timed region, the connection settings are the same
// client as databridge's, the documents are the same types and values, and
// no step does work the driver does not need.
//
// Each Driver function returns an op: ctx, and i, the op's sequence number
// (it numbers the fresh documents a write generates; reads ignore it).

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Op is one benchmarked operation; i is its sequence number.
type Op func(ctx context.Context, i int) error

// The filter and update both sides of a comparison send.
var (
	Everything = bson.D{}                                                     // every document
	IncAge     = bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}} // increments Small.Age
)

// Count reports an op that got a different number of documents than it
// wanted.
func Count(got, want int) error {
	if got != want {
		return fmt.Errorf("got %d documents, want %d", got, want)
	}
	return nil
}

// DriverInsertOne inserts one fresh document with InsertOne.
func DriverInsertOne(coll *mongo.Collection) Op {
	return func(ctx context.Context, i int) error {
		u := NewSmall(i)
		_, err := coll.InsertOne(ctx, &u)
		return err
	}
}

// DriverInsertMany inserts n fresh documents given as []Small.
func DriverInsertMany(coll *mongo.Collection, n int) Op {
	return func(ctx context.Context, i int) error {
		_, err := coll.InsertMany(ctx, NewSmalls(i*n, n))
		return err
	}
}

// DriverFindAll reads every document with Find and cursor.All into a new
// []T.
func DriverFindAll[T any](coll *mongo.Collection, want int) Op {
	return func(ctx context.Context, _ int) error {
		cur, err := coll.Find(ctx, Everything)
		if err != nil {
			return err
		}
		var out []T
		if err := cur.All(ctx, &out); err != nil {
			return err
		}
		return Count(len(out), want)
	}
}

// DriverFindUnmarshal reads every document with Next and bson.Unmarshal
// into a new T each, appended to a new []T.
func DriverFindUnmarshal[T any](coll *mongo.Collection, want int) Op {
	return func(ctx context.Context, _ int) error {
		cur, err := coll.Find(ctx, Everything)
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		var out []T
		for cur.Next(ctx) {
			var v T
			if err := bson.Unmarshal(cur.Current, &v); err != nil {
				return err
			}
			out = append(out, v)
		}
		if err := cur.Err(); err != nil {
			return err
		}
		return Count(len(out), want)
	}
}

// DriverStream iterates with Next and Decode into one reused value, keeping
// nothing: the driver's streaming idiom.
func DriverStream[T any](coll *mongo.Collection, want int) Op {
	return func(ctx context.Context, _ int) error {
		cur, err := coll.Find(ctx, Everything)
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
		return Count(n, want)
	}
}

// DriverRaw walks every document's raw bytes without decoding them: the
// round-trip floor that no library on the driver can go below.
func DriverRaw(coll *mongo.Collection, want int) Op {
	return func(ctx context.Context, _ int) error {
		cur, err := coll.Find(ctx, Everything)
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		n := 0
		for cur.Next(ctx) {
			n++
		}
		if err := cur.Err(); err != nil {
			return err
		}
		return Count(n, want)
	}
}

// DriverUpdateMany increments a field of every document and checks that
// want documents matched.
func DriverUpdateMany(coll *mongo.Collection, want int) Op {
	return func(ctx context.Context, _ int) error {
		res, err := coll.UpdateMany(ctx, Everything, IncAge)
		if err != nil {
			return err
		}
		return Count(int(res.MatchedCount), want)
	}
}

// DriverBulkSave upserts n fresh documents by _id in one BulkWrite.
func DriverBulkSave(coll *mongo.Collection, n int) Op {
	return func(ctx context.Context, i int) error {
		docs := NewSmalls(i*n, n)
		models := make([]mongo.WriteModel, len(docs))
		for k := range docs {
			models[k] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: docs[k].ID}}).SetReplacement(&docs[k]).SetUpsert(true)
		}
		_, err := coll.BulkWrite(ctx, models)
		return err
	}
}
