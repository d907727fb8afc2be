package odm_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestNoLeakedCursorsAfterEarlyBreaks breaks out of 1,000 multi-batch loops
// and checks, with the command monitor, that every server cursor was killed.
func TestNoLeakedCursorsAfterEarlyBreaks(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	log := &testdb.CommandLog{}
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(log.Monitor())))
	coll := testdb.DBOn(t, cl).Collection("docs")
	ctx := context.Background()
	require.NoError(t, benchdata.Seed(ctx, coll, "small", 50))
	h := handle[benchdata.Small](t, coll)
	log.Reset()
	const loops = 1000
	for range loops {
		n := 0
		for _, err := range h.Iter(ctx, nil, query.BatchSize(10)) {
			require.NoError(t, err)
			if n++; n == 3 {
				break
			}
		}
	}
	assert.Equal(t, loops, log.Count("find"))
	assert.Equal(t, loops, log.Count("killCursors"), "every early break kills its server cursor")
}

// TestContextEndsOperationsPromptly cancels or times out each kind of
// operation and checks the error matches the context's with errors.Is.
func TestContextEndsOperationsPromptly(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	coll := testdb.DB(t).Collection("users")
	ctx := context.Background()
	require.NoError(t, benchdata.Seed(ctx, coll, "small", 300))
	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	users, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
	require.NoError(t, err)

	ops := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"find", func(ctx context.Context) error { _, err := users.FindMany(ctx, nil); return err }},
		{"find one", func(ctx context.Context) error { _, err := users.FindOne(ctx, nil); return err }},
		{"cached read", func(ctx context.Context) error {
			_, err := users.FindMany(ctx, nil, query.Cached(time.Minute))
			return err
		}},
		{"save", func(ctx context.Context) error {
			u := benchdata.NewSmall(1)
			u.ID = bson.ObjectID{}
			return users.Save(ctx, &u)
		}},
		{"insert many", func(ctx context.Context) error {
			docs := []benchdata.Small{benchdata.NewSmall(1), benchdata.NewSmall(2)}
			return users.InsertMany(ctx, docs)
		}},
		{"update many", func(ctx context.Context) error {
			_, err := users.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}})
			return err
		}},
		{"getMore", func(ctx context.Context) error {
			n := 0
			for _, err := range users.Iter(ctx, nil, query.BatchSize(10)) {
				if err != nil {
					return err
				}
				if n++; n == 15 {
					if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
						cancel() // cancelled between batches
					}
				}
			}
			return nil
		}},
	}
	for _, op := range ops {
		t.Run(op.name+"/cancelled", func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			if op.name == "getMore" {
				cctx = context.WithValue(cctx, cancelKey{}, cancel)
			} else {
				cancel()
			}
			defer cancel()
			start := time.Now()
			err := op.run(cctx)
			require.Error(t, err)
			assert.True(t, errors.Is(err, context.Canceled), "%v", err)
			assert.Less(t, time.Since(start), 2*time.Second)
		})
		t.Run(op.name+"/deadline", func(t *testing.T) {
			if op.name == "getMore" {
				t.Skip("covered by the cancelled case")
			}
			dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
			defer cancel()
			time.Sleep(time.Millisecond)
			err := op.run(dctx)
			require.Error(t, err)
			assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
		})
	}
}

type cancelKey struct{}

// TestInsertManyInterruptedByServerKill kills the server (SIGKILL) right
// after the third of ten insert batches is acknowledged, then restarts it and
// reads everything back: every document reported written is stored, nothing
// is stored that was reported neither written nor unknown, and documents
// that were not sent are not stored. It runs on both id paths: ids assigned
// by the driver (the fast path; unknown documents keep a zero id) and ids
// set before the call (every document can be looked up).
func TestInsertManyInterruptedByServerKill(t *testing.T) {
	for _, tc := range []struct {
		name      string
		clientIDs bool
	}{
		{"driver assigns ids", false},
		{"ids set before the call", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t, 10*time.Second)
			srv := testdb.StartServer(t)
			var acked atomic.Int32
			monitor := &event.CommandMonitor{
				Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
					if e.CommandName == "insert" && acked.Add(1) == 3 {
						srv.Kill() // before the driver returns the third reply
					}
				},
			}
			cl, err := mongo.Connect(options.Client().ApplyURI(srv.URI).
				SetServerSelectionTimeout(2 * time.Second).SetMonitor(monitor))
			require.NoError(t, err)
			t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
			coll := cl.Database("faults").Collection("insert_many")
			users, err := odm.New[benchdata.Small](coll)
			require.NoError(t, err)

			const n, per = 10_000, 1_000
			docs := make([]benchdata.Small, n)
			for i := range docs {
				docs[i] = benchdata.NewSmall(i)
				if !tc.clientIDs {
					docs[i].ID = bson.ObjectID{}
				}
			}
			start := time.Now()
			err = users.InsertMany(context.Background(), docs, odm.InsertBatch(per))
			t.Logf("InsertMany returned after %v: %v", time.Since(start), err)
			var be *odm.BulkError
			require.ErrorAs(t, err, &be)
			assert.True(t, mongo.IsNetworkError(err) || mongo.IsTimeout(err), "the cause is the lost server: %v", err)
			assert.Len(t, be.Written, 3*per, "the three acknowledged batches")
			assert.Empty(t, be.Failed)
			assert.LessOrEqual(t, len(be.Unknown), per, "at most the batch in flight is unknown")

			srv.Restart()
			stored := map[bson.ObjectID]bool{}
			require.Eventually(t, func() bool {
				clear(stored)
				cur, err := coll.Find(context.Background(), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
				if err != nil {
					return false
				}
				var ids []struct {
					ID bson.ObjectID `bson:"_id"`
				}
				if cur.All(context.Background(), &ids) != nil {
					return false
				}
				for _, d := range ids {
					stored[d.ID] = true
				}
				return true
			}, 20*time.Second, 200*time.Millisecond, "the server is back")

			status := make([]string, n) // "", "written", "unknown"
			for _, i := range be.Written {
				status[i] = "written"
				require.False(t, docs[i].ID.IsZero(), "written documents have their ids")
				assert.True(t, stored[docs[i].ID], "document %d was reported written but is not stored", i)
			}
			for _, i := range be.Unknown {
				status[i] = "unknown"
			}
			notSent := 0
			for i := range docs {
				switch {
				case status[i] == "" && tc.clientIDs:
					notSent++
					assert.False(t, stored[docs[i].ID], "document %d was not sent but is stored", i)
				case status[i] == "":
					notSent++
					assert.True(t, docs[i].ID.IsZero(), "document %d was not sent but has an id", i)
				case status[i] == "unknown" && !tc.clientIDs:
					assert.True(t, docs[i].ID.IsZero(), "no reply, so no driver-assigned id")
				}
			}
			assert.LessOrEqual(t, len(stored), len(be.Written)+len(be.Unknown), "nothing is stored beyond what may have been sent")
			t.Logf("written %d, unknown %d, not sent %d, stored after restart %d", len(be.Written), len(be.Unknown), notSent, len(stored))
		})
	}
}
