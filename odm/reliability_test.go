package odm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
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
	cl := testdb.NewClient(t, options.Client().SetMonitor(log.Monitor()))
	coll := testdb.DBOn(t, cl).Collection("docs")
	ctx := context.Background()
	require.NoError(t, benchdata.Seed(ctx, coll, "small", 50))
	h := query.From[benchdata.Small](coll)
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
			_, err := users.FindMany(ctx, nil, query.Cache(time.Minute))
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
			_, err := users.UpdateMany(ctx, nil, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}})
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
