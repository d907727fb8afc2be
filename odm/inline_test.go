package odm_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Model is embedded the way mgm users embed mgm.DefaultModel.
type Model struct {
	ID bson.ObjectID `bson:"_id"`
}

type Inlined struct {
	Model `bson:",inline"`
	Name  string `bson:"name"`
}

type InlinedPtr struct {
	*Model `bson:",inline"`
	Name   string `bson:"name"`
}

// Audited inlines a struct that inlines Model: the _id is two levels down.
type Audited struct {
	Inlined `bson:",inline"`
	Note    string `bson:"note"`
}

// Shadowed has an _id of its own, which dominates the inlined one, as in
// the driver (the shallower field wins).
type Shadowed struct {
	Model `bson:",inline"`
	Key   string `bson:"_id"`
}

// Embedded embeds Model without the inline tag: the driver stores it as
// the subdocument "model", so the document has no _id of its own.
type Embedded struct {
	Model
	Name string `bson:"name"`
}

// inlineCase is one model type whose _id is in an inlined struct.
type inlineCase[T any] struct {
	make    func(name string) T // a document with a zero _id
	id      func(*T) bson.ObjectID
	setID   func(*T, bson.ObjectID)
	setName func(*T, string)
}

// TestInlinedID: a model whose _id is in an inlined struct (bson:",inline",
// also through a pointer and two levels down) is written by Save (new and
// caller-chosen _id, hooks or the fast path), InsertMany, BulkSave,
// Replace and FindOneAndReplace, and read back equal. On a785bb8 every write failed: "has no
// field tagged bson:"_id"".
func TestInlinedID(t *testing.T) {
	db := testdb.DB(t)
	t.Run("Inlined", func(t *testing.T) {
		testInlinedID(t, handle[Inlined](t, db.Collection("inlined")), inlineCase[Inlined]{
			make:    func(name string) Inlined { return Inlined{Name: name} },
			id:      func(d *Inlined) bson.ObjectID { return d.ID },
			setID:   func(d *Inlined, id bson.ObjectID) { d.ID = id },
			setName: func(d *Inlined, name string) { d.Name = name },
		})
	})
	t.Run("InlinedPtr", func(t *testing.T) {
		testInlinedID(t, handle[InlinedPtr](t, db.Collection("inlinedptr")), inlineCase[InlinedPtr]{
			make:    func(name string) InlinedPtr { return InlinedPtr{Model: &Model{}, Name: name} },
			id:      func(d *InlinedPtr) bson.ObjectID { return d.ID },
			setID:   func(d *InlinedPtr, id bson.ObjectID) { d.ID = id },
			setName: func(d *InlinedPtr, name string) { d.Name = name },
		})
	})
	t.Run("Audited", func(t *testing.T) {
		testInlinedID(t, handle[Audited](t, db.Collection("audited")), inlineCase[Audited]{
			make:    func(name string) Audited { return Audited{Inlined: Inlined{Name: name}, Note: "n"} },
			id:      func(d *Audited) bson.ObjectID { return d.ID },
			setID:   func(d *Audited, id bson.ObjectID) { d.ID = id },
			setName: func(d *Audited, name string) { d.Name = name },
		})
	})
}

func testInlinedID[T any](t *testing.T, h *odm.Collection[T], tc inlineCase[T]) {
	ctx := context.Background()
	readBack := func(t *testing.T, want T) {
		t.Helper()
		got, err := h.FindOne(ctx, query.Eq("_id", tc.id(&want)))
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	fast := []query.WriteOption{odm.WithoutHooks(), odm.WithoutValidation()}
	for _, opts := range [][]query.WriteOption{nil, fast} {
		t.Run("Save new", func(t *testing.T) {
			d := tc.make("new")
			require.NoError(t, h.Save(ctx, &d, opts...))
			require.False(t, tc.id(&d).IsZero(), "a new ObjectID is written back")
			readBack(t, d)
			tc.setName(&d, "saved again")
			require.NoError(t, h.Save(ctx, &d, opts...), "a second Save replaces it")
			readBack(t, d)
		})
		t.Run("Save chosen", func(t *testing.T) {
			d := tc.make("chosen")
			id := bson.NewObjectID()
			tc.setID(&d, id)
			require.NoError(t, h.Save(ctx, &d, opts...))
			assert.Equal(t, id, tc.id(&d))
			readBack(t, d)
		})
		t.Run("InsertMany", func(t *testing.T) {
			chosen := tc.make("many chosen")
			tc.setID(&chosen, bson.NewObjectID())
			docs := []T{tc.make("many new"), chosen}
			require.NoError(t, h.InsertMany(ctx, docs, opts...))
			for i := range docs {
				require.False(t, tc.id(&docs[i]).IsZero())
				readBack(t, docs[i])
			}
		})
		t.Run("BulkSave", func(t *testing.T) {
			docs := []T{tc.make("bulk new")}
			require.NoError(t, h.BulkSave(ctx, docs, opts...))
			require.False(t, tc.id(&docs[0]).IsZero())
			readBack(t, docs[0])
		})
		t.Run("Replace", func(t *testing.T) {
			d := tc.make("to replace")
			require.NoError(t, h.Insert(ctx, &d, opts...))
			tc.setName(&d, "replaced")
			require.NoError(t, h.Replace(ctx, &d, opts...))
			readBack(t, d)
			// FindOneAndReplace with a zero _id keeps the stored one.
			by := tc.make("replaced by filter")
			prev, err := h.FindOneAndReplace(ctx, query.Eq("_id", tc.id(&d)), &by, opts...)
			require.NoError(t, err)
			assert.Equal(t, d, prev)
			tc.setID(&by, tc.id(&d))
			readBack(t, by)
			require.NoError(t, h.Delete(ctx, &d, opts...))
			_, err = h.FindOne(ctx, query.Eq("_id", tc.id(&d)))
			require.ErrorIs(t, err, query.ErrNotFound)
		})
	}
}

// TestInlinedIDNilPointer: a nil pointer to the inlined struct holding the
// _id does not panic. The driver writes no _id from it (and allocates it
// when decoding); Save allocates it to write the new _id into, as the
// driver's decoder does, so the document is stored under that _id.
func TestInlinedIDNilPointer(t *testing.T) {
	h := handle[InlinedPtr](t, testdb.DB(t).Collection("inlinedptr"))
	ctx := context.Background()
	for _, opts := range [][]query.WriteOption{nil, {odm.WithoutHooks(), odm.WithoutValidation()}} {
		d := InlinedPtr{Name: "nil model"}
		require.NotPanics(t, func() { require.NoError(t, h.Save(ctx, &d, opts...)) })
		require.NotNil(t, d.Model, "allocated to hold the new _id")
		require.False(t, d.ID.IsZero())
		got, err := h.FindOne(ctx, query.Eq("_id", d.ID))
		require.NoError(t, err)
		assert.Equal(t, d, got)

		docs := []InlinedPtr{{Name: "nil in many"}}
		require.NotPanics(t, func() { require.NoError(t, h.InsertMany(ctx, docs, opts...)) })
		require.NotNil(t, docs[0].Model)
		got, err = h.FindOne(ctx, query.Eq("_id", docs[0].ID))
		require.NoError(t, err)
		assert.Equal(t, docs[0], got)

		// Replace and Delete read the _id: a nil pointer holds none, so
		// no document has it.
		none := InlinedPtr{Name: "no id"}
		require.NotPanics(t, func() { require.ErrorIs(t, h.Replace(ctx, &none, opts...), query.ErrNotFound) })
		require.NotPanics(t, func() { require.ErrorIs(t, h.Delete(ctx, &none, opts...), query.ErrNotFound) })
	}
}

// TestInlinedIDDriverRules: the _id is found where the driver's struct
// codec puts it: a top-level _id dominates an inlined one, and a struct
// embedded without bson:",inline" is a subdocument (the driver stores it
// under its lower-cased name), so its _id is not the document's.
func TestInlinedIDDriverRules(t *testing.T) {
	db := testdb.DB(t)
	ctx := context.Background()

	sh := handle[Shadowed](t, db.Collection("shadowed"))
	d := Shadowed{Key: "k1"}
	require.NoError(t, sh.Save(ctx, &d))
	raw, err := db.Collection("shadowed").FindOne(ctx, bson.D{}).Raw()
	require.NoError(t, err)
	assert.Equal(t, "k1", raw.Lookup("_id").StringValue(), "the top-level _id is the document's")
	got, err := sh.FindOne(ctx, query.Eq("_id", "k1"))
	require.NoError(t, err)
	assert.Equal(t, d, got)

	em := handle[Embedded](t, db.Collection("embedded"))
	e := Embedded{Name: "e"}
	err = em.Save(ctx, &e)
	require.Error(t, err, "the document has no _id field of its own")
	assert.Contains(t, err.Error(), `bson:",inline"`, "the message says how to make it the document's _id")
	b, err := bson.Marshal(e)
	require.NoError(t, err)
	_, err = bson.Raw(b).LookupErr("model", "_id")
	require.NoError(t, err, "the driver stores the embedded struct as a subdocument")
}
