package odm_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

type IntDoc struct {
	ID   int    `bson:"_id"`
	Name string `bson:"name"`
}

type StringDoc struct {
	ID   string `bson:"_id"`
	Name string `bson:"name"`
}

type PtrDoc struct {
	ID   *int   `bson:"_id"`
	Name string `bson:"name"`
}

// TestSaveIdentityPerIDType: only a zero ObjectID means "new, generate
// one". Any other _id is the caller's, 0 included: Save upserts by it every
// time. On 16a31ad an int _id of 0 was taken for new, so the second Save
// failed with a duplicate key; an empty string _id was stored as "".
func TestSaveIdentityPerIDType(t *testing.T) {
	db := testdb.DB(t)
	ctx := context.Background()
	for _, fast := range []bool{false, true} {
		var opts []query.WriteOption
		if fast {
			opts = []query.WriteOption{odm.WithoutHooks(), odm.WithoutValidation()}
		}
		t.Run("int 0 is an id", func(t *testing.T) {
			ints, err := odm.New[IntDoc](db.Collection("ints"))
			require.NoError(t, err)
			d := IntDoc{ID: 0, Name: "zero"}
			require.NoError(t, ints.Save(ctx, &d, opts...))
			d.Name = "still zero"
			require.NoError(t, ints.Save(ctx, &d, opts...), "a second Save of _id 0 upserts it")
			got, err := ints.FindMany(ctx, bson.D{})
			require.NoError(t, err)
			assert.Equal(t, []IntDoc{{ID: 0, Name: "still zero"}}, got)
			require.NoError(t, ints.BulkSave(ctx, []IntDoc{{ID: 0, Name: "bulk"}}, opts...))
			n, err := ints.Count(ctx, nil)
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
		})
		t.Run("empty string is refused", func(t *testing.T) {
			strs, err := odm.New[StringDoc](db.Collection("strings"))
			require.NoError(t, err)
			d := StringDoc{Name: "nobody chose my id"}
			require.ErrorIs(t, strs.Save(ctx, &d, opts...), odm.ErrNoID)
			require.ErrorIs(t, strs.Insert(ctx, &d, opts...), odm.ErrNoID)
			require.ErrorIs(t, strs.InsertMany(ctx, []StringDoc{{ID: "a"}, d}, opts...), odm.ErrNoID)
			require.ErrorIs(t, strs.BulkSave(ctx, []StringDoc{d}, opts...), odm.ErrNoID)
			n, err := strs.Count(ctx, query.Eq("_id", ""))
			require.NoError(t, err)
			assert.Zero(t, n, "nothing was written")
			d.ID = "chosen"
			require.NoError(t, strs.Save(ctx, &d, opts...))
		})
		t.Run("nil pointer is refused", func(t *testing.T) {
			ptrs, err := odm.New[PtrDoc](db.Collection("ptrs"))
			require.NoError(t, err)
			require.ErrorIs(t, ptrs.Save(ctx, &PtrDoc{Name: "x"}, opts...), odm.ErrNoID)
		})
	}
}

// TestSaveAssignsIDOnlyWhenWritten: a Save (or InsertMany, BulkSave) that
// fails before anything is sent, or that the server refuses, leaves a zero
// ObjectID zero, so the retry is an insert again and its insert hooks run.
// On 16a31ad a Save that failed validation had already written a fresh id
// into the struct: the retry took the upsert path and AfterInsert never ran.
func TestSaveAssignsIDOnlyWhenWritten(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	u := e.user("ada")
	u.Email = "invalid"
	require.ErrorIs(t, e.users.Save(ctx, &u), errInvalid)
	assert.True(t, u.ID.IsZero(), "no id before the write is attempted")
	e.calls.reset()
	u.Email = "ada@example.com"
	require.NoError(t, e.users.Save(ctx, &u))
	assert.False(t, u.ID.IsZero())
	assert.Equal(t, []string{"BeforeSave:ada", "BeforeInsert:ada", "Validate:ada", "AfterInsert:ada", "AfterSave:ada"}, e.calls.names())

	// A hook that refuses.
	b := e.user("bob")
	e.calls.fail = map[string]bool{"BeforeInsert": true}
	require.Error(t, e.users.Save(ctx, &b))
	assert.True(t, b.ID.IsZero())
	e.calls.reset()

	// Bulk writes: one invalid document fails the call before anything is
	// sent; every id stays as it was.
	docs := []User{e.user("c1"), e.user("c2"), e.user("c3")}
	docs[2].Email = "invalid"
	require.ErrorIs(t, e.users.InsertMany(ctx, docs), errInvalid)
	require.ErrorIs(t, e.users.BulkSave(ctx, docs), errInvalid)
	for i := range docs {
		assert.True(t, docs[i].ID.IsZero(), "document %d", i)
	}

	// The server refuses the insert (a duplicate on a unique index): the
	// id is not the document's, so it goes back to zero.
	_, err := e.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
	require.NoError(t, err)
	dup := e.user("ada")
	require.Error(t, e.users.Save(ctx, &dup))
	assert.True(t, dup.ID.IsZero(), "a refused insert leaves no id behind")
}

// TestNilAndEmptyFiltersOnWrites: a write with a nil filter, or with an
// empty Or built from an empty list, fails and writes nothing (on 16a31ad,
// DeleteMany(ctx, query.Or()) deleted the whole collection).
func TestNilAndEmptyFiltersOnWrites(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	docs := []User{e.user("a"), e.user("b")}
	require.NoError(t, e.users.InsertMany(ctx, docs))
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 99}}}}
	for _, filter := range []any{nil, query.Or(), query.And()} {
		_, err := e.users.DeleteMany(ctx, filter)
		require.Error(t, err)
		_, err = e.users.UpdateMany(ctx, filter, set)
		require.Error(t, err)
		_, err = e.users.UpdateOne(ctx, filter, set)
		require.Error(t, err)
	}
	_, err := e.users.DeleteMany(ctx, nil)
	assert.ErrorIs(t, err, query.ErrNoFilters)
	_, err = e.users.DeleteMany(ctx, query.Or())
	assert.ErrorIs(t, err, query.ErrNoFilters)
	got := e.stored(t)
	require.Len(t, got, 2)
	assert.Equal(t, 30, got[0].Age)
}

// TestBulkErrorNothingSent: when no server can be selected, nothing was
// sent, so a BulkError lists no document as Unknown. On 16a31ad every
// document was listed Unknown.
func TestBulkErrorNothingSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	cl, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr + "/?directConnection=true").
		SetServerSelectionTimeout(200 * time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	users, err := odm.New[User](cl.Database("nowhere").Collection("users"))
	require.NoError(t, err)
	ctx := context.Background()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for name, write := range map[string]func(ctx context.Context, docs []User) error{
		"InsertMany":      func(ctx context.Context, docs []User) error { return users.InsertMany(ctx, docs) },
		"InsertMany fast": func(ctx context.Context, docs []User) error { return users.InsertMany(ctx, docs, odm.WithoutHooks()) },
		"BulkSave":        func(ctx context.Context, docs []User) error { return users.BulkSave(ctx, docs) },
	} {
		for ctxName, ctx := range map[string]context.Context{"no server": ctx, "context done before": cancelled} {
			t.Run(name+"/"+ctxName, func(t *testing.T) {
				docs := make([]User, 5)
				for i := range docs {
					docs[i] = User{Name: "u", Email: "u@example.com"}
				}
				err := write(ctx, docs)
				var be *odm.BulkError
				require.ErrorAs(t, err, &be)
				assert.Empty(t, be.Unknown, "nothing was sent: %v", err)
				assert.Empty(t, be.Written)
				assert.Empty(t, be.Failed)
				if ctxName == "no server" {
					var sse topology.ServerSelectionError
					assert.True(t, errors.As(err, &sse), "%v", err)
				} else {
					assert.ErrorIs(t, err, context.Canceled)
				}
			})
		}
	}
}
