package coherence

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

// hasChangeStreams reports whether cl's deployment is a replica set or a
// sharded cluster: only they have change streams.
func hasChangeStreams(t *testing.T, cl *mongo.Client) bool {
	t.Helper()
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	require.NoError(t, cl.Database("admin").RunCommand(context.Background(), bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
	return hello.SetName != "" || hello.Msg == "isdbgrid"
}

// requireReplicaSet skips, naming the reason, unless MONGODB_URI has
// change streams.
func requireReplicaSet(t *testing.T, cl *mongo.Client) {
	t.Helper()
	if !hasChangeStreams(t, cl) {
		t.Skip("NOT RUN: change streams need a replica set or a sharded cluster; MONGODB_URI is a standalone server (the dev server is one)")
	}
}

// TestChangeStreamSeesAnyWriter caches a query, changes its document with
// the plain driver from another client (no databridge, no Invalidate), and
// checks the cached read sees the change.
func TestChangeStreamSeesAnyWriter(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	cl := testdb.NewClient(t)
	requireReplicaSet(t, cl)
	db := testdb.DBOn(t, cl)
	c, err := cache.New(cache.Config{Source: NewChangeStream(cl)})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.Eventually(t, func() bool { return c.Stats().Synced }, 20*time.Second, 5*time.Millisecond)
	w, err := odm.New[Doc](db.Collection("docs"), odm.WithCache(c))
	require.NoError(t, err)
	p := &peer{cache: c, reader: w, coll: db.Collection("docs")}
	p.write(t, 1)
	require.Equal(t, 1, p.read(t))

	other := testdb.NewClient(t).Database(db.Name()).Collection("docs")
	var delays []time.Duration
	for v := 2; v <= 50; v++ {
		_, err := other.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}})
		require.NoError(t, err)
		delays = append(delays, p.waitFor(t, v))
	}
	t.Logf("change stream propagation, 49 writes: %v", delays)
	assert.Zero(t, c.Stats().Resyncs)
	assert.NotZero(t, c.Stats().RemotePrecise, "update events are decided by the rules, not collection-wide")
}

// TestChangeStreamOnStandalone checks the failure mode where change streams
// do not exist (a standalone server, the dev server): the error is
// reported, the cache never caches (no silent staleness), and Close stops
// the retry loop.
func TestChangeStreamOnStandalone(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	cl := testdb.NewClient(t)
	if hasChangeStreams(t, cl) {
		t.Skip("NOT RUN: MONGODB_URI has change streams")
	}
	db := testdb.DBOn(t, cl)
	errs := make(chan error, 100)
	c, err := cache.New(cache.Config{Source: NewChangeStream(cl, OnError(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))})
	require.NoError(t, err)
	select {
	case err := <-errs:
		t.Logf("reported: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	w, err := odm.New[Doc](db.Collection("docs"), odm.WithCache(c))
	require.NoError(t, err)
	p := &peer{cache: c, reader: w, coll: db.Collection("docs")}
	p.write(t, 1)
	require.Equal(t, 1, p.read(t))
	require.Equal(t, 1, p.read(t))
	s := c.Stats()
	assert.False(t, s.Synced)
	assert.EqualValues(t, 2, s.Loads, "every read went to the server")
	assert.EqualValues(t, 2, s.Bypassed)
	assert.Positive(t, s.Resyncs)
	start := time.Now()
	c.Close()
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestApplyEvent feeds the change-stream follower's event handling with
// events built by hand in the server's documented shape (FerretDB has no
// change streams; the real path is TestChangeStreamSeesAnyWriter, NOT RUN
// without a replica set): writes to documents go to the cache's rules
// whole, drops and renames invalidate their namespaces, and events of
// more than one collection flush everything.
func TestApplyEvent(t *testing.T) {
	ev := func(op string, fields ...bson.E) bson.Raw {
		d := bson.D{{Key: "_id", Value: bson.D{{Key: "_data", Value: "82"}}}, {Key: "operationType", Value: op},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "app"}, {Key: "coll", Value: "orders"}}}}
		raw, err := bson.Marshal(append(d, fields...))
		require.NoError(t, err)
		return raw
	}
	var s recordingSink
	for _, op := range []string{"insert", "update", "replace", "delete"} {
		require.NoError(t, applyEvent(&s, ev(op, bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: 1}}})))
	}
	require.Len(t, s.events, 4)
	assert.Equal(t, "update", s.events[1].Lookup("operationType").StringValue(), "the event is passed on whole")
	assert.Empty(t, s.invalidated)

	require.NoError(t, applyEvent(&s, ev("drop")))
	require.NoError(t, applyEvent(&s, ev("rename", bson.E{Key: "to", Value: bson.D{{Key: "db", Value: "app"}, {Key: "coll", Value: "old"}}})))
	assert.Equal(t, []string{"app.orders", "app.orders", "app.old"}, s.invalidated)
	assert.Empty(t, s.lost)

	require.NoError(t, applyEvent(&s, ev("dropDatabase")))
	require.Len(t, s.lost, 1)
	assert.Contains(t, s.lost[0].Error(), "dropDatabase of app")

	assert.Error(t, applyEvent(&s, bson.Raw{5, 0, 0, 0, 1}), "a malformed event ends the stream (it is resumed, the cache flushed)")
}

// TestPreImagesOption: with PreImages, the stream keeps each event's
// fullDocumentBeforeChange (asked for with "whenAvailable" when the stream
// opens); without, the projection drops it. The stream itself is NOT RUN
// here (no replica set); cachecore.TestChangeEventPreImages judges such
// events.
func TestPreImagesOption(t *testing.T) {
	keeps := func(p mongo.Pipeline) bool {
		for _, e := range p[1][0].Value.(bson.D) {
			if e.Key == "fullDocumentBeforeChange" {
				return true
			}
		}
		return false
	}
	assert.False(t, keeps(NewChangeStream(nil).changeEvents()))
	assert.True(t, keeps(NewChangeStream(nil, PreImages()).changeEvents()))
	assert.False(t, keeps(changeEvents), "the default pipeline is left as it was")
}
