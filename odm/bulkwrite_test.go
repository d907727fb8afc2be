package odm_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestMixedBulkWrite: inserts, a replacement, updates and deletes in one
// BulkWrite, with hooks for the documents, counts, the cache invalidated,
// and a BulkError that classifies each model when one is rejected.
func TestMixedBulkWrite(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	seed := []User{e.user("a"), e.user("b"), e.user("c")}
	require.NoError(t, e.users.InsertMany(ctx, seed, odm.WithoutHooks()))
	_, err := e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour)) // a cached read to invalidate
	require.NoError(t, err)
	e.calls.reset()

	d, f := e.user("d"), seed[0]
	f.Age = 99
	res, err := e.users.BulkWrite(ctx, []odm.WriteModel{
		odm.InsertModel(&d),
		odm.ReplaceModel(&f),
		odm.UpdateOneModel(query.Eq("name", "b"), bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 40}}}}),
		odm.DeleteManyModel(query.Eq("name", "c")),
	})
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.Inserted)
	assert.Equal(t, int64(2), res.Matched)
	assert.Equal(t, int64(1), res.Deleted)
	assert.False(t, d.ID.IsZero(), "the insert's id was assigned")
	assert.Equal(t, []string{"BeforeInsert:d", "Validate:d", "BeforeSave:a", "Validate:a", "AfterInsert:d", "AfterSave:a"}, e.calls.names())
	got, err := e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour), query.Sort(bson.D{{Key: "name", Value: 1}}))
	require.NoError(t, err)
	require.Len(t, got, 3, "the cache was invalidated: a, b, d")
	assert.Equal(t, 99, got[0].Age)
	assert.Equal(t, 40, got[1].Age)

	// A rejected model: ordered stops there; unordered goes on.
	dup := d // same _id: a duplicate key
	g, h := e.user("g"), e.user("h")
	_, err = e.users.BulkWrite(ctx, []odm.WriteModel{odm.InsertModel(&g), odm.InsertModel(&dup), odm.InsertModel(&h)}, odm.WithoutHooks())
	var be *odm.BulkError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{0}, be.Written)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 1, be.Failed[0].Index)
	assert.True(t, mongo.IsDuplicateKeyError(err))
	assert.True(t, h.ID.IsZero(), "not sent: its id is back to zero")
	i, j := e.user("i"), e.user("j")
	dup2 := d
	_, err = e.users.BulkWrite(ctx, []odm.WriteModel{odm.InsertModel(&i), odm.InsertModel(&dup2), odm.InsertModel(&j)}, odm.WithoutHooks(), odm.Unordered())
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{0, 2}, be.Written)

	// Bad models fail before anything is sent.
	_, err = e.users.BulkWrite(ctx, []odm.WriteModel{odm.DeleteManyModel(nil)})
	assert.ErrorIs(t, err, query.ErrNoFilters)
	_, err = e.users.BulkWrite(ctx, []odm.WriteModel{odm.InsertModel(User{})})
	assert.ErrorContains(t, err, "not a non-nil")
	invalid := e.user("k")
	invalid.Email = "nope"
	_, err = e.users.BulkWrite(ctx, []odm.WriteModel{odm.InsertModel(&invalid)})
	assert.ErrorIs(t, err, errInvalid)
	assert.True(t, invalid.ID.IsZero())
}
