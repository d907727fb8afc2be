package testdb_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/testdb"
)

// TestSmoke proves the wiring every integration test relies on: insert, a
// find whose results span several batches (so getMore runs), and drop.
func TestSmoke(t *testing.T) {
	var log testdb.CommandLog
	cl := testdb.NewClient(t, options.Client().SetMonitor(log.Monitor()))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	coll := db.Collection("smoke")

	const n = 250
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: int32(i)}, {Key: "name", Value: "doc"}}
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)

	log.Reset()
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(100).SetSort(bson.D{{Key: "i", Value: 1}}))
	require.NoError(t, err)
	var got []struct {
		I int `bson:"i"`
	}
	require.NoError(t, cur.All(ctx, &got))
	require.Len(t, got, n)
	for i, g := range got {
		assert.Equal(t, i, g.I)
	}
	assert.Equal(t, 1, log.Count("find"))
	assert.GreaterOrEqual(t, log.Count("getMore"), 2, "a 250-document result in batches of 100 needs getMore")

	require.NoError(t, db.Drop(ctx))
	names, err := cl.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: db.Name()}})
	require.NoError(t, err)
	assert.Empty(t, names)
}

func TestName(t *testing.T) {
	tests := []struct{ give string }{{"a"}, {"a/b c"}, {string(make([]byte, 200))}}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			n := testdb.Name(t)
			assert.LessOrEqual(t, len(n), 63)
			assert.Regexp(t, `^[A-Za-z0-9_]+$`, n)
		})
	}
}
