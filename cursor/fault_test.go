package cursor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
)

// TestServerDiesMidStream kills the server (SIGKILL) while a 100,000-document
// stream is being read: the loop must end with an error within 10 s, leak no
// goroutine, and the same client must work again once the server is back.
func TestServerDiesMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts, kills and restarts a server")
	}
	leakcheck.Check(t, 10*time.Second)
	srv := testdb.StartServer(t)
	cl, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetServerSelectionTimeout(5 * time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	coll := cl.Database("faults").Collection("stream")
	ctx := context.Background()
	require.NoError(t, benchdata.Seed(ctx, coll, "small", 100_000))

	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
	require.NoError(t, err)
	c, err := cursor.New[benchdata.Small](cur)
	require.NoError(t, err)
	n := 0
	var last error
	var killedAt time.Time
	for _, err := range c.Borrowed(ctx) {
		if err != nil {
			last = err
			break
		}
		if n++; n == 5000 {
			srv.Kill()
			killedAt = time.Now()
		}
	}
	require.Error(t, last, "the stream must not end as if complete")
	elapsed := time.Since(killedAt)
	t.Logf("stream ended %v after the kill, after %d documents: %v", elapsed, n, last)
	assert.Less(t, elapsed, 10*time.Second)
	assert.Less(t, n, 100_000)

	srv.Restart()
	require.Eventually(t, func() bool {
		var doc bson.Raw
		return coll.FindOne(ctx, bson.D{}).Decode(&doc) == nil
	}, 20*time.Second, 200*time.Millisecond, "the client works again after a restart")
}
