package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestTwoDeploymentsShareNoEntries: one cache, handles on two servers with
// the same database and collection names. Each must get its own server's
// documents. On 16a31ad server B's query was served server A's document.
func TestTwoDeploymentsShareNoEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	c := newCache(t, cache.Config{})
	ctx := context.Background()
	var handles []*odm.Collection[Doc]
	for i := range 2 {
		srv := testdb.StartServer(t)
		cl, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetMonitor(cache.Observer(nil)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
		coll := cl.Database("shared_name").Collection("docs")
		_, err = coll.InsertOne(ctx, Doc{ID: 1, V: 100 + i})
		require.NoError(t, err)
		handles = append(handles, handle[Doc](t, coll, odm.WithCache(c)))
	}
	for round := range 2 {
		for i, h := range handles {
			got, err := h.FindOne(ctx, query.Eq("_id", 1), query.Cached(time.Minute))
			require.NoError(t, err)
			assert.Equal(t, 100+i, got.V, "round %d, server %d", round, i)
			cache.Core(c).Wait()
		}
	}
	assert.Positive(t, c.Stats().Hits, "each server's entry is hit on the second round")
}

// TestReadSettingsShareNoEntries: two collection values for one namespace,
// with different read concerns, do not share entries (the driver gives no
// way to read a collection's read preference or concern back, so each
// collection value is a scope of its own; see internal/cachecore.Cache.ScopeOf); two handles on
// one collection value do.
func TestReadSettingsShareNoEntries(t *testing.T) {
	e := setup(t, 3)
	ctx := context.Background()
	local := e.coll.Database().Collection(e.coll.Name(), options.Collection().SetReadConcern(readconcern.Local()))
	assert.NotEqual(t, cache.Core(e.c).ScopeOf(e.coll), cache.Core(e.c).ScopeOf(local))
	assert.Equal(t, cache.Core(e.c).ScopeOf(e.coll), cache.Core(e.c).ScopeOf(e.coll))

	read := func(h *odm.Collection[Doc]) {
		_, err := h.FindMany(ctx, bson.D{}, query.Cached(time.Minute))
		require.NoError(t, err)
		cache.Core(e.c).Wait()
	}
	read(e.docs)
	read(handle[Doc](t, local, odm.WithCache(e.c)))
	assert.Equal(t, 2, e.log.Count("find"), "a collection with other read settings misses")
	read(handle[Doc](t, e.coll, odm.WithCache(e.c)))
	assert.Equal(t, 2, e.log.Count("find"), "another handle on the same collection value hits")
}
