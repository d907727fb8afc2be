package cachecore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestJoinAfterAWrite: a miss that joins a load which ended (stored, valid)
// before a write, but whose flight was not yet removed when the write
// completed and the miss began, must not take the load's result: the
// miss began after the write and must see it. The window is the few
// instructions between a load's end and its flight's removal (afterLoad
// holds it open here); on a loaded machine a whole write fit in it
// (cache.TestConcurrentPointReadsSeeCompletedWrites failed once in
// make test on 9017889). Pure code: the loads return documents built
// here.
func TestJoinAfterAWrite(t *testing.T) {
	c := newTestCache(t, Config{})
	q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "_id", Value: 1}}, Simple: true, Shape: simpleShape}
	doc := func(v int) bson.Raw { return mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: v}}) }
	load := func(v int) LoadFunc {
		return func(ctx context.Context) ([]bson.Raw, error) {
			observed(ctx)
			return []bson.Raw{doc(v)}, nil
		}
	}
	joined := make(chan *Result, 1)
	joining := make(chan struct{}, 1)
	c.joining = func() { joining <- struct{}{} }
	c.afterLoad = func() {
		c.afterLoad = nil
		// The write completes: applied to the cache, as End applies it.
		Apply(Change{DB: "db", Coll: "c", Stmts: []Stmt{upd(t, 1, setOp(bson.E{Key: "v", Value: 2}))}})
		// A miss that begins now joins the flight still in the map.
		go func() {
			res, err := c.Fetch(context.Background(), q, time.Hour, load(2), nil)
			assert.NoError(t, err)
			joined <- res
		}()
		<-joining
	}
	_, err := c.Fetch(context.Background(), q, time.Hour, load(1), nil)
	require.NoError(t, err)
	res := <-joined
	require.Len(t, res.Docs, 1)
	assert.EqualValues(t, 2, res.Docs[0].Lookup("v").Int32(), "the miss that began after the write sees it")
}
