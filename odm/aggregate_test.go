package odm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Person is a read model: no hooks, ages 20..69.
type Person struct {
	ID   int    `bson:"_id"`
	Name string `bson:"name"`
	Team string `bson:"team"`
	Age  int    `bson:"age"`
}

// people seeds n Persons {_id: i, name: "pNNN", team: "t" + i%3, age: 20 + i%50}.
func people(t *testing.T, n int) *mongo.Collection {
	t.Helper()
	coll := testdb.DB(t).Collection("people")
	docs := make([]any, n)
	for i := range docs {
		docs[i] = Person{ID: i, Name: fmt.Sprintf("p%03d", i), Team: fmt.Sprintf("t%d", i%3), Age: 20 + i%50}
	}
	_, err := coll.InsertMany(context.Background(), docs)
	require.NoError(t, err)
	return coll
}

// TestAggregate streams a typed aggregation over many batches and matches
// the driver's own Aggregate + All, collected and as a cursor.
func TestAggregate(t *testing.T) {
	coll := people(t, 300)
	ctx := context.Background()
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 40}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "name", Value: 1}}}},
	}
	cur, err := coll.Aggregate(ctx, pipeline)
	require.NoError(t, err)
	var want []Person
	require.NoError(t, cur.All(ctx, &want))
	require.NotEmpty(t, want)

	h := handle[Person](t, coll)
	c, err := odm.AggregateCursor[Person](ctx, h, pipeline, query.BatchSize(7))
	require.NoError(t, err)
	got, err := c.AppendAll(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	all, err := odm.Aggregate[Person](ctx, h, pipeline)
	require.NoError(t, err)
	assert.Equal(t, want, all)
}

// TestAggregateIntoAnotherType: a $group's output decodes into a type of
// its own, cached or not.
func TestAggregateIntoAnotherType(t *testing.T) {
	coll := people(t, 30)
	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	h := handle[Person](t, coll, odm.WithCache(c))
	type teamSize struct {
		Team string `bson:"_id"`
		N    int    `bson:"n"`
	}
	pipeline := mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$team"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	}
	for _, opts := range [][]query.ReadOption{nil, {query.Cached(time.Minute)}, {query.Cached(time.Minute)}} {
		got, err := odm.Aggregate[teamSize](context.Background(), h, pipeline, opts...)
		require.NoError(t, err)
		assert.Equal(t, []teamSize{{"t0", 10}, {"t1", 10}, {"t2", 10}}, got)
	}
	assert.EqualValues(t, 1, c.Stats().Hits, "the second cached aggregation is a hit")
}

// TestCachedAggregateDependsOnEveryCollectionItReads: a cached aggregation
// with a $lookup is invalidated by a write to the looked-up collection, and
// one that writes ($out) is refused.
func TestCachedAggregateDependsOnEveryCollectionItReads(t *testing.T) {
	coll := people(t, 5)
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
	h := handle[Person](t, coll, odm.WithCache(c))
	pipeline := mongo.Pipeline{
		{{Key: "$limit", Value: 1}},
		{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}, {Key: "as", Value: "orders"}}}},
	}
	_, err = odm.Aggregate[Person](ctx, h, mongo.Pipeline{{{Key: "$out", Value: "copy"}}}, query.Cached(time.Hour))
	require.ErrorIs(t, err, query.ErrUncacheable, "a pipeline that writes is never cached")
	read := func() int {
		got, err := odm.Aggregate[withOrders](ctx, h, pipeline, query.Cached(time.Hour))
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

func TestDistinctAndEstimatedCount(t *testing.T) {
	h := handle[Person](t, people(t, 100)) // ages 20..69, twice each
	ctx := context.Background()
	ages, err := odm.Distinct[int](ctx, h, "age", query.Lt("age", 25))
	require.NoError(t, err)
	assert.ElementsMatch(t, []int{20, 21, 22, 23, 24}, ages)
	names, err := odm.Distinct[string](ctx, h, "name", query.Eq("age", 20))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"p000", "p050"}, names)
	_, err = odm.Distinct[bson.ObjectID](ctx, h, "name", nil)
	assert.ErrorIs(t, err, decode.ErrTypeMismatch, "a value that does not fit V is an error naming it")
	n, err := h.EstimatedCount(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 100, n)
}

// TestDistinctRefusesOperatorFields: Distinct refuses a field name that
// could be read as an operator, as filters do. On d78d092 each returned an
// empty result and a nil error.
func TestDistinctRefusesOperatorFields(t *testing.T) {
	h := handle[Person](t, people(t, 10))
	for _, field := range []string{"$where", "$", "email.$ne", "a\x00b", "", "a..b"} {
		_, err := odm.Distinct[string](context.Background(), h, field, nil)
		assert.ErrorIs(t, err, query.ErrInvalidField, "%q", field)
	}
}

// TestStreamsRefuseCached: Cursor, AggregateCursor and Distinct are never
// served from the cache, and say so rather than silently reading
// uncached. Found by an independent tester: on 3a1c28b each ignored
// query.Cached, even on a handle without a cache, where FindMany fails.
func TestStreamsRefuseCached(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	cached := query.Cached(time.Minute)
	_, err := e.users.Cursor(ctx, bson.D{}, cached)
	assert.ErrorIs(t, err, query.ErrUncacheable)
	_, err = odm.AggregateCursor[User](ctx, e.users, bson.A{}, cached)
	assert.ErrorIs(t, err, query.ErrUncacheable)
	_, err = odm.Distinct[string](ctx, e.users, "name", bson.D{}, cached)
	assert.ErrorIs(t, err, query.ErrUncacheable)
	assert.Zero(t, e.log.Count("find")+e.log.Count("aggregate")+e.log.Count("distinct"), "nothing was sent")
}
