package match

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The documents and filters here are built by hand as extended JSON: what
// is tested is this package's reading of MongoDB's documented semantics, on
// no server. TestMatchesTheServer checks the same against a server.

func raw(t *testing.T, ext string) bson.Raw {
	t.Helper()
	var d bson.Raw
	require.NoError(t, bson.UnmarshalExtJSON([]byte(ext), false, &d), ext)
	return d
}

func TestMatchSemantics(t *testing.T) {
	tests := []struct {
		filter string
		doc    string
		want   Tri
	}{
		// Equality, numbers across types, documents and arrays.
		{`{"a": 1}`, `{"a": 1}`, Yes},
		{`{"a": 1}`, `{"a": {"$numberLong": "1"}}`, Yes},
		{`{"a": 1}`, `{"a": 1.0}`, Yes},
		{`{"a": 1}`, `{"a": {"$numberDecimal": "1.00"}}`, Yes},
		{`{"a": 1}`, `{"a": "1"}`, No},
		{`{"a": 1}`, `{"a": [3, 1]}`, Yes},
		{`{"a": 1}`, `{"a": [[1]]}`, No},
		{`{"a": [1, 2]}`, `{"a": [1, 2]}`, Yes},
		{`{"a": [1, 2]}`, `{"a": [2, 1]}`, No},
		{`{"a": [1, 2]}`, `{"a": [[1, 2], 3]}`, Yes},
		{`{"a": {"b": 1, "c": 2}}`, `{"a": {"b": 1, "c": 2}}`, Yes},
		{`{"a": {"b": 1, "c": 2}}`, `{"a": {"c": 2, "b": 1}}`, No},
		{`{"a": {"b": 1}}`, `{"a": {"b": {"$numberLong": "1"}}}`, Yes},
		{`{"a": 9007199254740993}`, `{"a": 9007199254740992.0}`, No},
		// Dotted paths, through documents and arrays.
		{`{"a.b": 1}`, `{"a": {"b": 1}}`, Yes},
		{`{"a.b": 1}`, `{"a": [{"b": 2}, {"b": 1}]}`, Yes},
		{`{"a.b": 1}`, `{"a": [{"b": [0, 1]}]}`, Yes},
		{`{"a.b": 1}`, `{"a": 1}`, No},
		{`{"a.1": 5}`, `{"a": [4, 5]}`, Yes},
		{`{"a.1": 5}`, `{"a": {"1": 5}}`, Yes},
		{`{"a.1": 5}`, `{"a": [{"1": 5}]}`, Yes},
		// null and missing.
		{`{"a": null}`, `{}`, Yes},
		{`{"a": null}`, `{"a": null}`, Yes},
		{`{"a": null}`, `{"a": [1, null]}`, Yes},
		{`{"a": null}`, `{"a": 0}`, No},
		{`{"a.b": null}`, `{"a": {"c": 1}}`, Yes},
		{`{"a.b": null}`, `{"a": [{"c": 1}]}`, Maybe},
		{`{"a": {"$ne": null}}`, `{}`, No},
		{`{"a": {"$ne": 1}}`, `{}`, Yes},
		{`{"a": {"$ne": 1}}`, `{"a": [1, 2]}`, No},
		// Ranges stay within a type bracket.
		{`{"a": {"$gt": 1}}`, `{"a": 2}`, Yes},
		{`{"a": {"$gt": 1}}`, `{"a": "2"}`, No},
		{`{"a": {"$gt": 1}}`, `{"a": [0, 5]}`, Yes},
		{`{"a": {"$lt": 1}}`, `{"a": [1, 2]}`, No},
		{`{"a": {"$gte": 2, "$lt": 3}}`, `{"a": [1, 4]}`, Yes}, // each condition by another element
		{`{"a": {"$gte": "b"}}`, `{"a": "c"}`, Yes},
		{`{"a": {"$gt": null}}`, `{"a": 1}`, Maybe},
		{`{"a": {"$gt": 1}}`, `{"a": {"$numberDouble": "NaN"}}`, Maybe},
		// $in, $nin, $all, $exists, $size, $type.
		{`{"a": {"$in": [1, 2]}}`, `{"a": 2}`, Yes},
		{`{"a": {"$in": [null]}}`, `{}`, Yes},
		{`{"a": {"$nin": [1, 2]}}`, `{}`, Yes},
		{`{"a": {"$nin": [1, 2]}}`, `{"a": [3, 2]}`, No},
		{`{"a": {"$all": [1, 2]}}`, `{"a": [2, 3, 1]}`, Yes},
		{`{"a": {"$all": [1, 2]}}`, `{"a": [2, 3]}`, No},
		{`{"a": {"$all": []}}`, `{"a": [1]}`, No},
		{`{"a": {"$exists": true}}`, `{"a": null}`, Yes},
		{`{"a": {"$exists": false}}`, `{"b": 1}`, Yes},
		{`{"a.b": {"$exists": true}}`, `{"a": [{"c": 1}, {"b": 2}]}`, Yes},
		{`{"a": {"$size": 2}}`, `{"a": [1, 2]}`, Yes},
		{`{"a": {"$size": 1}}`, `{"a": [[1, 2]]}`, Yes},
		{`{"a": {"$size": 2}}`, `{"a": 2}`, No},
		{`{"a": {"$type": "string"}}`, `{"a": [1, "x"]}`, Yes},
		{`{"a": {"$type": "number"}}`, `{"a": {"$numberLong": "5"}}`, Yes},
		{`{"a": {"$type": "array"}}`, `{"a": []}`, Yes},
		{`{"a": {"$type": 2}}`, `{"a": 1}`, No},
		// $elemMatch, $not, and the logical operators.
		{`{"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}`, `{"a": [0, 2]}`, Yes},
		{`{"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}`, `{"a": [0, 4]}`, No},
		{`{"a": {"$elemMatch": {"b": 1, "c": 2}}}`, `{"a": [{"b": 1}, {"b": 1, "c": 2}]}`, Yes},
		{`{"a": {"$elemMatch": {"b": 1, "c": 2}}}`, `{"a": [{"b": 1}, {"c": 2}]}`, No},
		{`{"a": {"$not": {"$gt": 5}}}`, `{}`, Yes},
		{`{"a": {"$not": {"$gt": 5}}}`, `{"a": 6}`, No},
		{`{"$or": [{"a": 1}, {"b": 1}]}`, `{"b": 1}`, Yes},
		{`{"$nor": [{"a": 1}, {"b": 1}]}`, `{"b": 1}`, No},
		{`{"$and": [{"a": 1}, {"b": 1}]}`, `{"a": 1}`, No},
		{`{"a": 1, "$comment": "x"}`, `{"a": 1}`, Yes},
		{`{}`, `{"a": 1}`, Yes},
	}
	for _, tt := range tests {
		f, err := Compile(raw(t, tt.filter), Options{SimpleStrings: true})
		require.NoError(t, err, tt.filter)
		assert.Equal(t, tt.want, f.Match(raw(t, tt.doc)), "%s on %s", tt.filter, tt.doc)
	}
}

func TestStringsNeedTheSimpleCollation(t *testing.T) {
	f, err := Compile(raw(t, `{"s": "paid"}`), Options{})
	require.NoError(t, err)
	assert.Equal(t, Maybe, f.Match(raw(t, `{"s": "PAID"}`)), "a collation could make them equal")
	assert.Equal(t, No, f.Match(raw(t, `{"s": 1}`)), "another bracket is never equal")
}

func TestUnanalysable(t *testing.T) {
	for _, filter := range []string{
		`{"$where": "true"}`, `{"$expr": {"$eq": ["$a", 1]}}`, `{"a": {"$regex": "x"}}`,
		`{"a": {"$regularExpression": {"pattern": "x", "options": ""}}}`, `{"$text": {"$search": "x"}}`,
		`{"a": {"$mod": [2, 0]}}`, `{"a": {"$near": [0, 0]}}`, `{"a": {"$in": [{"$regularExpression": {"pattern": "x", "options": ""}}]}}`,
		`{"a": {"$not": {"$regularExpression": {"pattern": "x", "options": ""}}}}`, `{"a.$": 1}`, `{"a..b": 1}`, `{"$or": []}`,
		`{"a": {"$size": -1}}`, `{"a": {"$jsonSchema": {}}}`,
	} {
		_, err := Compile(raw(t, filter), Options{SimpleStrings: true})
		assert.ErrorIs(t, err, ErrUnanalysable, filter)
	}
}

func TestEqualityFields(t *testing.T) {
	f, err := Compile(raw(t, `{"tenant": 3, "status": {"$eq": "paid"}, "n": {"$gt": 1}, "a.b": 1, "$and": [{"x": true}], "z": null}`), Options{SimpleStrings: true})
	require.NoError(t, err)
	got := f.EqualityFields()
	assert.Len(t, got, 3)
	assert.Contains(t, got, "tenant")
	assert.Contains(t, got, "status")
	assert.Contains(t, got, "x")
	assert.ElementsMatch(t, []string{"tenant", "status", "n", "a.b", "x", "z"}, f.Paths())
}

func TestAnalyzeUpdate(t *testing.T) {
	u := AnalyzeUpdate(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw(t,
		`{"$set": {"status": "shipped", "a.b": 1, "items.0.qty": 2, "tags.$": "x"}, "$inc": {"n": 1}, "$unset": {"old": "", "d.e": ""}, "$rename": {"x": "y"}, "$setOnInsert": {"created": 1}}`)})
	assert.False(t, u.All)
	assert.ElementsMatch(t, []string{"status", "a.b", "items", "tags", "n", "old", "d.e", "x", "y"}, u.Touched)
	assert.Len(t, u.Set, 2)
	assert.Contains(t, u.Set, "status")
	assert.Contains(t, u.Set, "a.b")
	assert.Equal(t, map[string]bool{"old": true}, u.Unset)
	assert.True(t, AnalyzeUpdate(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw(t, `{"status": "x"}`)}).All, "a replacement")
	assert.True(t, AnalyzeUpdate(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw(t, `{"$unknown": {"a": 1}}`)}).All)
	_, arr, _ := bson.MarshalValue(bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}})
	assert.True(t, AnalyzeUpdate(bson.RawValue{Type: bson.TypeArray, Value: arr}).All, "a pipeline")
}

func TestCanMatchAfter(t *testing.T) {
	upd := func(ext string) Update {
		return AnalyzeUpdate(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw(t, ext)})
	}
	f, err := Compile(raw(t, `{"tenant": 3, "status": "paid", "n": {"$gt": 1}}`), Options{SimpleStrings: true})
	require.NoError(t, err)
	assert.Equal(t, No, f.CanMatchAfter(upd(`{"$set": {"status": "shipped"}}`), nil), "status is then shipped")
	assert.Equal(t, Maybe, f.CanMatchAfter(upd(`{"$set": {"status": "paid"}}`), nil), "tenant and n unknown")
	assert.Equal(t, No, f.CanMatchAfter(upd(`{"$unset": {"status": ""}}`), nil))
	assert.Equal(t, Maybe, f.CanMatchAfter(upd(`{"$inc": {"n": 1}}`), nil))
	assert.Equal(t, Maybe, f.CanMatchAfter(upd(`{"$set": {"status.x": 1}}`), nil), "status is a document then: not determined")
	assert.Equal(t, Yes, f.CanMatchAfter(upd(`{"$set": {"status": "paid", "tenant": 3, "n": 5}}`), nil))
	g, err := Compile(raw(t, `{"a.b": 1}`), Options{SimpleStrings: true})
	require.NoError(t, err)
	assert.Equal(t, No, g.CanMatchAfter(upd(`{"$set": {"a": {"b": 2}}}`), nil), "a set whole determines a.b")
	assert.Equal(t, No, g.CanMatchAfter(upd(`{"$unset": {"a": ""}}`), nil))
	assert.Equal(t, Maybe, g.CanMatchAfter(upd(`{"$unset": {"a.b": ""}}`), nil), "a dotted $unset through an array changes nothing")
	h, err := Compile(raw(t, `{"_id": 5}`), Options{SimpleStrings: true})
	require.NoError(t, err)
	assert.Equal(t, No, h.CanMatchAfter(upd(`{"$set": {"x": 1}}`), map[string]bson.RawValue{"_id": raw(t, `{"v": 6}`).Lookup("v")}))
}

func TestOverlaps(t *testing.T) {
	assert.True(t, Overlaps("a", "a.b"))
	assert.True(t, Overlaps("a.b", "a"))
	assert.True(t, Overlaps("a.b", "a.b"))
	assert.False(t, Overlaps("a.b", "a.c"))
	assert.False(t, Overlaps("ab", "a"))
	assert.True(t, Overlaps("", "x"))
}

func TestSortBefore(t *testing.T) {
	s, ok := CompileSort(raw(t, `{"createdAt": -1, "_id": -1}`))
	require.True(t, ok)
	assert.True(t, s.Total())
	o := Options{SimpleStrings: true}
	newer, older := raw(t, `{"_id": 1, "createdAt": 20}`), raw(t, `{"_id": 2, "createdAt": 10}`)
	assert.Equal(t, Yes, s.Before(newer, older, o))
	assert.Equal(t, No, s.Before(older, newer, o))
	assert.Equal(t, Yes, s.Before(raw(t, `{"_id": 3, "createdAt": 10}`), older, o), "ties broken by _id, descending")
	assert.Equal(t, Yes, s.Before(raw(t, `{"_id": 3, "createdAt": "x"}`), older, o), "strings sort after numbers: first when descending")
	assert.Equal(t, Maybe, s.Before(raw(t, `{"_id": 3, "createdAt": [1, 30]}`), older, o))
	assert.Equal(t, Yes, s.Before(older, raw(t, `{"_id": 0}`), o), "a missing field sorts as null, last when descending")
	_, ok = CompileSort(raw(t, `{"score": {"$meta": "textScore"}}`))
	assert.False(t, ok)
	u, ok := CompileSort(raw(t, `{"a": 1}`))
	require.True(t, ok)
	assert.False(t, u.Total())
}

func TestProjectionKeeps(t *testing.T) {
	inc := CompileProjection(raw(t, `{"a": 1, "b.c": 1}`))
	assert.True(t, inc.Keeps("a"))
	assert.True(t, inc.Keeps("a.x"))
	assert.True(t, inc.Keeps("b.c.d"))
	assert.False(t, inc.Keeps("b"))
	assert.False(t, inc.Keeps("z"))
	assert.True(t, inc.Keeps("_id"))
	exc := CompileProjection(raw(t, `{"a.b": 0, "_id": 0}`))
	assert.False(t, exc.Keeps("a"))
	assert.False(t, exc.Keeps("a.b.c"))
	assert.True(t, exc.Keeps("a.c"))
	assert.True(t, exc.Keeps("z"))
	assert.False(t, exc.Keeps("_id"))
	weird := CompileProjection(raw(t, `{"a": {"$slice": 1}}`))
	assert.False(t, weird.Keeps("a"))
	assert.False(t, weird.Keeps("_id"))
	assert.True(t, CompileProjection(nil).KeepsAll())
}
