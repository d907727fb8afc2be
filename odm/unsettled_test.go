package odm_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/outcome"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

type Row struct {
	ID  int    `bson:"_id"`
	V   int    `bson:"v"`
	Pad string `bson:"pad"`
}

// TestUnknownOutcomeWriteLeavesNoStaleEntry is the fault test of a write
// whose context ends before its reply: an UpdateMany of 1,500 documents
// with a 100 ms deadline, which the server goes on applying. Cached reads
// made while it runs must come from the server, and once it is done the
// cache must serve its result, never the state from before it. On 16a31ad
// the cached read right after the timeout stored the partial state and
// served it until the TTL.
//
// FerretDB v1.24 does not enforce maxTimeMS on writes (the update runs on
// for seconds), so there the cache's SettleMargin must cover the whole
// write: the test gives it 60 s. On MongoDB a $where sleep makes the update
// slow and maxTimeMS stops it at the deadline; the default margin holds.
func TestUnknownOutcomeWriteLeavesNoStaleEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a slow write to finish")
	}
	ctx := context.Background()
	coll := testdb.DB(t).Collection("rows")
	const n = 1500
	docs := make([]any, n)
	for i := range docs {
		docs[i] = Row{ID: i, Pad: fmt.Sprintf("%0500d", i)}
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)

	cfg := cache.Config{}
	filter := bson.D{}
	if testdb.IsFerretDB(t) {
		cfg.SettleMargin = time.Minute
	} else {
		filter = bson.D{{Key: "$where", Value: "sleep(2) || true"}}
	}
	c, err := cache.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	rows, err := odm.New[Row](coll, odm.WithCache(c))
	require.NoError(t, err)
	updated := func() int64 {
		k, err := coll.CountDocuments(ctx, bson.D{{Key: "v", Value: 1}})
		require.NoError(t, err)
		return k
	}
	cachedUpdated := func() int {
		got, err := rows.FindMany(ctx, bson.D{}, query.Cached(time.Hour), query.Projection(bson.D{{Key: "pad", Value: 0}}))
		require.NoError(t, err)
		k := 0
		for _, r := range got {
			k += r.V
		}
		return k
	}
	require.Zero(t, cachedUpdated()) // an entry from before the write

	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = rows.UpdateMany(wctx, filter, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}})
	cancel()
	require.Error(t, err, "the update must outlast its deadline for this test")
	require.Equal(t, outcome.Unknown, outcome.Of(err), "%v", err)
	assert.EqualValues(t, 1, c.Stats().Unsettled)

	// While the server works: every cached read is the server's state.
	reads := 0
	deadline := time.Now().Add(50 * time.Second)
	for {
		before := updated()
		got := cachedUpdated()
		after := updated()
		reads++
		require.True(t, int64(got) >= before && int64(got) <= after,
			"read %d: the cache served %d updated documents while the server had %d..%d", reads, got, before, after)
		if after == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	final := updated()
	t.Logf("the server settled at %d of %d updated after %d cached reads, each from the server (bypassed %d)", final, n, reads, c.Stats().Bypassed)
	for range 3 {
		assert.EqualValues(t, final, cachedUpdated(), "after the write, the cache serves its result")
	}
}

// TestWriteTimeoutBoundsWrites: a write whose context has no deadline is
// sent with the collection's WriteTimeout, so the server has a maxTimeMS
// to stop it by.
func TestWriteTimeoutBoundsWrites(t *testing.T) {
	log := &maxTimeLog{}
	cl := testdb.NewClient(t, log.options())
	coll := testdb.DBOn(t, cl).Collection("rows")
	rows, err := odm.New[Row](coll, odm.WriteTimeout(30*time.Second))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, rows.Save(ctx, &Row{ID: 1}))
	_, err = rows.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	require.NoError(t, err)
	require.NoError(t, rows.InsertMany(ctx, []Row{{ID: 2}, {ID: 3}}))
	for _, cmd := range []string{"update", "insert"} {
		ms, ok := log.max(cmd)
		require.True(t, ok, "%s sent with maxTimeMS", cmd)
		assert.InDelta(t, 30_000, ms, 1_000, cmd)
	}
	// A context with its own deadline keeps it.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	log.reset()
	_, err = rows.DeleteMany(dctx, query.Eq("_id", 3))
	require.NoError(t, err)
	ms, ok := log.max("delete")
	require.True(t, ok)
	assert.LessOrEqual(t, ms, int64(5_000))
}

// maxTimeLog records the maxTimeMS of each command sent.
type maxTimeLog struct {
	mu  sync.Mutex
	got map[string]int64
}

func (l *maxTimeLog) options() *options.ClientOptions {
	return options.Client().SetMonitor(&event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			v, err := e.Command.LookupErr("maxTimeMS")
			if err != nil {
				return
			}
			ms, ok := v.AsInt64OK()
			if !ok {
				return
			}
			l.mu.Lock()
			if l.got == nil {
				l.got = map[string]int64{}
			}
			l.got[e.CommandName] = ms
			l.mu.Unlock()
		},
	})
}

func (l *maxTimeLog) max(cmd string) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms, ok := l.got[cmd]
	return ms, ok
}

func (l *maxTimeLog) reset() {
	l.mu.Lock()
	l.got = nil
	l.mu.Unlock()
}
