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
	res, err := e.users.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewInsertOneModel().SetDocument(&d),
		mongo.NewReplaceOneModel().SetReplacement(&f),
		mongo.NewUpdateOneModel().SetFilter(query.Eq("name", "b")).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 40}}}}),
		mongo.NewDeleteManyModel().SetFilter(query.Eq("name", "c")),
	})
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.InsertedCount)
	assert.Equal(t, int64(2), res.MatchedCount)
	assert.Equal(t, int64(1), res.DeletedCount)
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
	_, err = e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&g), mongo.NewInsertOneModel().SetDocument(&dup), mongo.NewInsertOneModel().SetDocument(&h)}, odm.WithoutHooks())
	var be *odm.BulkError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{0}, be.Written)
	require.Len(t, be.Failed, 1)
	assert.Equal(t, 1, be.Failed[0].Index)
	assert.True(t, mongo.IsDuplicateKeyError(err))
	assert.True(t, h.ID.IsZero(), "not sent: its id is back to zero")
	i, j := e.user("i"), e.user("j")
	dup2 := d
	_, err = e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&i), mongo.NewInsertOneModel().SetDocument(&dup2), mongo.NewInsertOneModel().SetDocument(&j)}, odm.WithoutHooks(), odm.Unordered())
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{0, 2}, be.Written)

	// Bad models fail before anything is sent.
	_, err = e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewDeleteManyModel().SetFilter(nil)})
	assert.ErrorIs(t, err, query.ErrNoFilters)
	_, err = e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(User{})})
	assert.ErrorContains(t, err, "not a non-nil")
	invalid := e.user("k")
	invalid.Email = "nope"
	_, err = e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&invalid)})
	assert.ErrorIs(t, err, errInvalid)
	assert.True(t, invalid.ID.IsZero())
}

// TestBulkWriteTakesTheDriversModels: each model's own options are the
// driver's (Upsert on one update model, a Filter on a replacement), a
// cached read sees the result, and the caller's models are not changed
// (odm sends copies with its checked filters).
func TestBulkWriteTakesTheDriversModels(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a := e.user("a")
	require.NoError(t, e.users.Insert(ctx, &a, odm.WithoutHooks()))
	_, err := e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour))
	require.NoError(t, err)

	byName := query.Eq("name", "zed")
	up := mongo.NewUpdateOneModel().SetFilter(byName).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 7}}}}).SetUpsert(true)
	repl := e.user("a2")
	repl.ID = a.ID
	rm := mongo.NewReplaceOneModel().SetFilter(query.Eq("name", "a")).SetReplacement(&repl)
	res, err := e.users.BulkWrite(ctx, []mongo.WriteModel{up, rm}, odm.WithoutHooks())
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.UpsertedCount, "the update model's own Upsert")
	assert.EqualValues(t, 1, res.ModifiedCount, "the replacement by its Filter")
	assert.Equal(t, byName, up.Filter, "the caller's model is not changed")

	got, err := e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour), query.Sort(bson.D{{Key: "name", Value: 1}}))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "a2", got[0].Name, "the cached read sees the replacement")
	assert.Equal(t, 7, got[1].Age, "and the upserted document")
}
