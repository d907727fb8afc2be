package coherence

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
)

// TestObserverAndLogOnOneClient is the documented setup: the write
// observer on the client (for raw writes) and a Log on the same client
// (across processes). The Log's own appends are not user writes: the
// observer must not apply them, nor the cache publish them again. On
// a785bb8 an idle process fed back on itself: each append was observed,
// applied and published again, hundreds of invalidations and log events a
// second.
func TestObserverAndLogOnOneClient(t *testing.T) {
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(t, cl)
	l := NewLog(db)
	c, err := cache.New(cache.Config{Source: l})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.Eventually(t, func() bool { return c.Stats().Synced }, 20*time.Second, 5*time.Millisecond)

	// One user write, raw through the observer: one event, then quiet.
	ctx := context.Background()
	_, err = db.Collection("docs").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	flush := func() {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, l.Flush(fctx), "the Log settles: nothing publishes again what it appended")
	}
	flush()
	before := c.Stats()
	events := func() int64 {
		n, err := l.coll.CountDocuments(ctx, bson.D{{Key: "p", Value: l.id}})
		require.NoError(t, err)
		return n
	}
	n0 := events()
	time.Sleep(time.Second)
	flush()
	// On a loaded machine a read of the log may outlast the liveness
	// bound: the cache then flushes (one invalidation) and the Log opens
	// its cursor again (one more first event of its own). Those are
	// counted, not failed; the loop made hundreds a second.
	after := c.Stats()
	resyncs := after.Resyncs - before.Resyncs
	assert.LessOrEqual(t, after.Applied-before.Applied, resyncs, "an idle process invalidates nothing but its resyncs")
	assert.LessOrEqual(t, events()-n0, int64(resyncs), "an idle process appends no event but a resync's first")
	if resyncs > 0 {
		t.Logf("%d resyncs while idle (a loaded machine)", resyncs)
	}
}
