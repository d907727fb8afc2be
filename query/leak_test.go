package query_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/query"
)

// leakDoc fits every document of the leak collection; strictDoc fails on
// the one whose n is a string.
type (
	leakDoc struct {
		ID  int    `bson:"_id"`
		N   any    `bson:"n"`
		Pad string `bson:"pad"`
	}
	strictDoc struct {
		ID  int    `bson:"_id"`
		N   int    `bson:"n"`
		Pad string `bson:"pad"`
	}
)

// TestStreamsLeaveNoServerCursor ends streams over 5,000 documents in
// every way a stream can end early (a deadline passing, the context
// cancelled, a break, a decode error), with prefetch on and off, and then
// asks the server which of the cursors it gave the client are still open:
// none may be. On d78d092 a deadline that passed just before a getMore or
// during one left the cursor open: the close ran under the caller's
// nearly expired context, the driver refused to send killCursors ("Timeout
// would be exceeded") and forgot the cursor id.
//
// DATABRIDGE_LEAK_RUNS sets the runs per way and prefetch setting (default
// 6; the figure in docs/reliability.md is from 1,000).
func TestStreamsLeaveNoServerCursor(t *testing.T) {
	runs := 6
	if s := os.Getenv("DATABRIDGE_LEAK_RUNS"); s != "" {
		var err error
		runs, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	leakcheck.Check(t, 2*cursor.DefaultCloseTimeout)
	tracker := testdb.NewCursorTracker()
	cl := testdb.NewClient(t, options.Client().SetMonitor(tracker.Monitor()))
	coll := testdb.DBOn(t, cl).Collection("streams")
	const docs, bad = 5000, 4000
	batch := make([]any, docs)
	for i := range batch {
		var n any = i
		if i == bad {
			n = "not a number"
		}
		batch[i] = bson.D{{Key: "_id", Value: i}, {Key: "n", Value: n}, {Key: "pad", Value: fmt.Sprintf("%0200d", i)}}
	}
	_, err := coll.InsertMany(context.Background(), batch)
	require.NoError(t, err)
	loose, strict := handle[leakDoc](t, coll), handle[strictDoc](t, coll)
	rng := rand.New(rand.NewPCG(1, 2))

	ways := []struct {
		name string
		run  func(prefetch query.ReadOption) error
	}{
		{"deadline", func(prefetch query.ReadOption) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(400))*time.Millisecond)
			defer cancel()
			_, err := loose.FindMany(ctx, nil, query.BatchSize(200), prefetch)
			return err
		}},
		{"cancel", func(prefetch query.ReadOption) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			at := rng.IntN(docs)
			for d, err := range loose.Iter(ctx, nil, query.BatchSize(200), prefetch) {
				if err != nil {
					return err
				}
				if d.ID == at {
					cancel()
				}
			}
			return nil
		}},
		{"break", func(prefetch query.ReadOption) error {
			at := rng.IntN(docs)
			for d, err := range loose.Iter(context.Background(), nil, query.BatchSize(200), prefetch) {
				if err != nil {
					return err
				}
				if d.ID == at {
					break
				}
			}
			return nil
		}},
		{"decode error", func(prefetch query.ReadOption) error {
			_, err := strict.FindMany(context.Background(), nil, query.BatchSize(200), prefetch)
			var de *decode.Error
			if !errors.As(err, &de) {
				return fmt.Errorf("want a decode error, got %v", err)
			}
			return nil
		}},
	}
	total := 0
	for _, way := range ways {
		for _, prefetch := range []bool{true, false} {
			opt := query.CursorOptions()
			if !prefetch {
				opt = query.CursorOptions(cursor.WithoutPrefetch())
			}
			tracker.Reset()
			for range runs {
				err := way.run(opt)
				if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s, prefetch %v: %v", way.name, prefetch, err)
				}
			}
			// Each way is checked on its own: FerretDB closes the cursors
			// of a connection when the driver drops it, which a later
			// way's cancellations do, and that would hide a leak.
			open := leftOpen(t, tracker, coll)
			t.Logf("%s, prefetch %v: %d streams, %d server cursors opened, %d killCursors sent, %d finds whose reply was lost, %d cursors left open %v",
				way.name, prefetch, runs, tracker.Opened(), tracker.Kills(), tracker.LostFinds(), len(open), open)
			total += len(open)
		}
	}
	assert.Zero(t, total, "server cursors left open")
}

// leftOpen returns the server cursors of coll the tracker saw opened that
// are still open, once the kills that run in the background after a
// passed deadline (for at most the close timeout) are done.
func leftOpen(t *testing.T, tracker *testdb.CursorTracker, coll *mongo.Collection) []int64 {
	t.Helper()
	deadline := time.Now().Add(2 * cursor.DefaultCloseTimeout)
	for len(leakcheck.Leaked()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	open, err := tracker.LeftOpen(context.Background(), testdb.Client(t).Database(coll.Database().Name()), coll.Name())
	require.NoError(t, err)
	return open
}
