package cursor_test

import (
	"context"
	"fmt"
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
)

type Doc struct {
	ID   int      `bson:"_id"`
	Name string   `bson:"name"`
	Tags []string `bson:"tags"`
}

// seed inserts n documents {_id: i, name: "doc i", tags: [i, i+1]}.
func seed(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("doc %d", i)},
			{Key: "tags", Value: bson.A{fmt.Sprint(i), fmt.Sprint(i + 1)}}}
	}
	_, err := coll.InsertMany(context.Background(), docs)
	require.NoError(t, err)
}

func want(i int) Doc {
	return Doc{ID: i, Name: fmt.Sprintf("doc %d", i), Tags: []string{fmt.Sprint(i), fmt.Sprint(i + 1)}}
}

type env struct {
	coll *mongo.Collection
	log  *testdb.CommandLog
}

func setup(t *testing.T, n int) env {
	t.Helper()
	log := &testdb.CommandLog{}
	cl := testdb.NewClient(t, options.Client().SetMonitor(log.Monitor()))
	coll := testdb.DBOn(t, cl).Collection("docs")
	seed(t, coll, n)
	log.Reset()
	return env{coll: coll, log: log}
}

func (e env) open(t *testing.T, ctx context.Context, batch int32, opts ...cursor.Option) *cursor.Cursor[Doc] {
	t.Helper()
	cur, err := e.coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(batch))
	require.NoError(t, err)
	c, err := cursor.New[Doc](cur, opts...)
	require.NoError(t, err)
	return c
}

func TestAllStreamsManyBatches(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	for _, prefetch := range []bool{true, false} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) {
			e := setup(t, 1000)
			var opts []cursor.Option
			if !prefetch {
				opts = append(opts, cursor.WithoutPrefetch())
			}
			c := e.open(t, context.Background(), 64, opts...)
			var got []Doc
			for d, err := range c.All(context.Background()) {
				require.NoError(t, err)
				got = append(got, d)
			}
			require.Len(t, got, 1000)
			// Values the contract lets us keep were never overwritten.
			for i, d := range got {
				require.Equal(t, want(i), d)
			}
			assert.GreaterOrEqual(t, e.log.Count("getMore"), 15)
			assert.Equal(t, 0, e.log.Count("killCursors"), "a drained cursor needs no killCursors")
		})
	}
}

func TestEmptyAndSingleBatch(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 10)
	ctx := context.Background()

	cur, err := e.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 0}}}})
	require.NoError(t, err)
	c, err := cursor.New[Doc](cur)
	require.NoError(t, err)
	got, err := c.AppendAll(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)

	got, err = e.open(t, ctx, 100).AppendAll(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, got, 10)
	assert.Equal(t, 0, e.log.Count("getMore"))
}

func TestBreakKillsServerCursor(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 300)
	for _, prefetch := range []bool{true, false} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) {
			e.log.Reset()
			var opts []cursor.Option
			if !prefetch {
				opts = append(opts, cursor.WithoutPrefetch())
			}
			c := e.open(t, context.Background(), 20, opts...)
			n := 0
			for d, err := range c.All(context.Background()) {
				require.NoError(t, err)
				require.Equal(t, want(n), d)
				n++
				if n == 45 { // in the third batch
					break
				}
			}
			assert.Equal(t, 1, e.log.Count("killCursors"))
		})
	}
}

func TestPrefetchFetchesAheadOfConsumer(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 100)
	for _, tt := range []struct {
		name      string
		opts      []cursor.Option
		wantAhead bool
	}{
		{"prefetch", nil, true},
		{"no prefetch", []cursor.Option{cursor.WithoutPrefetch()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.log.Reset()
			ctx := context.Background()
			c := e.open(t, ctx, 10, tt.opts...)
			defer c.Close(ctx)
			require.True(t, c.Next(ctx)) // first document of the first batch
			// While we hold batch 1, a getMore for batch 2 should start.
			ahead := waitFor(time.Second, func() bool { return e.log.Count("getMore") >= 1 })
			assert.Equal(t, tt.wantAhead, ahead)
			// At most one batch ahead: the fetcher waits for us.
			time.Sleep(50 * time.Millisecond)
			assert.LessOrEqual(t, e.log.Count("getMore"), 2)
		})
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func TestCancelMidStream(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 500)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := e.open(t, ctx, 10)
	n := 0
	var last error
	for _, err := range c.All(ctx) {
		if err != nil {
			last = err
			break
		}
		n++
		if n == 25 {
			cancel()
		}
	}
	require.Error(t, last)
	assert.ErrorIs(t, last, context.Canceled)
	assert.Less(t, n, 500)
	// The kill runs in the background once the loop's context has ended.
	assert.True(t, waitFor(5*time.Second, func() bool { return e.log.Count("killCursors") == 1 }),
		"a cancelled loop still frees the server cursor")
}

func TestDecodeErrorNamesDocument(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 50)
	_, err := e.coll.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: 30}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: 12}}}})
	require.NoError(t, err)
	e.log.Reset()

	c := e.open(t, context.Background(), 10)
	n := 0
	var last error
	for _, err := range c.All(context.Background()) {
		if err != nil {
			last = err
			continue // the error is the last value: the loop must end here
		}
		n++
	}
	assert.Equal(t, 30, n)
	var de *cursor.DocumentError
	require.ErrorAs(t, last, &de)
	assert.Equal(t, 30, de.Index)
	assert.Equal(t, int32(30), de.ID.Int32())
	var fe *decode.Error
	require.ErrorAs(t, last, &fe)
	assert.Equal(t, "name", fe.Path)
	assert.ErrorIs(t, last, decode.ErrTypeMismatch)
	assert.Equal(t, 1, e.log.Count("killCursors"))
}

func TestServerErrorMidStream(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 200)
	ctx := context.Background()
	cur, err := e.coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(10))
	require.NoError(t, err)
	id := cur.ID()
	c, err := cursor.New[Doc](cur, cursor.WithoutPrefetch())
	require.NoError(t, err)
	require.True(t, c.Next(ctx))
	// Another client kills the cursor: the next getMore fails on the server.
	require.NoError(t, e.coll.Database().RunCommand(ctx, bson.D{{Key: "killCursors", Value: e.coll.Name()}, {Key: "cursors", Value: bson.A{id}}}).Err())
	n := 1
	var last error
	for _, err := range c.All(ctx) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	require.Error(t, last)
	var se mongo.ServerError
	assert.ErrorAs(t, last, &se)
	assert.Equal(t, 10, n)
}

func TestPullAPI(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 35)
	ctx := context.Background()
	c := e.open(t, ctx, 10)
	var d Doc
	i := 0
	for c.Next(ctx) {
		require.NoError(t, c.Decode(&d))
		require.Equal(t, want(i), d)
		require.NotEmpty(t, c.Current())
		i++
	}
	require.NoError(t, c.Err())
	assert.Equal(t, 35, i)
	require.NoError(t, c.Close(ctx))
	require.NoError(t, c.Close(ctx), "Close is idempotent")
	assert.False(t, c.Next(ctx))
	assert.ErrorIs(t, c.Err(), cursor.ErrClosed)
}

func TestBorrowedReusesOneValue(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 40)
	ctx := context.Background()
	var ptrs []*Doc
	i := 0
	for d, err := range e.open(t, ctx, 16).Borrowed(ctx) {
		require.NoError(t, err)
		require.Equal(t, want(i), *d)
		ptrs = append(ptrs, d)
		i++
	}
	require.Len(t, ptrs, 40)
	for _, p := range ptrs {
		assert.Same(t, ptrs[0], p, "borrowed values are one reused destination")
	}

	sum := 0
	for d, err := range e.open(t, ctx, 16).Borrowed(ctx) {
		require.NoError(t, err)
		sum += d.ID
	}
	assert.Equal(t, 39*40/2, sum)
}

func TestAppendAllKeepsPrefix(t *testing.T) {
	e := setup(t, 12)
	ctx := context.Background()
	pre := []Doc{{ID: -1, Name: "mine"}}
	got, err := e.open(t, ctx, 5).AppendAll(ctx, pre)
	require.NoError(t, err)
	require.Len(t, got, 13)
	assert.Equal(t, Doc{ID: -1, Name: "mine"}, got[0])
	assert.Equal(t, want(11), got[12])
}
