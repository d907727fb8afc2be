package testdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/databridge-go/databridge/internal/testdb"
)

// TestFerretDBGaps pins every known wrong answer and missing feature of the
// dev server (FerretDB v1.24.2, SQLite) to what it does today, so that an
// upgrade that changes one fails here and docs/ferretdb.md, which lists
// each with MongoDB's answer, is updated with it. Against a real MongoDB
// (MONGODB_URI), each subtest checks MongoDB's answer instead, where that
// needs no replica set.
func TestFerretDBGaps(t *testing.T) {
	ferret := testdb.IsFerretDB(t)
	db := testdb.DB(t)
	ctx := context.Background()
	orders := db.Collection("orders")
	_, err := orders.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "tenant", Value: "a"}, {Key: "price", Value: 10}, {Key: "qty", Value: 2},
			{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "x"}}, bson.D{{Key: "sku", Value: "y"}}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "tenant", Value: "a"}, {Key: "price", Value: 5}, {Key: "qty", Value: 3}},
	})
	require.NoError(t, err)
	aggregate := func(t *testing.T, stages ...bson.D) ([]bson.M, error) {
		t.Helper()
		cur, err := orders.Aggregate(ctx, stages)
		if err != nil {
			return nil, err
		}
		var out []bson.M
		return out, cur.All(ctx, &out)
	}
	group := func(acc ...bson.E) bson.D {
		return bson.D{{Key: "$group", Value: append(bson.D{{Key: "_id", Value: "$tenant"}}, acc...)}}
	}
	sum := func(name string, of any) bson.E { return bson.E{Key: name, Value: bson.D{{Key: "$sum", Value: of}}} }

	t.Run("$group with two accumulators", func(t *testing.T) {
		out, err := aggregate(t, group(sum("total", "$price"), sum("n", 1)))
		require.NoError(t, err)
		require.Len(t, out, 1)
		assert.EqualValues(t, 15, out[0]["total"])
		if ferret {
			assert.EqualValues(t, 0, out[0]["n"], "FerretDB computes the first accumulator only; the others are 0")
		} else {
			assert.EqualValues(t, 2, out[0]["n"])
		}
		out, err = aggregate(t, group(sum("n", 1), sum("total", "$price")))
		require.NoError(t, err)
		if ferret {
			assert.EqualValues(t, 0, out[0]["total"], "FerretDB: $sum of $price after another accumulator is 0")
		} else {
			assert.EqualValues(t, 15, out[0]["total"])
		}
	})
	for _, acc := range []string{"$avg", "$min", "$max", "$first", "$last", "$push"} {
		t.Run("$group "+acc, func(t *testing.T) {
			_, err := aggregate(t, group(bson.E{Key: "v", Value: bson.D{{Key: acc, Value: "$price"}}}))
			if ferret {
				assertNotImplemented(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
	t.Run("expression operators", func(t *testing.T) {
		_, err := aggregate(t, bson.D{{Key: "$project", Value: bson.D{{Key: "v", Value: bson.D{{Key: "$multiply", Value: bson.A{"$price", "$qty"}}}}}}})
		if ferret {
			assertNotImplemented(t, err)
		} else {
			assert.NoError(t, err)
		}
	})
	for _, stage := range []bson.D{
		{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "other"}, {Key: "localField", Value: "tenant"}, {Key: "foreignField", Value: "t"}, {Key: "as", Value: "o"}}}},
		{{Key: "$facet", Value: bson.D{{Key: "n", Value: bson.A{bson.D{{Key: "$count", Value: "n"}}}}}}},
		{{Key: "$out", Value: "copy"}},
	} {
		t.Run("stage "+stage[0].Key, func(t *testing.T) {
			_, err := aggregate(t, stage)
			if ferret {
				assertNotImplemented(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
	t.Run("$elemMatch on an array of documents", func(t *testing.T) {
		n, err := orders.CountDocuments(ctx, bson.D{{Key: "items", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "sku", Value: "y"}}}}}})
		require.NoError(t, err)
		if ferret {
			assert.Zero(t, n, "FerretDB matches no array of documents with $elemMatch")
		} else {
			assert.EqualValues(t, 1, n)
		}
	})
	// Matching semantics found by internal/match.TestMatchesTheServer.
	sem := db.Collection("semantics")
	_, err = sem.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "g", Value: bson.A{1, bson.D{{Key: "x", Value: 1}}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "h", Value: bson.A{bson.D{{Key: "y", Value: false}}, bson.D{{Key: "y", Value: -1}}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "c", Value: bson.D{{Key: "x", Value: 1}}}},
	})
	require.NoError(t, err)
	idsOf := func(t *testing.T, coll *mongo.Collection, filter bson.D) []int {
		t.Helper()
		cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		require.NoError(t, err)
		var out []struct {
			ID int `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &out))
		got := []int{}
		for _, d := range out {
			got = append(got, d.ID)
		}
		return got
	}
	ids := func(t *testing.T, filter bson.D) []int {
		t.Helper()
		return idsOf(t, sem, filter)
	}
	t.Run("a document equal to an array's element", func(t *testing.T) {
		got := ids(t, bson.D{{Key: "g", Value: bson.D{{Key: "x", Value: 1}}}})
		if ferret {
			assert.Empty(t, got, "FerretDB's equality of a document does not look into arrays")
		} else {
			assert.Equal(t, []int{1}, got)
		}
	})
	t.Run("$ne through an array of documents", func(t *testing.T) {
		got := ids(t, bson.D{{Key: "h.y", Value: bson.D{{Key: "$ne", Value: false}}}})
		if ferret {
			assert.Equal(t, []int{1, 2, 3}, got, "FerretDB negates element by element: h.y holds false, yet document 2 matches")
		} else {
			assert.Equal(t, []int{1, 3}, got)
		}
	})
	t.Run("$nin and $not through an array of documents", func(t *testing.T) {
		for _, filter := range []bson.D{
			{{Key: "h.y", Value: bson.D{{Key: "$nin", Value: bson.A{false}}}}},
			{{Key: "h.y", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$eq", Value: false}}}}}},
		} {
			got := ids(t, filter)
			if ferret {
				assert.Equal(t, []int{1, 2, 3}, got, "FerretDB negates element by element: h.y holds false, yet document 2 matches (%v)", filter)
			} else {
				assert.Equal(t, []int{1, 3}, got, "%v", filter)
			}
		}
	})
	// An array of documents only, against a literal document.
	docs := db.Collection("docarrays")
	_, err = docs.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.A{bson.D{{Key: "x", Value: 1}}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: bson.D{{Key: "x", Value: 1}}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "a", Value: bson.A{bson.D{{Key: "x", Value: 2}}}}},
	})
	require.NoError(t, err)
	x1 := bson.D{{Key: "x", Value: 1}}
	t.Run("a document equal to an element of an array of documents", func(t *testing.T) {
		for _, filter := range []bson.D{
			{{Key: "a", Value: x1}},
			{{Key: "a", Value: bson.D{{Key: "$eq", Value: x1}}}},
			{{Key: "a", Value: bson.D{{Key: "$in", Value: bson.A{x1}}}}},
		} {
			got := idsOf(t, docs, filter)
			if ferret {
				assert.Equal(t, []int{2}, got, "FerretDB matches only an a that is the document, not [{x: 1}] (%v)", filter)
			} else {
				assert.Equal(t, []int{1, 2}, got, "%v", filter)
			}
		}
		for _, filter := range []bson.D{
			{{Key: "a", Value: bson.D{{Key: "$ne", Value: x1}}}},
			{{Key: "a", Value: bson.D{{Key: "$nin", Value: bson.A{x1}}}}},
		} {
			got := idsOf(t, docs, filter)
			if ferret {
				assert.Equal(t, []int{1, 3}, got, "FerretDB: [{x: 1}] is not equal to {x: 1}, so its negation matches it (%v)", filter)
			} else {
				assert.Equal(t, []int{3}, got, "%v", filter)
			}
		}
	})
	t.Run("$exists of a number", func(t *testing.T) {
		ex := db.Collection("exists")
		_, err := ex.InsertMany(ctx, []any{
			bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}},
			bson.D{{Key: "_id", Value: 2}, {Key: "b", Value: 1}},
		})
		require.NoError(t, err)
		exists := func(v any) bson.D { return bson.D{{Key: "a", Value: bson.D{{Key: "$exists", Value: v}}}} }
		assert.Equal(t, []int{2}, idsOf(t, ex, exists(false)), "a boolean is right")
		assert.Equal(t, []int{1}, idsOf(t, ex, exists(true)), "a boolean is right")
		got0, got1 := idsOf(t, ex, exists(0)), idsOf(t, ex, exists(1))
		if ferret {
			assert.Equal(t, []int{1, 2}, got0, "FerretDB: $exists of any value but a boolean matches every document")
			assert.Equal(t, []int{1, 2}, got1, "FerretDB: $exists of any value but a boolean matches every document")
		} else {
			assert.Equal(t, []int{2}, got0, "0 is false: the documents without a")
			assert.Equal(t, []int{1}, got1, "1 is true: the documents with a")
		}
	})
	t.Run("$all of a document", func(t *testing.T) {
		all := bson.D{{Key: "$all", Value: bson.A{bson.D{{Key: "x", Value: 1}}}}}
		assert.Equal(t, []int{3}, ids(t, bson.D{{Key: "c", Value: bson.D{{Key: "x", Value: 1}}}}), "plain equality matches")
		got := ids(t, bson.D{{Key: "c", Value: all}})
		if ferret {
			assert.Empty(t, got, "FerretDB's $all of a document matches nothing")
		} else {
			assert.Equal(t, []int{3}, got)
		}
	})
	// An upsert's new document, as MongoDB documents it: the filter's
	// equality conditions, those under $and too (an _id among them is the
	// document's _id), then the update applied to them, $setOnInsert
	// included: a $setOnInsert of null sets the field to null.
	upserts := db.Collection("upserts")
	upsert := func(t *testing.T, filter, update bson.D) bson.M {
		t.Helper()
		res, err := upserts.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
		require.NoError(t, err)
		require.EqualValues(t, 1, res.UpsertedCount, "a new document")
		var got bson.M
		require.NoError(t, upserts.FindOne(ctx, bson.D{{Key: "_id", Value: res.UpsertedID}}).Decode(&got))
		return got
	}
	t.Run("upsert with equalities under $and", func(t *testing.T) {
		setY := bson.D{{Key: "$set", Value: bson.D{{Key: "y", Value: 1}}}}
		got := upsert(t, bson.D{{Key: "k", Value: "top"}, {Key: "x", Value: 1}}, setY)
		delete(got, "_id")
		assert.Equal(t, bson.M{"k": "top", "x": int32(1), "y": int32(1)}, got, "top-level equalities are copied")

		got = upsert(t, bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "k", Value: "and"}}, bson.D{{Key: "x", Value: bson.D{{Key: "$eq", Value: 1}}}}}}}, setY)
		delete(got, "_id")
		if ferret {
			assert.Equal(t, bson.M{"y": int32(1)}, got, "FerretDB copies no equality under $and into the new document")
		} else {
			assert.Equal(t, bson.M{"k": "and", "x": int32(1), "y": int32(1)}, got)
		}

		got = upsert(t, bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "_id", Value: 7}}, bson.D{{Key: "x", Value: 1}}}}}, setY)
		if ferret {
			assert.IsType(t, bson.ObjectID{}, got["_id"], "FerretDB ignores an _id under $and: the new document gets an ObjectID")
			delete(got, "_id")
			assert.Equal(t, bson.M{"y": int32(1)}, got, "FerretDB copies no equality under $and into the new document")
		} else {
			assert.Equal(t, bson.M{"_id": int32(7), "x": int32(1), "y": int32(1)}, got)
		}
	})
	t.Run("upsert with a $setOnInsert of null", func(t *testing.T) {
		got := upsert(t, bson.D{{Key: "k", Value: "set"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: nil}}}})
		delete(got, "_id")
		assert.Equal(t, bson.M{"k": "set", "v": nil}, got, "a $set of null sets the field to null")

		got = upsert(t, bson.D{{Key: "k", Value: "onInsert"}}, bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "v", Value: nil}, {Key: "m.t", Value: nil}, {Key: "w", Value: 1}}}})
		delete(got, "_id")
		if ferret {
			assert.Equal(t, bson.M{"k": "onInsert", "w": int32(1)}, got, "FerretDB leaves out the fields a $setOnInsert sets to null")
		} else {
			assert.Equal(t, bson.M{"k": "onInsert", "v": nil, "m": bson.D{{Key: "t", Value: nil}}, "w": int32(1)}, got)
		}
	})
	t.Run("upsert with a $setOnInsert of an empty array", func(t *testing.T) {
		got := upsert(t, bson.D{{Key: "k", Value: "empty"}}, bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "k", Value: bson.A{}}, {Key: "v", Value: bson.A{}}, {Key: "w", Value: bson.A{1}}}}})
		delete(got, "_id")
		if ferret {
			assert.Equal(t, bson.M{"k": "empty", "w": bson.A{int32(1)}}, got,
				"FerretDB leaves out the fields a $setOnInsert sets to an empty array, and keeps the filter's value of k")
		} else {
			assert.Equal(t, bson.M{"k": bson.A{}, "v": bson.A{}, "w": bson.A{int32(1)}}, got, "the update's value of k, not the filter's")
		}
	})
	t.Run("nested arrays", func(t *testing.T) {
		_, err := sem.InsertOne(ctx, bson.D{{Key: "_id", Value: 4}, {Key: "n", Value: bson.A{bson.A{1}}}})
		if ferret {
			assert.ErrorContains(t, err, "nested arrays are not supported")
		} else {
			assert.NoError(t, err)
		}
	})
	t.Run("arrayFilters", func(t *testing.T) {
		_, err := orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "items.$[i].sku", Value: "z"}}}},
			options.UpdateOne().SetArrayFilters([]any{bson.D{{Key: "i.sku", Value: "x"}}}))
		if ferret {
			assertNotImplemented(t, err)
		} else {
			assert.NoError(t, err)
		}
	})
	t.Run("findAndModify projection", func(t *testing.T) {
		var got bson.M
		err := orders.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "qty", Value: 0}}}},
			options.FindOneAndUpdate().SetProjection(bson.D{{Key: "price", Value: 1}})).Decode(&got)
		if ferret {
			assertNotImplemented(t, err)
		} else {
			require.NoError(t, err)
			assert.NotContains(t, got, "qty")
		}
	})
	t.Run("maxTimeMS on writes", func(t *testing.T) {
		docs := make([]any, 500)
		for i := range docs {
			docs[i] = bson.D{{Key: "i", Value: i}}
		}
		bulk := db.Collection("bulk")
		_, err := bulk.InsertMany(ctx, docs)
		require.NoError(t, err)
		err = db.RunCommand(ctx, bson.D{{Key: "update", Value: "bulk"}, {Key: "updates", Value: bson.A{bson.D{
			{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "i", Value: 1}}}}}, {Key: "multi", Value: true},
		}}}, {Key: "maxTimeMS", Value: 1}}).Err()
		if ferret {
			assert.NoError(t, err, "FerretDB ignores maxTimeMS on writes: the update runs to the end")
		} else {
			var ce mongo.CommandError
			if err != nil {
				require.ErrorAs(t, err, &ce)
				assert.EqualValues(t, 50, ce.Code, "MaxTimeMSExpired")
			}
		}
	})
	t.Run("transactions", func(t *testing.T) {
		if !ferret {
			t.Skip("NOT RUN: pins FerretDB's behavior; transactions need a replica set")
		}
		sess, err := testdb.Client(t).StartSession()
		require.NoError(t, err)
		defer sess.EndSession(ctx)
		_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
			return orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}})
		})
		assert.Error(t, err, "FerretDB v1.24 has no transactions")
	})
	t.Run("change streams", func(t *testing.T) {
		if !ferret {
			t.Skip("NOT RUN: pins FerretDB's behavior; change streams need a replica set")
		}
		_, err := orders.Watch(ctx, mongo.Pipeline{})
		assert.Error(t, err, "FerretDB v1.24 has no change streams")
	})
	t.Run("capped collections never shrink", func(t *testing.T) {
		require.NoError(t, db.CreateCollection(ctx, "capped", options.CreateCollection().SetCapped(true).SetSizeInBytes(4096)))
		capped := db.Collection("capped")
		for i := range 200 {
			_, err := capped.InsertOne(ctx, bson.D{{Key: "i", Value: i}, {Key: "pad", Value: "0123456789012345678901234567890123456789"}})
			require.NoError(t, err)
		}
		n, err := capped.CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		if ferret {
			assert.EqualValues(t, 200, n, "the embedded server never trims a capped collection")
		} else {
			assert.Less(t, n, int64(200), "4 KiB hold fewer than 200 of these")
		}
	})
	t.Run("tailable cursor with a short first batch", func(t *testing.T) {
		capped := db.Collection("capped")
		cur, err := capped.Find(ctx, bson.D{}, options.Find().SetCursorType(options.Tailable).SetBatchSize(1000))
		require.NoError(t, err)
		defer cur.Close(ctx)
		if ferret {
			assert.Zero(t, cur.ID(), "FerretDB closes a tailable cursor whose first batch is smaller than its batch size")
		} else {
			assert.NotZero(t, cur.ID())
		}
	})
	t.Run("buildInfo", func(t *testing.T) {
		raw, err := db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
		require.NoError(t, err)
		if !ferret {
			t.Skip("NOT RUN: pins FerretDB's report")
		}
		assert.Equal(t, "7.0.42", raw.Lookup("version").StringValue(), "FerretDB claims MongoDB 7.0 compatibility")
		assert.Equal(t, "unknown", raw.Lookup("ferretdbVersion").StringValue(), "embedded builds carry no version")
	})
	// The two hazards below break the connection they run on: each gets a
	// client of its own.
	t.Run("unacknowledged write", func(t *testing.T) {
		if !ferret {
			t.Skip("NOT RUN: pins FerretDB's behavior")
		}
		cl := testdb.NewClient(t, options.Client().SetMaxPoolSize(1))
		coll := cl.Database(db.Name()).Collection("orders")
		w0 := cl.Database(db.Name()).Collection("orders", options.Collection().SetWriteConcern(writeconcern.Unacknowledged()))
		_, err := w0.InsertOne(ctx, bson.D{{Key: "_id", Value: 100}})
		require.NoError(t, err)
		err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Err()
		assert.ErrorContains(t, err, "does not contain a cursor", "FerretDB answers the w:0 insert, and the reply is read as the find's")
		var got struct {
			ID int `bson:"_id"`
		}
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&got))
		assert.Equal(t, 1, got.ID, "the connection is a reply behind: FindOne(_id 2) returns document 1")
	})
	t.Run("Decimal128", func(t *testing.T) {
		if !ferret {
			t.Skip("NOT RUN: pins FerretDB's behavior")
		}
		cl := testdb.NewClient(t)
		d, err := bson.ParseDecimal128("1.5")
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = cl.Database(db.Name()).Collection("orders").InsertOne(wctx, bson.D{{Key: "d", Value: d}})
		require.Error(t, err)
		assert.True(t, mongo.IsNetworkError(err), "FerretDB closes the connection on a Decimal128: %v", err)
	})
}

func assertNotImplemented(t *testing.T, err error) {
	t.Helper()
	var se mongo.ServerError
	if assert.True(t, errors.As(err, &se), "want FerretDB's NotImplemented, got %v", err) {
		assert.True(t, se.HasErrorCode(238), "want FerretDB's NotImplemented (238), got %v", err)
	}
}
