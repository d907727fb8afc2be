package odm_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestMapsAreJudgedAsSent: a Go map encodes in a random field order, and
// an embedded document equals another only field by field, in order. A
// document or a filter holding a map must be judged by the rules as the
// server receives it. Found by an independent tester: on 3a1c28b the
// rules encoded it a second time, in another order, and kept a cached read
// the write had changed (within 200 tries: Insert, and DeleteMany with a
// map filter, each served a stale read).
func TestMapsAreJudgedAsSent(t *testing.T) {
	type Doc struct {
		ID int    `bson:"_id"`
		MM bson.M `bson:"mm"`
	}
	e := setup(t)
	ctx := context.Background()
	coll := e.coll.Database().Collection("maps")
	docs, err := odm.New[Doc](coll, odm.WithCache(e.cache))
	require.NoError(t, err)
	fresh, err := odm.New[Doc](coll)
	require.NoError(t, err)
	abc := bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}, {Key: "c", Value: 3}}
	byValue := bson.D{{Key: "mm", Value: abc}}
	same := func(filter any, what string) bool {
		cached, err := docs.FindMany(ctx, filter, query.Cached(time.Minute))
		require.NoError(t, err)
		want, err := fresh.FindMany(ctx, filter)
		require.NoError(t, err)
		return assert.Len(t, cached, len(want), what)
	}

	// A document holding a map, inserted while a read of its value is cached.
	for id := 1; id <= 200; id++ {
		_, err := docs.FindMany(ctx, byValue, query.Cached(time.Minute))
		require.NoError(t, err)
		require.NoError(t, docs.Insert(ctx, &Doc{ID: id, MM: bson.M{"a": 1, "b": 2, "c": 3}}))
		if !same(byValue, "after Insert of a document holding a map") {
			break
		}
	}

	// A cached aggregation with a stage that holds a map, and documents
	// holding maps inserted while it is cached. (Its $match is a bson.D:
	// an equality to a map would make the query itself change order from
	// call to call.)
	require.NoError(t, coll.Drop(ctx))
	pipeline := bson.A{
		bson.D{{Key: "$match", Value: byValue}},
		bson.M{"$project": bson.M{"_id": 1, "mm": 1}},
	}
	for id := 1; id <= 100; id++ {
		_, err := odm.Aggregate[Doc](ctx, docs, pipeline, query.Cached(time.Minute))
		require.NoError(t, err)
		require.NoError(t, docs.Insert(ctx, &Doc{ID: id, MM: bson.M{"a": 1, "b": 2, "c": 3}}))
		cached, err := odm.Aggregate[Doc](ctx, docs, pipeline, query.Cached(time.Minute))
		require.NoError(t, err)
		want, err := odm.Aggregate[Doc](ctx, fresh, pipeline)
		require.NoError(t, err)
		if !assert.Len(t, cached, len(want), "after an Insert, a cached aggregation with a stage that holds a map") {
			break
		}
	}

	// Equal map filters still share an entry (the key sorts a map's
	// fields), though each call sends its own order.
	hits := e.cache.Stats().Hits
	for range 5 {
		_, err := docs.FindMany(ctx, bson.M{"_id": bson.M{"$gte": 1}, "mm": bson.M{"$exists": true}, "x": bson.M{"$exists": false}}, query.Cached(time.Minute))
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, e.cache.Stats().Hits-hits, uint64(3), "repeats of a three-field bson.M filter hit")

	// A filter holding a map, on a delete.
	for try := 1; try <= 200; try++ {
		require.NoError(t, coll.Drop(ctx))
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "mm", Value: abc}})
		require.NoError(t, err)
		_, err = docs.FindMany(ctx, bson.D{}, query.Cached(time.Minute))
		require.NoError(t, err)
		_, err = docs.DeleteMany(ctx, bson.M{"mm": bson.M{"a": 1, "b": 2, "c": 3}})
		require.NoError(t, err)
		if !same(bson.D{}, "after DeleteMany by a filter holding a map") {
			break
		}
	}
}
