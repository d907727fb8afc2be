package cachecore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Change events are built by hand here, in the shape MongoDB documents
// for change events (operationType, ns, documentKey, fullDocument,
// updateDescription with updatedFields, removedFields, truncatedArrays and
// disambiguatedPaths): FerretDB has no change streams, and the real path
// (coherence.TestChangeStreamSeesAnyWriter) is NOT RUN without a replica
// set.
func changeEvent(t *testing.T, op string, fields ...bson.E) bson.Raw {
	t.Helper()
	d := bson.D{
		{Key: "_id", Value: bson.D{{Key: "_data", Value: "8263"}}},
		{Key: "operationType", Value: op},
		{Key: "clusterTime", Value: bson.Timestamp{T: 1, I: 1}},
		{Key: "wallTime", Value: bson.DateTime(0)},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "db"}, {Key: "coll", Value: "o"}}},
	}
	return mustRaw(t, append(d, fields...))
}

func docKey(id int) bson.E {
	return bson.E{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}}
}

func updated(set bson.D, removed bson.A, truncated bson.A) bson.E {
	desc := bson.D{{Key: "updatedFields", Value: set}, {Key: "removedFields", Value: removed}, {Key: "truncatedArrays", Value: truncated}}
	return bson.E{Key: "updateDescription", Value: desc}
}

// TestChangeEventsUseTheRules: a change event is decided by the rules a
// local write goes through; what it cannot tell invalidates its
// collection, and an event without a namespace flushes everything.
func TestChangeEventsUseTheRules(t *testing.T) {
	order := func(id int, tenant, status string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "status", Value: status}})
	}
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "tenant", Value: "a"}, {Key: "status", Value: "paid"}}, Simple: true, Shape: simpleShape}
	other := Key{Database: "db", Collection: "p", Simple: true, Shape: simpleShape}
	for _, tc := range []struct {
		name    string
		ev      bson.Raw
		keep    bool
		precise bool // applied by the rules, not collection-wide
	}{
		{"insert of another tenant's order", changeEvent(t, "insert", docKey(9), bson.E{Key: "fullDocument", Value: order(9, "b", "paid")}), true, true},
		{"insert of a paid order of the tenant", changeEvent(t, "insert", docKey(9), bson.E{Key: "fullDocument", Value: order(9, "a", "paid")}), false, true},
		{"update of a path the list does not read", changeEvent(t, "update", docKey(9), updated(bson.D{{Key: "note", Value: "x"}}, bson.A{}, bson.A{})), true, true},
		{"update that can make an order paid", changeEvent(t, "update", docKey(9), updated(bson.D{{Key: "status", Value: "paid"}}, bson.A{}, bson.A{})), false, true},
		{"update that makes an order open", changeEvent(t, "update", docKey(9), updated(bson.D{{Key: "status", Value: "open"}}, bson.A{}, bson.A{})), true, true},
		{"update of an order in the list", changeEvent(t, "update", docKey(1), updated(bson.D{{Key: "note", Value: "x"}}, bson.A{}, bson.A{})), false, true},
		{"removed field the list reads", changeEvent(t, "update", docKey(9), updated(bson.D{}, bson.A{"tenant"}, bson.A{})), true, true},
		{"truncated array the list does not read", changeEvent(t, "update", docKey(9), updated(bson.D{}, bson.A{}, bson.A{bson.D{{Key: "field", Value: "items"}, {Key: "newSize", Value: 1}}})), true, true},
		{"truncated array the list reads", changeEvent(t, "update", docKey(9), updated(bson.D{}, bson.A{}, bson.A{bson.D{{Key: "field", Value: "status"}, {Key: "newSize", Value: 1}}})), false, true},
		{"delete of an order not in the list", changeEvent(t, "delete", docKey(9)), true, true},
		{"delete of an order in the list", changeEvent(t, "delete", docKey(2)), false, true},
		{"replace of another tenant's order", changeEvent(t, "replace", docKey(9), bson.E{Key: "fullDocument", Value: order(9, "b", "paid")}), true, true},
		{"replace into the list", changeEvent(t, "replace", docKey(9), bson.E{Key: "fullDocument", Value: order(9, "a", "paid")}), false, true},
		{"disambiguated paths", changeEvent(t, "update", docKey(9), bson.E{Key: "updateDescription", Value: bson.D{
			{Key: "updatedFields", Value: bson.D{{Key: "note.0", Value: 1}}}, {Key: "removedFields", Value: bson.A{}}, {Key: "truncatedArrays", Value: bson.A{}},
			{Key: "disambiguatedPaths", Value: bson.D{{Key: "note.0", Value: bson.A{"note", "0"}}}}}}), false, false},
		{"a path set and truncated", changeEvent(t, "update", docKey(9), updated(bson.D{{Key: "items.0", Value: 1}}, bson.A{}, bson.A{bson.D{{Key: "field", Value: "items"}, {Key: "newSize", Value: 1}}})), false, false},
		{"insert without fullDocument", changeEvent(t, "insert", docKey(9)), false, false},
		{"update without documentKey", changeEvent(t, "update", updated(bson.D{{Key: "note", Value: "x"}}, bson.A{}, bson.A{})), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, list, order(1, "a", "paid"), order(2, "a", "paid"))
			fetchDocs(t, c, other, order(1, "z", "z"))
			sink{c}.ChangeEvent(tc.ev)
			assert.Equal(t, tc.keep, fetchDocs(t, c, list), "the list")
			assert.True(t, fetchDocs(t, c, other), "another collection is never touched")
			st := c.Stats()
			assert.EqualValues(t, 1, st.Remote)
			assert.EqualValues(t, map[bool]uint64{true: 1, false: 0}[tc.precise], st.RemotePrecise)
		})
	}

	t.Run("no namespace", func(t *testing.T) {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, other, order(1, "z", "z"))
		sink{c}.ChangeEvent(mustRaw(t, bson.D{{Key: "operationType", Value: "insert"}}))
		assert.False(t, fetchDocs(t, c, other), "flushed")
		assert.EqualValues(t, 1, c.Stats().Resyncs)
		assert.True(t, fetchDocs(t, c, other), "and caching again")
	})
}

func TestChangeOfEvent(t *testing.T) {
	ch, ok := ChangeOfEvent(changeEvent(t, "update", docKey(3), updated(bson.D{{Key: "a.b", Value: 1}}, bson.A{"c"}, bson.A{bson.D{{Key: "field", Value: "d"}, {Key: "newSize", Value: 2}}})))
	require.True(t, ok)
	require.Len(t, ch.Stmts, 1)
	s := ch.Stmts[0]
	assert.Equal(t, OpUpdate, s.Op)
	assert.Equal(t, `{"_id": {"$numberInt":"3"}}`, s.Filter.String())
	assert.Equal(t, `{"$set": {"a.b": {"$numberInt":"1"}},"$unset": {"c": ""},"$pop": {"d": {"$numberInt":"1"}}}`, s.Update.Document().String())
	assert.Equal(t, "db", ch.DB)
	assert.Equal(t, "o", ch.Coll)

	_, ok = ChangeOfEvent(changeEvent(t, "drop"))
	assert.False(t, ok, "a drop is not a write to documents")
	_, ok = ChangeOfEvent(changeEvent(t, "update", docKey(3), updated(bson.D{}, bson.A{}, bson.A{})))
	assert.False(t, ok, "an update event that names no path")
}

// TestChangeEventPreImages: an event's fullDocumentBeforeChange (what a
// stream with coherence.PreImages gets on MongoDB 6.0+ for a collection
// with changeStreamPreAndPostImages; built by hand here, NOT RUN against
// a server without a replica set) is the statement's pre-image: an update
// of an order the list cannot hold before or after is kept, which the
// event without it cannot tell. Null (whenAvailable, none stored) is as
// without.
func TestChangeEventPreImages(t *testing.T) {
	order := func(id int, tenant, status string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "status", Value: status}})
	}
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "tenant", Value: "a"}, {Key: "status", Value: "paid"}}, Simple: true, Shape: simpleShape}
	paid := updated(bson.D{{Key: "status", Value: "paid"}}, bson.A{}, bson.A{})
	for _, tc := range []struct {
		name string
		pre  bson.E
		keep bool
		used bool
	}{
		{"another tenant's order", bson.E{Key: "fullDocumentBeforeChange", Value: order(9, "b", "open")}, true, true},
		{"the tenant's order", bson.E{Key: "fullDocumentBeforeChange", Value: order(9, "a", "open")}, false, true},
		{"none stored", bson.E{Key: "fullDocumentBeforeChange", Value: nil}, false, false},
		{"not asked for", bson.E{Key: "x", Value: 1}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, list, order(1, "a", "paid"))
			sink{c}.ChangeEvent(changeEvent(t, "update", docKey(9), paid, tc.pre))
			assert.Equal(t, tc.keep, fetchDocs(t, c, list))
			assert.Equal(t, tc.used, c.Stats().PreImages == 1)
		})
	}
	ch, ok := ChangeOfEvent(changeEvent(t, "delete", docKey(9), bson.E{Key: "fullDocumentBeforeChange", Value: order(9, "b", "open")}))
	require.True(t, ok)
	assert.Equal(t, order(9, "b", "open"), ch.Stmts[0].PreImage)
}
