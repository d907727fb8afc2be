package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/query"
)

// TestAggregate streams a typed aggregation over many batches and matches
// the driver's own Aggregate + All.
func TestAggregate(t *testing.T) {
	coll := usersColl(t, 300)
	ctx := context.Background()
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 40}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "name", Value: 1}}}},
	}
	cur, err := coll.Aggregate(ctx, pipeline)
	require.NoError(t, err)
	var want []User
	require.NoError(t, cur.All(ctx, &want))
	require.NotEmpty(t, want)

	h := query.From[User](coll)
	c, err := h.Aggregate(ctx, pipeline, query.BatchSize(7))
	require.NoError(t, err)
	got, err := c.Collect(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	all, err := h.AggregateAll(ctx, pipeline)
	require.NoError(t, err)
	assert.Equal(t, want, all)
}

// TestCachedAggregateDependsOnEveryCollectionItReads: a cached aggregation
// with a $lookup is invalidated by a write to the looked-up collection, and
// one that writes ($out) is refused.
func TestCachedAggregateDependsOnEveryCollectionItReads(t *testing.T) {
	coll := usersColl(t, 5)
	ctx := context.Background()
	orders := coll.Database().Collection("orders")
	_, err := orders.InsertOne(ctx, bson.D{{Key: "n", Value: 1}})
	require.NoError(t, err)
	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	type withOrders struct {
		Name   string   `bson:"name"`
		Orders []bson.M `bson:"orders"`
	}
	h := query.From[withOrders](coll).WithCache(c)
	pipeline := mongo.Pipeline{
		{{Key: "$limit", Value: 1}},
		{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}, {Key: "as", Value: "orders"}}}},
	}
	_, err = h.AggregateAll(ctx, mongo.Pipeline{{{Key: "$out", Value: "copy"}}}, query.Cached(time.Hour))
	require.ErrorIs(t, err, query.ErrUncacheable, "a pipeline that writes is never cached")
	read := func() int {
		got, err := h.AggregateAll(ctx, pipeline, query.Cached(time.Hour))
		if err != nil {
			t.Skipf("NOT RUN: the server refuses $lookup (%v); cache.TestAlsoDependencies covers the invalidation", err)
		}
		require.Len(t, got, 1)
		return len(got[0].Orders)
	}
	require.Equal(t, 1, read())
	before := c.Stats().Hits
	require.Equal(t, 1, read())
	assert.Equal(t, before+1, c.Stats().Hits, "a hit")
	_, err = orders.InsertOne(ctx, bson.D{{Key: "n", Value: 2}})
	require.NoError(t, err)
	c.Invalidate(coll.Database().Name(), "orders") // what odm or the observer does
	assert.Equal(t, 2, read(), "a write to the looked-up collection invalidates the entry")
}
