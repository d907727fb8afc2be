package coherence

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

// TestReaderNoticesLostServer is the fault test of a Log reader whose
// server stops answering (a blackholed connection: a loopback proxy that
// forwards nothing) or dies (SIGKILL), with the driver's default 30 s server
// selection. Within the liveness bound the reader must report the loss, and
// from then on the cache must serve no hit until the reader follows again;
// a restart must flush it. On 16a31ad the reader stayed Synced with no
// resync for the whole 30 s server selection, serving stale hits.
func TestReaderNoticesLostServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts, blackholes, kills and restarts a server")
	}
	t.Run("poll", func(t *testing.T) { testLostServer(t, PollInterval(DefaultPollInterval)) })
	// Tailing, as on MongoDB: each getMore is bounded by MaxAwait plus
	// Liveness. (On FerretDB tailing can drop events, which costs flushes,
	// not staleness; the bound is what this checks.)
	t.Run("tail", func(t *testing.T) { testLostServer(t, PollInterval(0), MaxAwait(200*time.Millisecond)) })
}

func testLostServer(t *testing.T, opts ...LogOption) {
	leakcheck.Check(t, 15*time.Second)
	srv := testdb.StartServer(t)
	connect := func(uri string) *mongo.Client {
		cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(cache.Observer(nil))) // default timeouts
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
		return cl
	}
	const db = "coherence_liveness"
	a := newPeer(t, connect(srv.URI), db, opts...)

	// Process B follows the log through the proxy; its data reads go
	// straight to the server, so that only the log is partitioned.
	proxy := testdb.NewProxy(t, srv.URI)
	bLog := NewLog(connect(proxy.URI()).Database(db), opts...)
	bc, err := cache.New(cache.Config{Source: bLog})
	require.NoError(t, err)
	t.Cleanup(bc.Close)
	direct := connect(srv.URI).Database(db).Collection("docs")
	b := &peer{log: bLog, cache: bc, coll: direct}
	b.reader, err = odm.New[Doc](direct, odm.WithCache(bc))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return bc.Stats().Synced }, 20*time.Second, 5*time.Millisecond)

	// write and check are strict where the helpers of the other tests
	// are lenient: a write must succeed, and a read that returns the
	// wrong version is told apart (a hit or the server's own answer) with
	// the cache's counters, so that a failure says whose it is.
	write := func(v int) {
		t.Helper()
		ctx, _ := cachecore.Handled(context.Background())
		_, err := a.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, Doc{ID: 1, V: v}, options.Replace().SetUpsert(true))
		require.NoError(t, err, "writing version %d", v)
		a.cache.Invalidate(a.coll.Database().Name(), a.coll.Name())
	}
	check := func(want int, hitOK bool, msg string) {
		t.Helper()
		before := bc.Stats()
		got := b.read(t)
		after := bc.Stats()
		hit := after.Hits > before.Hits
		if got == want && (hitOK || !hit) {
			return
		}
		var d Doc
		err := direct.FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&d)
		t.Fatalf("%s: read version %d (hit %v), want %d; the server answers %d (%v); stats before %+v, after %+v",
			msg, got, hit, want, d.V, err, before, after)
	}
	write(1)
	b.waitFor(t, 1)

	// Blackhole: the loss is reported within the bound.
	proxy.Blackhole()
	start := time.Now()
	require.Eventually(t, func() bool { return !bc.Stats().Synced }, 10*time.Second, time.Millisecond)
	noticed := time.Since(start)
	t.Logf("blackhole noticed after %v (bound %v, + MaxAwait when tailing)", noticed.Round(time.Millisecond), DefaultLiveness)
	assert.Less(t, noticed, DefaultLiveness+bLog.maxAwait+time.Second)
	assert.Positive(t, bc.Stats().Resyncs)
	// While partitioned, B reads from the server: a write it cannot hear
	// of is seen at once, and no read is a hit.
	write(2)
	check(2, false, "no stale hit while the log is unreachable")
	proxy.Resume()
	// Following again takes a read of the log within the liveness bound;
	// on a loaded machine (the race detector, the other packages' tests)
	// the first reads can outlast it and resync again: the time is
	// logged, and only never following fails (as after the restart).
	resumed := time.Now()
	require.Eventually(t, func() bool { return bc.Stats().Synced }, 60*time.Second, 5*time.Millisecond, "follows again")
	t.Logf("following again %v after the resume", time.Since(resumed).Round(time.Millisecond))
	write(3)
	b.waitFor(t, 3)
	check(3, true, "follows again")

	// Kill: noticed within the bound too, and after the restart the
	// cache has been flushed.
	resyncs := bc.Stats().Resyncs
	srv.Kill()
	start = time.Now()
	require.Eventually(t, func() bool { return !bc.Stats().Synced }, 10*time.Second, time.Millisecond)
	noticed = time.Since(start)
	t.Logf("kill noticed after %v", noticed.Round(time.Millisecond))
	assert.Less(t, noticed, DefaultLiveness+bLog.maxAwait+time.Second)
	srv.Restart()
	require.Eventually(t, func() bool { return bc.Stats().Synced }, 60*time.Second, 10*time.Millisecond, "follows again after the restart")
	assert.Greater(t, bc.Stats().Resyncs, resyncs, "flushed")
	write(4)
	b.waitFor(t, 4)
}
