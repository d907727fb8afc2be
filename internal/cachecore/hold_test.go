package cachecore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// TestHeldEntries tests the bookkeeping of a write that carries a
// pre-image (Change.Hold), with hand-made loads and changes (the writes
// through odm against a server are odm.TestPreImagesKeepWhatTheWriteCannotChange):
// the entries it would invalidate for want of the document's values are
// held from Begin (not served) until End, which keeps them when the
// pre-image shows the write cannot change them and drops them otherwise
// (or when the reply is lost); two writes holding one entry both must
// end before it is served.
func TestHeldEntries(t *testing.T) {
	count := Key{Database: "db", Collection: "orders", Op: "count", Filter: bson.D{{Key: "status", Value: "paid"}}, Simple: true, Shape: simpleShape}
	n := func(k int) bson.Raw { return mustRaw(t, bson.D{{Key: "n", Value: k}}) }
	del := func(id int) Change {
		return Change{DB: "db", Coll: "orders", Hold: true,
			Stmts: []Stmt{{Op: OpDelete, Filter: mustRaw(t, bson.D{{Key: "_id", Value: id}})}}}
	}
	before := func(id int, status string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: status}})
	}
	end := func(f *Flight, ch Change, pre bson.Raw) {
		ch.Stmts = append([]Stmt(nil), ch.Stmts...)
		ch.Stmts[0].PreImage = pre
		f.End(ch)
	}
	fresh := func(t *testing.T) *Cache {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, count, n(3))
		require.True(t, fetchDocs(t, c, count), "stored")
		return c
	}

	t.Run("kept by a pre-image outside the filter", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		require.True(t, f.Held(), "a delete under a count is held")
		assert.Contains(t, f.Fields(), "status", "the fields to project")
		assert.False(t, fetchDocs(t, c, count, n(3)), "not served while held")
		end(f, ch, before(7, "open"))
		assert.True(t, fetchDocs(t, c, count), "served again")
		s := c.Stats()
		// The entry Begin held, and the one the read while it flew stored
		// and the write held too; only the second is served again: it
		// replaced the first in ristretto, whose entry left the cache
		// (and whose dep is invalid from then on: a live query tracking it
		// reads again, watch.go).
		assert.Equal(t, uint64(2), s.Held)
		assert.Equal(t, uint64(1), s.Released)
		assert.Equal(t, uint64(1), s.PreImages)
	})
	t.Run("dropped by a pre-image inside the filter", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		end(f, ch, before(7, "paid"))
		assert.False(t, fetchDocs(t, c, count, n(2)), "dropped")
		assert.Zero(t, c.Stats().Released)
	})
	t.Run("dropped without a pre-image", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		end(f, ch, nil) // the plain command was sent after all
		assert.False(t, fetchDocs(t, c, count, n(3)), "dropped")
	})
	t.Run("dropped when the reply is lost", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		ch.Unknown = true
		end(f, ch, before(7, "open"))
		assert.False(t, fetchDocs(t, c, count, n(3)), "dropped")
	})
	t.Run("kept when nothing matched", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		ch.Stmts = append([]Stmt(nil), ch.Stmts...)
		ch.Stmts[0].NoChange = true
		f.End(ch)
		assert.True(t, fetchDocs(t, c, count), "served again")
	})
	t.Run("a pre-image without the fields the entry reads", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		ch.Stmts = append([]Stmt(nil), ch.Stmts...)
		ch.Stmts[0].PreImage = mustRaw(t, bson.D{{Key: "_id", Value: 7}})
		ch.Stmts[0].PreImageFields = []string{"_id"}
		f.End(ch)
		assert.False(t, fetchDocs(t, c, count, n(3)), "judged without it: dropped")
	})
	t.Run("a load that ends while it flies is held, and dropped by a pre-image inside the filter", func(t *testing.T) {
		c := newTestCache(t, Config{})
		ch := del(7)
		fetchDocs(t, c, count, n(3))
		f := Begin(ch)
		require.True(t, f.Held())
		assert.False(t, fetchDocs(t, c, count, n(3)), "loaded while the write flies")
		assert.False(t, fetchDocs(t, c, count, n(3)), "stored, held: not served")
		end(f, ch, before(7, "paid"))
		assert.False(t, fetchDocs(t, c, count, n(2)), "dropped")
		assert.True(t, fetchDocs(t, c, count), "the load after it stored")
	})
	t.Run("a load while a write flies that will not carry a pre-image is not stored", func(t *testing.T) {
		c := newTestCache(t, Config{})
		ch := del(7)
		f := Begin(ch) // nothing to hold: the write goes out plain
		require.False(t, f.Held())
		assert.False(t, fetchDocs(t, c, count, n(3)))
		assert.Zero(t, c.Stats().Held, "not held by a write without a pre-image")
		assert.False(t, fetchDocs(t, c, count, n(3)), "not stored")
		end(f, ch, nil)
	})
	t.Run("two writes hold one entry", func(t *testing.T) {
		c := fresh(t)
		a, b := del(7), del(8)
		fa, fb := Begin(a), Begin(b)
		end(fa, a, before(7, "open"))
		assert.False(t, fetchDocs(t, c, count, n(3)), "still held by the other")
		end(fb, b, before(8, "open"))
		assert.True(t, fetchDocs(t, c, count), "served once both ended")
	})
	t.Run("a plain write in between drops it", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		f := Begin(ch)
		Apply(Change{DB: "db", Coll: "orders", Stmts: []Stmt{{Op: OpDelete, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 9}})}}})
		end(f, ch, before(7, "open"))
		assert.False(t, fetchDocs(t, c, count, n(2)), "dropped by the other write")
	})
	t.Run("a write without Hold drops at once", func(t *testing.T) {
		c := fresh(t)
		ch := del(7)
		ch.Hold = false
		f := Begin(ch)
		assert.False(t, f.Held())
		end(f, ch, before(7, "open"))
		assert.False(t, fetchDocs(t, c, count, n(3)), "dropped at Begin")
		assert.Zero(t, c.Stats().Held)
	})
}

// TestPostImage tests the rules' use of the document after an update,
// computed from a pre-image: a list sorted on a field an $inc changes
// keeps when the new value still sorts after its last document, and
// drops when it passes it.
func TestPostImage(t *testing.T) {
	list := Key{Database: "db", Collection: "orders", Filter: bson.D{{Key: "tenant", Value: "t0"}},
		Sort: bson.D{{Key: "total", Value: -1}, {Key: "_id", Value: 1}}, Limit: 2, Simple: true, Shape: simpleShape}
	doc := func(id, total int) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "t0"}, {Key: "total", Value: total}})
	}
	for _, tc := range []struct {
		by   int
		keep bool
	}{{5, true}, {100, false}} {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, list, doc(1, 90), doc(2, 50))
		ch := Change{DB: "db", Coll: "orders", Hold: true, Stmts: []Stmt{{Op: OpUpdate,
			Filter: mustRaw(t, bson.D{{Key: "_id", Value: 3}}),
			Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustRaw(t, bson.D{{Key: "$inc", Value: bson.D{{Key: "total", Value: tc.by}}}})}}}}
		f := Begin(ch)
		require.True(t, f.Held())
		ch.Stmts = append([]Stmt(nil), ch.Stmts...)
		ch.Stmts[0].PreImage = doc(3, 10)
		f.End(ch)
		assert.Equal(t, tc.keep, fetchDocs(t, c, list, doc(1, 90), doc(2, 50)), "$inc by %d of a total of 10 under a last of 50: kept", tc.by)
	}
}

// TestUnackedWritesAreSeen: the observer marks a write sent with an
// unacknowledged write concern (w: 0 without j), which odm then reports as
// of unknown outcome. The events are built by hand: the dev server cannot
// take a w: 0 write (docs/ferretdb.md); against MongoDB,
// odm.TestUnacknowledgedWriteIsUnknown runs one.
func TestUnackedWritesAreSeen(t *testing.T) {
	m := Observer(nil)
	for _, tc := range []struct {
		wc   bson.D
		want bool
	}{
		{bson.D{{Key: "w", Value: 0}}, true},
		{bson.D{{Key: "w", Value: int64(0)}}, true},
		{bson.D{{Key: "w", Value: 0}, {Key: "j", Value: true}}, false},
		{bson.D{{Key: "w", Value: 1}}, false},
		{bson.D{{Key: "w", Value: "majority"}}, false},
		{nil, false},
	} {
		cmd := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{}}}
		if tc.wc != nil {
			cmd = append(cmd, bson.E{Key: "writeConcern", Value: tc.wc})
		}
		ctx, sent := Handled(context.Background())
		m.Started(ctx, &event.CommandStartedEvent{CommandName: "update", DatabaseName: "db", Command: mustRaw(t, cmd), RequestID: 1})
		assert.Equal(t, tc.want, sent.Load(), "%v", tc.wc)
	}
}

// TestRawUnackedWriteIsUnknown: a raw write sent with w: 0 has an empty
// "reply" (ok: 1 and no counts): the observer reports it as a write of
// unknown outcome, not as one that matched nothing (on d9f069d the
// observer read n: 0 as "changed nothing" and the collection stayed
// cached while the write could still apply). Events built by hand: the
// dev server cannot take a w: 0 write.
func TestRawUnackedWriteIsUnknown(t *testing.T) {
	c := newTestCache(t, Config{})
	count := Key{Database: "db", Collection: "raw_unacked", Op: "count", Filter: bson.D{{Key: "status", Value: "paid"}}, Simple: true, Shape: simpleShape}
	fetchDocs(t, c, count, mustRaw(t, bson.D{{Key: "n", Value: 1}}))
	m := Observer(nil)
	cmd := mustRaw(t, bson.D{{Key: "update", Value: "raw_unacked"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "paid"}}}}}},
	}}, {Key: "writeConcern", Value: bson.D{{Key: "w", Value: 0}}}, {Key: "maxTimeMS", Value: 50}})
	m.Started(context.Background(), &event.CommandStartedEvent{CommandName: "update", DatabaseName: "db", Command: cmd, RequestID: 7, ConnectionID: "c1"})
	m.Succeeded(context.Background(), &event.CommandSucceededEvent{CommandFinishedEvent: event.CommandFinishedEvent{CommandName: "update", RequestID: 7, ConnectionID: "c1"},
		Reply: mustRaw(t, bson.D{{Key: "ok", Value: 1}})})
	assert.Equal(t, uint64(1), c.Stats().Unsettled, "a write of unknown outcome")
	assert.False(t, fetchDocs(t, c, count, mustRaw(t, bson.D{{Key: "n", Value: 2}})), "not served while it may run")
}
