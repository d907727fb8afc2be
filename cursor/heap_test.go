package cursor_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
)

// TestStreamHeapIsFlat streams 10,000 and then 100,000 documents through a
// borrowed loop while sampling the live heap, and checks that the peak does
// not grow with the length of the stream: the pipeline holds at most two
// batches whatever the result size.
func TestStreamHeapIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds and streams 100,000 documents")
	}
	// DATABRIDGE_STREAM_DOCS raises the long stream for a one-off run (the
	// figure in docs/performance.md used 1,000,000).
	large := int64(100_000)
	if v, err := strconv.ParseInt(os.Getenv("DATABRIDGE_STREAM_DOCS"), 10, 64); err == nil && v > 10_000 {
		large = v
	}
	coll := testdb.DB(t).Collection("stream")
	ctx := context.Background()
	require.NoError(t, benchdata.Seed(ctx, coll, "small", int(large)))

	peak := func(n int64) uint64 {
		runtime.GC()
		var stop atomic.Bool
		var max atomic.Uint64
		done := make(chan struct{})
		go func() { // sample the live heap every few milliseconds
			defer close(done)
			var ms runtime.MemStats
			for !stop.Load() {
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > max.Load() {
					max.Store(ms.HeapAlloc)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetLimit(n).SetBatchSize(1000))
		require.NoError(t, err)
		c, err := cursor.New[benchdata.Small](cur)
		require.NoError(t, err)
		var count int64
		for _, err := range c.Borrowed(ctx) {
			require.NoError(t, err)
			count++
		}
		stop.Store(true)
		<-done
		require.Equal(t, n, count)
		return max.Load()
	}
	smallPeak, largePeak := peak(10_000), peak(large)
	t.Logf("peak heap: %d KiB streaming 10,000 documents, %d KiB streaming %d", smallPeak>>10, largePeak>>10, large)
	assert.Less(t, largePeak, smallPeak+8<<20, "peak heap must not grow with the number of documents")
}
