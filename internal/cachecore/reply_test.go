package cachecore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The replies here are the dev server's, as a stranger session recorded
// them (docs/ferretdb.md): built by hand, since the point is what the
// rules make of a reply MongoDB would not send.

// TestInconsistentUpsertIsNoFact: the dev server reports every upsert of
// a multi-statement update at index 0. A reply that says a statement
// confined to _id 23 upserted _id 31 contradicts itself; none of its
// upsert facts is used, and the read of _id 31 (not found) is invalidated
// by the statement that may have inserted it, in this process and in
// another that receives the write's descriptor.
func TestInconsistentUpsertIsNoFact(t *testing.T) {
	q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "_id", Value: 31}}, Simple: true, Shape: simpleShape}
	change := func() Change {
		first := upd(t, 23, setOp(bson.E{Key: "a", Value: 1}))
		first.Upserted = true // as odm reports it: the statement itself is no upsert
		first.UpsertedID = bson.RawValue{Type: bson.TypeInt32, Value: []byte{31, 0, 0, 0}}
		second := upd(t, 31, setOp(bson.E{Key: "a", Value: 1.5}))
		second.Upsert, second.NotUpserted = true, true
		return Change{DB: "db", Coll: "c", Stmts: []Stmt{first, second}}
	}
	t.Run("remote", func(t *testing.T) {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, q)
		require.True(t, fetchDocs(t, c, q))
		sink{c}.Described("db", "c", describe(t, change()))
		assert.False(t, fetchDocs(t, c, q), "the read of _id 31 is invalidated")
	})
	t.Run("local", func(t *testing.T) {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, q)
		Apply(change())
		assert.False(t, fetchDocs(t, c, q))
	})
}

// TestReplyWithoutCountsIsNoFact: when a statement of an update fails,
// the dev server reports the error at index 0 with no n, nModified or
// upserted, though the statements before it ran (one upserted). MongoDB
// always sends n; a reply without it says nothing of the statements.
func TestReplyWithoutCountsIsNoFact(t *testing.T) {
	stmts := []Stmt{upd(t, 50, setOp(bson.E{Key: "w", Value: 1})), upd(t, 1, bson.D{{Key: "$inc", Value: bson.D{{Key: "s", Value: 1}}}})}
	stmts[0].Upsert = true
	refineByReply("update", stmts, mustRaw(t, bson.D{{Key: "writeErrors", Value: bson.A{bson.D{{Key: "index", Value: 0}, {Key: "code", Value: 14}}}}, {Key: "ok", Value: 1}}))
	for i, s := range stmts {
		assert.False(t, s.NotUpserted || s.NoChange || s.Upserted, "statement %d", i)
	}
}
