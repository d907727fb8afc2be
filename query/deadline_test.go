package query_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/query"
)

// TestDeadlineNeverEndsShort runs FindMany and Iter with deadlines spread
// over the time the query takes: each must return every document or an
// error matching context.DeadlineExceeded, never a silent prefix (on 16a31ad
// FindMany returned a prefix with no error in 1 of 550 runs; see
// cursor.TestCancelNeverEndsShort for the cause).
func TestDeadlineNeverEndsShort(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	const docs, runs = 2000, 60
	h := handle[User](t, usersColl(t, docs))
	short, errs, whole := 0, 0, 0
	for run := range runs {
		d := time.Duration(2+run*2) * time.Millisecond // up to 0.12 s: most end partway, some complete
		ctx, cancel := context.WithTimeout(context.Background(), d)
		var n int
		var err error
		if run%2 == 0 {
			var got []User
			got, err = h.FindMany(ctx, nil, query.BatchSize(100))
			n = len(got)
		} else {
			for _, e := range h.Iter(ctx, nil, query.BatchSize(100)) {
				if e != nil {
					err = e
					break
				}
				n++
			}
		}
		cancel()
		switch {
		case err != nil:
			errs++
			assert.True(t, errors.Is(err, context.DeadlineExceeded), "run %d: %v", run, err)
		case n == docs:
			whole++
		default:
			short++
			t.Errorf("run %d (deadline %v): %d of %d documents and no error", run, d, n, docs)
		}
	}
	t.Logf("%d runs: %d deadline errors, %d whole results, %d silent prefixes", runs, errs, whole, short)
	assert.Zero(t, short)
}

// TestDeadlineBoundsCloseOnHungServer stops the server answering (a proxy
// that forwards nothing, armed when the find's reply arrives) after the
// first batch of a stream: Iter, FindMany and a Borrowed loop with a 1 s
// deadline must return by about then, with the deadline's error. On 16a31ad
// each took the deadline plus the cursor close's own 5 s (killCursors to
// the hung server).
func TestDeadlineBoundsCloseOnHungServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out deadlines on a hung server")
	}
	leakcheck.Check(t, 2*cursor.DefaultCloseTimeout)
	coll := usersColl(t, 1000)
	proxy := testdb.NewProxy(t, testdb.URI())
	var armed atomic.Bool
	cl, err := mongo.Connect(options.Client().ApplyURI(proxy.URI()).SetMonitor(&event.CommandMonitor{
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			if e.CommandName == "find" && armed.Load() {
				proxy.Blackhole()
			}
		},
	}))
	require.NoError(t, err)
	t.Cleanup(func() {
		proxy.Resume()
		_ = cl.Disconnect(context.Background())
	})
	h := handle[User](t, cl.Database(coll.Database().Name()).Collection(coll.Name()))
	const deadline = time.Second
	forms := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"Iter", func(ctx context.Context) error {
			for _, err := range h.Iter(ctx, nil, query.BatchSize(100)) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"FindMany", func(ctx context.Context) error {
			_, err := h.FindMany(ctx, nil, query.BatchSize(100))
			return err
		}},
		{"Borrowed", func(ctx context.Context) error {
			c, err := h.Cursor(ctx, nil, query.BatchSize(100))
			if err != nil {
				return err
			}
			for _, err := range c.Borrowed(ctx) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, tt := range forms {
		t.Run(tt.name, func(t *testing.T) {
			proxy.Resume()
			armed.Store(true)
			defer armed.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := tt.run(ctx)
			elapsed := time.Since(start)
			t.Logf("returned after %v: %v", elapsed.Round(time.Millisecond), err)
			require.Error(t, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, elapsed, deadline+time.Second, "returned long after the caller's deadline")
		})
	}
}
