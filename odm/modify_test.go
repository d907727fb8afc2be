package odm_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestFindAndModify: FindOneAndUpdate, FindOneAndReplace and
// FindOneAndDelete return the typed document, before or after, with
// upsert, sort and projection, and invalidate the cache like any write.
func TestFindAndModify(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	require.NoError(t, e.users.InsertMany(ctx, []User{e.user("a"), e.user("b"), e.user("c")}, odm.WithoutHooks()))
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}}

	// A cached read first: the write must invalidate it.
	cached, err := e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour))
	require.NoError(t, err)
	require.Len(t, cached, 3)

	before, err := e.users.FindOneAndUpdate(ctx, query.Eq("name", "b"), inc)
	require.NoError(t, err)
	assert.Equal(t, 30, before.Age, "the document before, by default")
	afterDoc, err := e.users.FindOneAndUpdate(ctx, query.Eq("name", "b"), inc, odm.ReturnAfter())
	require.NoError(t, err)
	assert.Equal(t, 32, afterDoc.Age)
	got, err := e.users.FindOne(ctx, query.Eq("name", "b"), query.Cached(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 32, got.Age, "the cache was invalidated")

	// Sort picks which; Projection shapes what comes back.
	first, err := e.users.FindOneAndUpdate(ctx, bson.D{}, inc, query.Sort(bson.D{{Key: "name", Value: -1}}))
	require.NoError(t, err)
	assert.Equal(t, "c", first.Name)
	t.Run("projection", func(t *testing.T) {
		testdb.NotRunOnFerretDB(t, "findAndModify's fields (projection) is not implemented")
		doc, err := e.users.FindOneAndUpdate(ctx, query.Eq("name", "c"), inc, query.Projection(bson.D{{Key: "email", Value: 0}}))
		require.NoError(t, err)
		assert.Empty(t, doc.Email, "projected out")
	})

	// Nothing matches: ErrNotFound, unless Upsert.
	_, err = e.users.FindOneAndUpdate(ctx, query.Eq("name", "zed"), inc)
	require.ErrorIs(t, err, query.ErrNotFound)
	up, err := e.users.FindOneAndUpdate(ctx, query.Eq("name", "zed"), bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 9}}}}, odm.Upsert(), odm.ReturnAfter())
	require.NoError(t, err)
	assert.Equal(t, "zed", up.Name)
	assert.Equal(t, 9, up.Age)

	// Replace runs BeforeSave and Validate on the replacement.
	e.calls.reset()
	repl := e.user("a2")
	prev, err := e.users.FindOneAndReplace(ctx, query.Eq("name", "a"), &repl)
	require.NoError(t, err)
	assert.Equal(t, "a", prev.Name)
	assert.Equal(t, []string{"BeforeSave:a2", "Validate:a2", "AfterSave:a2"}, e.calls.names())
	bad := e.user("x")
	bad.Email = "no-at"
	_, err = e.users.FindOneAndReplace(ctx, query.Eq("name", "a2"), &bad)
	require.ErrorIs(t, err, errInvalid)

	gone, err := e.users.FindOneAndDelete(ctx, query.Eq("name", "zed"))
	require.NoError(t, err)
	assert.Equal(t, 9, gone.Age)
	_, err = e.users.FindOneAndDelete(ctx, query.Eq("name", "zed"))
	require.ErrorIs(t, err, query.ErrNotFound)
	n, err := e.users.Count(ctx, bson.D{}, query.Cached(time.Hour))
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)
}

// TestUpdateOptions: ArrayFilters, Let, Hint and Collation reach the
// server (FerretDB refuses some: those rows are NOT RUN there).
func TestUpdateOptions(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "a"}, {Key: "scores", Value: bson.A{1, 5, 9}}})
	require.NoError(t, err)
	res, err := e.users.UpdateOne(ctx, query.Eq("name", "a"),
		bson.D{{Key: "$set", Value: bson.D{{Key: "scores.$[low]", Value: 0}}}},
		odm.ArrayFilters(bson.D{{Key: "low", Value: bson.D{{Key: "$lt", Value: 5}}}}))
	if err != nil {
		t.Skipf("NOT RUN: the server refuses arrayFilters (%v)", err)
	}
	assert.EqualValues(t, 1, res.ModifiedCount)
	var doc struct {
		Scores []int `bson:"scores"`
	}
	require.NoError(t, e.coll.FindOne(ctx, bson.D{{Key: "name", Value: "a"}}).Decode(&doc))
	assert.Equal(t, []int{0, 5, 9}, doc.Scores)
}

// TestFindAndModifyUpsertReturnsBefore: with Upsert and the document
// before (the default), a find-and-modify that inserts returns the zero
// document and no error: there was no document before, and one was
// written, so ErrNotFound ("nothing matched and nothing was inserted")
// would be false.
func TestFindAndModifyUpsertReturnsBefore(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	got, err := e.users.FindOneAndUpdate(ctx, query.Eq("name", "up"), bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 7}}}}, odm.Upsert())
	require.NoError(t, err, "the upsert inserted a document")
	assert.Equal(t, User{}, got, "no document before: the zero T")
	stored, err := e.users.FindOne(ctx, query.Eq("name", "up"))
	require.NoError(t, err, "the document is inserted")
	assert.Equal(t, 7, stored.Age)

	repl := e.user("rep")
	got, err = e.users.FindOneAndReplace(ctx, query.Eq("name", "rep"), &repl, odm.Upsert())
	require.NoError(t, err, "the upsert inserted a document")
	assert.Equal(t, User{}, got, "no document before: the zero T")
	stored, err = e.users.FindOne(ctx, query.Eq("name", "rep"))
	require.NoError(t, err, "the document is inserted")
	assert.Equal(t, "rep@example.com", stored.Email)

	// Without Upsert, nothing matched and nothing was inserted.
	_, err = e.users.FindOneAndUpdate(ctx, query.Eq("name", "none"), bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 1}}}})
	require.ErrorIs(t, err, query.ErrNotFound)
	_, err = e.users.FindOneAndReplace(ctx, query.Eq("name", "none"), &repl)
	require.ErrorIs(t, err, query.ErrNotFound)
	n, err := e.users.Count(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}
