package query_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/query"
)

// TestSessionStreamNeverRunsGetMoreConcurrently streams through many
// batches with an explicit session in the context while the loop uses the
// same session for its own queries. mongo.Session is not safe for
// concurrent use, so the stream's getMores must run only between the
// loop's steps (run under -race, which reports the prefetch goroutine's
// use of the session on 16a31ad).
func TestSessionStreamNeverRunsGetMoreConcurrently(t *testing.T) {
	coll := usersColl(t, 600)
	ctx := context.Background()
	sess, err := coll.Database().Client().StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	sctx := mongo.NewSessionContext(ctx, sess)
	h := handle[User](t, coll)
	n := 0
	for u, err := range h.Iter(sctx, nil, query.BatchSize(20)) {
		require.NoError(t, err)
		n++
		if n%7 == 0 { // the loop uses the session between steps
			var doc bson.Raw
			require.NoError(t, coll.FindOne(sctx, bson.D{{Key: "_id", Value: u.ID}}).Decode(&doc))
		}
	}
	assert.Equal(t, 600, n)

	// A cursor opened by the caller is used the same way.
	c, err := h.Cursor(sctx, nil, query.BatchSize(20))
	require.NoError(t, err)
	m := 0
	for _, err := range c.Borrowed(sctx) {
		require.NoError(t, err)
		if m++; m%11 == 0 {
			_, err := coll.CountDocuments(sctx, bson.D{})
			require.NoError(t, err)
		}
	}
	assert.Equal(t, 600, m)
}
