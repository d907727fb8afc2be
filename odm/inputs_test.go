package odm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// writeCommands counts the commands that change data, as sent.
func writeCommands(e env) int {
	return e.log.Count("insert") + e.log.Count("update") + e.log.Count("delete") + e.log.Count("findAndModify")
}

// nothingFilters are the filters that say nothing: every typed and untyped
// nil, every empty form other than the explicit bson.D{}, and combinations
// built from a zero Filter. None may reach the server as "every document".
func nothingFilters() map[string]any {
	type omitted struct {
		Name string `bson:"name,omitempty"`
	}
	empty, _ := bson.Marshal(bson.D{})
	return map[string]any{
		"nil":                       nil,
		"bson.M(nil)":               bson.M(nil),
		"map[string]any(nil)":       map[string]any(nil),
		"bson.D(nil)":               bson.D(nil),
		"bson.Raw(nil)":             bson.Raw(nil),
		"[]byte(nil)":               []byte(nil),
		"(*bson.D)(nil)":            (*bson.D)(nil),
		"(*bson.M)(nil)":            (*bson.M)(nil),
		"bson.M{}":                  bson.M{},
		"map[string]any{}":          map[string]any{},
		"empty bson.Raw":            bson.Raw(empty),
		"a struct encoding to {}":   omitted{},
		"query.Filter{}":            query.Filter{},
		"query.And(Filter{})":       query.And(query.Filter{}),
		"query.Or(Filter{}, Eq)":    query.Or(query.Filter{}, query.Eq("name", "a")),
		"query.Not(Filter{})":       query.Not(query.Filter{}),
		"query.ElemMatch(Filter{})": query.ElemMatch("tags", query.Filter{}),
		// Found by an independent tester: on 3a1c28b each of these
		// selected, and deleted, every document.
		"[]bson.E{}":             []bson.E{},
		"&bson.D{}":              &bson.D{},
		"only $comment":          bson.D{{Key: "$comment", Value: "x"}},
		"$and of {}":             bson.D{{Key: "$and", Value: bson.A{bson.D{}}}},
		"$or of {} and $comment": bson.M{"$or": bson.A{bson.D{}, bson.D{{Key: "$comment", Value: "y"}}}},
		"bson.D{{}}":             bson.D{{}},
		// Found by a second independent tester: on 700c2a6 each of these
		// selected every document.
		`{"": {$eq: null}}`:               bson.D{{Key: "", Value: bson.D{{Key: "$eq", Value: nil}}}},
		`{"": {$exists: false}}`:          bson.D{{Key: "", Value: bson.D{{Key: "$exists", Value: false}}}},
		`$or of {} and a condition`:       bson.D{{Key: "$or", Value: bson.A{bson.D{}, bson.D{{Key: "_id", Value: -1}}}}},
		`$or of $comment and a condition`: bson.M{"$or": bson.A{bson.D{{Key: "$comment", Value: "x"}}, bson.D{{Key: "_id", Value: -1}}}},
		`{$expr: true}`:                   bson.D{{Key: "$expr", Value: true}},
		`{$expr: 1}`:                      bson.D{{Key: "$expr", Value: 1}},
	}
}

// TestNothingFiltersAreRefused: every write that takes a filter refuses
// every filter that says nothing, with query.ErrNoFilters,
// and sends nothing. On d78d092 bson.M(nil), map[string]any(nil), a zero
// query.Filter and query.And(query.Filter{}) updated or deleted every
// document, and bson.D(nil), bson.Raw(nil) and (*bson.D)(nil) failed with
// an untyped marshal error.
func TestNothingFiltersAreRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	require.NoError(t, e.users.InsertMany(ctx, []User{e.user("a"), e.user("b")}, odm.WithoutHooks()))
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 99}}}}
	writes := map[string]func(filter any) error{
		"UpdateOne":  func(f any) error { _, err := e.users.UpdateOne(ctx, f, set); return err },
		"UpdateMany": func(f any) error { _, err := e.users.UpdateMany(ctx, f, set); return err },
		"DeleteOne":  func(f any) error { _, err := e.users.DeleteOne(ctx, f); return err },
		"DeleteMany": func(f any) error { _, err := e.users.DeleteMany(ctx, f); return err },
		"FindOneAndUpdate": func(f any) error {
			_, err := e.users.FindOneAndUpdate(ctx, f, set)
			return err
		},
		"FindOneAndReplace": func(f any) error {
			u := e.user("r")
			_, err := e.users.FindOneAndReplace(ctx, f, &u)
			return err
		},
		"FindOneAndDelete": func(f any) error { _, err := e.users.FindOneAndDelete(ctx, f); return err },
		"BulkWrite UpdateOneModel": func(f any) error {
			_, err := e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewUpdateOneModel().SetFilter(f).SetUpdate(set)})
			return err
		},
		"BulkWrite UpdateManyModel": func(f any) error {
			_, err := e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewUpdateManyModel().SetFilter(f).SetUpdate(set)})
			return err
		},
		"BulkWrite DeleteOneModel": func(f any) error {
			_, err := e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewDeleteOneModel().SetFilter(f)})
			return err
		},
		"BulkWrite DeleteManyModel": func(f any) error {
			_, err := e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewDeleteManyModel().SetFilter(f)})
			return err
		},
	}
	e.log.Reset()
	for wname, write := range writes {
		for fname, filter := range nothingFilters() {
			t.Run(wname+"/"+fname, func(t *testing.T) {
				err := write(filter)
				require.Error(t, err)
				assert.ErrorIs(t, err, query.ErrNoFilters, "not a typed refusal")
			})
		}
	}
	assert.Zero(t, writeCommands(e), "nothing was sent")
	got := e.stored(t)
	require.Len(t, got, 2)
	assert.Equal(t, 30, got[0].Age)
	assert.Equal(t, 30, got[1].Age)

	// The one explicit spelling of every document.
	res, err := e.users.UpdateMany(ctx, bson.D{}, set)
	require.NoError(t, err)
	assert.EqualValues(t, 2, res.MatchedCount)
}

// TestMalformedBulkModels: each malformed model is a *odm.WriteError naming
// its index, returned before anything is sent, and never a panic. On
// d78d092 a nil model panicked (odm/bulkwrite.go:89).
func TestMalformedBulkModels(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ok := e.user("ok")
	filter := query.Eq("name", "a")
	tests := []struct {
		name    string
		give    mongo.WriteModel
		wantErr error // matched with errors.Is, when not nil
	}{
		{"nil model", nil, odm.ErrNilModel},
		{"insert of nil", mongo.NewInsertOneModel().SetDocument(nil), nil},
		{"insert of a nil *T", mongo.NewInsertOneModel().SetDocument((*User)(nil)), nil},
		{"insert of a T, not a *T", mongo.NewInsertOneModel().SetDocument(User{}), nil},
		{"insert of another type", mongo.NewInsertOneModel().SetDocument(&struct{ A int }{}), nil},
		{"replace of a nil *T", mongo.NewReplaceOneModel().SetReplacement((*User)(nil)), nil},
		{"update with a nil update", mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(nil), odm.ErrInvalidUpdate},
		{"update without operators", mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(bson.D{{Key: "age", Value: 1}}), odm.ErrInvalidUpdate},
		{"update with an empty document", mongo.NewUpdateManyModel().SetFilter(filter).SetUpdate(bson.D{}), odm.ErrInvalidUpdate},
		{"update mixing operators and fields", mongo.NewUpdateManyModel().SetFilter(filter).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "b", Value: 2}}), odm.ErrInvalidUpdate},
		{"delete with a nil filter", mongo.NewDeleteOneModel().SetFilter(nil), query.ErrNoFilters},
	}
	e.log.Reset()
	for _, tt := range tests {
		for _, at := range []int{0, 1} { // alone, and after a valid model
			t.Run(fmt.Sprintf("%s/at %d", tt.name, at), func(t *testing.T) {
				models := []mongo.WriteModel{tt.give}
				if at == 1 {
					models = []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&ok), tt.give}
				}
				var err error
				require.NotPanics(t, func() { _, err = e.users.BulkWrite(ctx, models) })
				var me *odm.WriteError
				require.ErrorAs(t, err, &me)
				assert.Equal(t, at, me.Index)
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				}
				assert.True(t, ok.ID.IsZero(), "the valid model's id is not kept: nothing was sent")
			})
		}
	}
	assert.Zero(t, writeCommands(e), "nothing was sent")
	assert.Empty(t, e.stored(t))
}

// TestRefusedUpdateIsNotUnknown: an update the driver would refuse before
// sending (no $ operators) is refused by odm with ErrInvalidUpdate, before
// anything is sent; it is not a write of unknown outcome, so the cache is
// not paused. On d78d092 the driver's refusal was classified Unknown: the
// collection was unsettled for WriteTimeout + SettleMargin (61 s) and a
// BulkWrite listed the model as Unknown.
func TestRefusedUpdateIsNotUnknown(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	require.NoError(t, e.users.InsertMany(ctx, []User{e.user("a")}, odm.WithoutHooks()))
	noOps := bson.D{{Key: "age", Value: 1}}
	errs := make([]error, 4)
	_, errs[0] = e.users.UpdateOne(ctx, query.Eq("name", "a"), noOps)
	_, errs[1] = e.users.UpdateMany(ctx, query.Eq("name", "a"), noOps)
	_, errs[2] = e.users.FindOneAndUpdate(ctx, query.Eq("name", "a"), noOps)
	_, errs[3] = e.users.BulkWrite(ctx, []mongo.WriteModel{mongo.NewUpdateOneModel().SetFilter(query.Eq("name", "a")).SetUpdate(noOps)})
	assert.Zero(t, e.cache.Stats().Unsettled, "nothing was sent: no write of unknown outcome")
	for i, err := range errs {
		assert.ErrorIs(t, err, odm.ErrInvalidUpdate, "write %d", i)
		var be *odm.BulkError
		assert.False(t, errors.As(err, &be), "refused before sending: not a bulk outcome")
	}
	var err error
	_, err = e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour))
	require.NoError(t, err)
	_, err = e.users.FindMany(ctx, bson.D{}, query.Cached(time.Hour))
	require.NoError(t, err)
	st := e.cache.Stats()
	assert.Zero(t, st.Bypassed, "the cache serves reads")
	assert.EqualValues(t, 1, st.Hits)

	// A pipeline update is an update too.
	_, err = e.users.UpdateOne(ctx, query.Eq("name", "a"), mongo.Pipeline{{{Key: "$set", Value: bson.D{{Key: "age", Value: 31}}}}})
	if err != nil {
		assert.NotErrorIs(t, err, odm.ErrInvalidUpdate)
	}
}

// TestOneErrNotFound: every read and write that finds nothing returns the
// same ErrNotFound, which matches query.ErrNotFound and mongo.ErrNoDocuments,
// and a find-and-modify by filter does not claim an _id was searched. On
// d78d092 FindOne returned query.ErrNotFound, which did not match
// query.ErrNotFound, and FindOneAndUpdate said "no document with that _id".
func TestOneErrNotFound(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: 1}}}}
	ghost := e.user("ghost")
	ghost.ID = bson.NewObjectID()
	errs := map[string]error{}
	_, errs["FindOne"] = e.users.FindOne(ctx, query.Eq("name", "nobody"))
	_, errs["FindOne cached"] = e.users.FindOne(ctx, query.Eq("name", "nobody"), query.Cached(time.Minute))
	_, errs["FindOneAndUpdate"] = e.users.FindOneAndUpdate(ctx, query.Eq("name", "nobody"), set)
	_, errs["FindOneAndDelete"] = e.users.FindOneAndDelete(ctx, query.Eq("name", "nobody"))
	errs["Replace"] = e.users.Replace(ctx, &ghost)
	errs["Delete"] = e.users.Delete(ctx, &ghost)
	for name, err := range errs {
		assert.ErrorIs(t, err, query.ErrNotFound, name)
		assert.ErrorIs(t, err, query.ErrNotFound, name)
		assert.ErrorIs(t, err, mongo.ErrNoDocuments, name)
	}
	assert.NotContains(t, errs["FindOneAndUpdate"].Error(), "_id")
	assert.Contains(t, errs["Replace"].Error(), ghost.ID.Hex(), "a write by _id names the id")
}

// TestNilDocument: a nil document given to a write of whole documents is
// refused with ErrNilModel, nothing sent. On 3714b1a each panicked in
// reflect (found by an independent tester).
func TestNilDocument(t *testing.T) {
	h, err := odm.New[nilDocUser](testdb.DB(t).Collection("nildoc"))
	require.NoError(t, err)
	ctx := context.Background()
	for name, write := range map[string]func() error{
		"Save":    func() error { return h.Save(ctx, nil) },
		"Insert":  func() error { return h.Insert(ctx, nil) },
		"Replace": func() error { return h.Replace(ctx, nil) },
		"Delete":  func() error { return h.Delete(ctx, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = write() })
			assert.ErrorIs(t, err, odm.ErrNilModel)
		})
	}
}

type nilDocUser struct {
	ID int `bson:"_id"`
}
