package cachecore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The changes here are built by hand, in the form odm and the write
// observer report them (pure code: the descriptor codec and the rules need
// no server). The path through a real server and a real log is in package
// coherence (TestDescriptorEvents, TestPropagationAcrossProcesses).

func upd(t *testing.T, id any, u bson.D) Stmt {
	return Stmt{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: id}}),
		Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustRaw(t, u)}}
}

func setOp(fields ...bson.E) bson.D { return bson.D{{Key: "$set", Value: bson.D(fields)}} }

// describe encodes ch's descriptor, failing the test when it cannot.
func describe(t *testing.T, ch Change) []byte {
	t.Helper()
	desc, ok := AppendDescriptor(nil, &ch, MaxDescriptor)
	require.True(t, ok)
	return desc
}

// public is what a descriptor carries of a statement.
func public(s Stmt) Stmt {
	return Stmt{Op: s.Op, Doc: s.Doc, Filter: s.Filter, Update: s.Update, Multi: s.Multi, Upsert: s.Upsert,
		ArrayFilters: s.ArrayFilters, Collation: s.Collation, NoChange: s.NoChange, Upserted: s.Upserted,
		NotUpserted: s.NotUpserted, UpsertedID: s.UpsertedID, PreImage: s.PreImage, PreImageFields: s.PreImageFields}
}

func TestDescriptorRoundTrip(t *testing.T) {
	pipeline := bson.RawValue{Type: bson.TypeArray, Value: mustRaw(t, bson.D{{Key: "0", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}}})}
	stmts := []Stmt{
		{Op: OpInsert, Doc: mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}})},
		{Op: OpInsert, DocFunc: func() (bson.Raw, error) { return mustRaw(t, bson.D{{Key: "_id", Value: 2}}), nil }},
		upd(t, 3, setOp(bson.E{Key: "a", Value: 2})),
		{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "t", Value: "a"}}), Update: pipeline, Multi: true, ArrayFilters: true, Collation: true, NoChange: true},
		{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: "k"}}), Update: upd(t, 0, setOp()).Update, Upsert: true, Upserted: true,
			UpsertedID: bson.RawValue{Type: bson.TypeString, Value: bsonString("k")}},
		{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 4}}), Update: upd(t, 0, setOp()).Update, Upsert: true, NotUpserted: true,
			PreImage: mustRaw(t, bson.D{{Key: "_id", Value: 4}, {Key: "a", Value: 1}}), PreImageFields: []string{"_id", "a"}},
		{Op: OpReplace, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 5}}), Doc: mustRaw(t, bson.D{{Key: "b", Value: 1}}),
			PreImage: mustRaw(t, bson.D{{Key: "_id", Value: 5}})},
		{Op: OpDelete, Filter: mustRaw(t, bson.D{{Key: "a", Value: bson.D{{Key: "$gt", Value: 1}}}}), Multi: true},
	}
	want := make([]Stmt, len(stmts))
	for i := range stmts {
		want[i] = public(stmts[i])
		if want[i].Doc == nil && stmts[i].DocFunc != nil {
			want[i].Doc, _ = stmts[i].DocFunc()
		}
	}
	desc := describe(t, Change{DB: "db", Coll: "c", Stmts: stmts})
	ch, ok := ChangeOfDescriptor("db", "c", desc)
	require.True(t, ok)
	assert.Equal(t, "db", ch.DB)
	assert.Equal(t, "c", ch.Coll)
	require.Len(t, ch.Stmts, len(want))
	for i := range want {
		assert.Equal(t, want[i], public(ch.Stmts[i]), "statement %d", i)
	}
	assert.Nil(t, ch.Writers, "a remote change has no writer of this process: no image")
}

func bsonString(s string) []byte {
	b := []byte{byte(len(s) + 1), 0, 0, 0}
	return append(append(b, s...), 0)
}

func TestDescriptorRefusals(t *testing.T) {
	stmt := upd(t, 1, setOp(bson.E{Key: "a", Value: 1}))
	for _, tc := range []struct {
		name string
		ch   Change
	}{
		{"unknown outcome", Change{DB: "db", Coll: "c", Stmts: []Stmt{stmt}, Unknown: true}},
		{"collection-wide", Change{DB: "db", Coll: "c", Stmts: []Stmt{stmt}, Wide: true}},
		{"drop", Change{DB: "db", Coll: "c", Drop: true}},
		{"no statements", Change{DB: "db", Coll: "c"}},
		{"every collection", Change{DB: "db", Stmts: []Stmt{stmt}}},
		{"a document that cannot be encoded", Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpInsert,
			DocFunc: func() (bson.Raw, error) { return nil, errors.New("no") }}}}},
		{"over the limit", Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpInsert,
			Doc: mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "big", Value: string(make([]byte, MaxDescriptor))}})}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("kept")
			out, ok := AppendDescriptor(dst, &tc.ch, MaxDescriptor)
			assert.False(t, ok)
			assert.Equal(t, []byte("kept"), out, "dst unchanged")
		})
	}

	good := describe(t, Change{DB: "db", Coll: "c", Stmts: []Stmt{stmt}})
	edit := func(d bson.D) []byte { return mustRaw(t, d) }
	stmtDoc := bson.D{{Key: "o", Value: int32(OpUpdate)}, {Key: "f", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: setOp()}}
	for _, tc := range []struct {
		name string
		desc []byte
	}{
		{"another version", edit(bson.D{{Key: "v", Value: int32(2)}, {Key: "s", Value: bson.A{stmtDoc}}})},
		{"no version", edit(bson.D{{Key: "s", Value: bson.A{stmtDoc}}})},
		{"an unknown field", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{stmtDoc}}, {Key: "x", Value: 1}})},
		{"an unknown statement field", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{append(stmtDoc, bson.E{Key: "zz", Value: true})}}})},
		{"a flag of the wrong type", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{append(stmtDoc, bson.E{Key: "m", Value: 1})}}})},
		{"an unknown operation", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{bson.D{{Key: "o", Value: int32(9)}, {Key: "f", Value: bson.D{}}}}}})},
		{"an update without its update", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{stmtDoc[:2]}}})},
		{"a delete without its filter", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{bson.D{{Key: "o", Value: int32(OpDelete)}}}}})},
		{"no statements", edit(bson.D{{Key: "v", Value: int32(1)}, {Key: "s", Value: bson.A{}}})},
		{"truncated", good[:len(good)-3]},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := ChangeOfDescriptor("db", "c", tc.desc)
			assert.False(t, ok)
		})
	}
}

// TestDescribedUsesTheRules: a descriptor is decided by the rules a local
// write goes through, and what the receiver cannot read invalidates the
// collection.
func TestDescribedUsesTheRules(t *testing.T) {
	order := func(id int, tenant, status string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "status", Value: status}})
	}
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "tenant", Value: "a"}, {Key: "status", Value: "paid"}}, Simple: true, Shape: simpleShape}
	other := Key{Database: "db", Collection: "p", Simple: true, Shape: simpleShape}
	ins := func(doc bson.Raw) []byte {
		return describe(t, Change{DB: "db", Coll: "o", Stmts: []Stmt{{Op: OpInsert, Doc: doc}}})
	}
	up := func(id int, u bson.D) []byte {
		return describe(t, Change{DB: "db", Coll: "o", Stmts: []Stmt{upd(t, id, u)}})
	}
	for _, tc := range []struct {
		name    string
		desc    []byte
		keep    bool
		precise bool
	}{
		{"insert of another tenant's order", ins(order(9, "b", "paid")), true, true},
		{"insert of a paid order of the tenant", ins(order(9, "a", "paid")), false, true},
		{"update of a path the list does not read", up(9, setOp(bson.E{Key: "note", Value: "x"})), true, true},
		{"update that can make an order paid", up(9, setOp(bson.E{Key: "status", Value: "paid"})), false, true},
		{"update that makes an order open", up(9, setOp(bson.E{Key: "status", Value: "open"})), true, true},
		{"update of an order in the list", up(1, setOp(bson.E{Key: "note", Value: "x"})), false, true},
		{"delete of an order not in the list", describe(t, Change{DB: "db", Coll: "o", Stmts: []Stmt{{Op: OpDelete, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 9}})}}}), true, true},
		{"an unreadable descriptor", []byte{5, 0, 0, 0, 0}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, list, order(1, "a", "paid"), order(2, "a", "paid"))
			fetchDocs(t, c, other, order(1, "z", "z"))
			sink{c}.Described("db", "o", tc.desc)
			assert.Equal(t, tc.keep, fetchDocs(t, c, list), "the list")
			assert.True(t, fetchDocs(t, c, other), "another collection is never touched")
			st := c.Stats()
			assert.EqualValues(t, 1, st.Remote)
			assert.EqualValues(t, map[bool]uint64{true: 1}[tc.precise], st.RemotePrecise)
		})
	}
}

// TestRemoteEventsOutOfOrder is the case that makes a remote event's
// facts the only ones it may be judged by. The server applies C's
// "$set status: paid" then A's "$set city: X" to order 7, which then
// belongs in B's list of paid orders in X; B holds order 7 as it was
// before both (open, in Y) in another entry. Judged by that copy, each
// event, whichever arrives first, says order 7 cannot enter the list
// (open in X; paid in Y): the list would stay stale until its TTL. A
// remote event is judged without B's copies: either event alone may make
// order 7 enter, so the first to arrive invalidates the list. With the
// writer's pre-image (a fact of the server at the write's time), the
// rules decide exactly.
func TestRemoteEventsOutOfOrder(t *testing.T) {
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "status", Value: "paid"}, {Key: "city", Value: "X"}}, Simple: true, Shape: simpleShape}
	reader := new(mongo.Client) // an identity only: nothing connects
	point := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "_id", Value: 7}}, Simple: true, Shape: simpleShape, Client: reader}
	doc := func(status, city string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: 7}, {Key: "status", Value: status}, {Key: "city", Value: city}})
	}
	byA := Change{DB: "db", Coll: "o", Stmts: []Stmt{upd(t, 7, setOp(bson.E{Key: "city", Value: "X"}))}}
	byC := Change{DB: "db", Coll: "o", Stmts: []Stmt{upd(t, 7, setOp(bson.E{Key: "status", Value: "paid"}))}}
	setup := func(t *testing.T) *Cache {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, list, mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: "paid"}, {Key: "city", Value: "X"}}))
		fetchDocs(t, c, point, doc("open", "Y")) // B's copy of order 7
		return c
	}
	for _, order := range [][]Change{{byA, byC}, {byC, byA}} {
		t.Run("first "+order[0].Stmts[0].Update.Document().Index(0).Value().Document().Index(0).Key(), func(t *testing.T) {
			c := setup(t)
			sink{c}.Described("db", "o", describe(t, order[0]))
			assert.False(t, fetchDocs(t, c, list), "the first event to arrive invalidates the list")
		})
	}

	// The same statement as a write of this process, judged by the copy
	// it holds (the image is the document right before the write, since
	// every write of the process to the collection is seen): kept.
	t.Run("a local write by the copy", func(t *testing.T) {
		c := setup(t)
		local := byA
		local.Writers = []*mongo.Client{reader}
		f := Begin(local)
		f.End(local)
		assert.True(t, fetchDocs(t, c, list))
	})

	// With the pre-image the writer got from the server.
	for _, tc := range []struct {
		name string
		pre  bson.Raw
		keep bool
	}{
		{"pre-image: still open", doc("open", "Y"), true},
		{"pre-image: paid already (C came first)", doc("paid", "Y"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := setup(t)
			ch := byA
			ch.Stmts = []Stmt{byA.Stmts[0]}
			ch.Stmts[0].PreImage = tc.pre
			sink{c}.Described("db", "o", describe(t, ch))
			assert.Equal(t, tc.keep, fetchDocs(t, c, list))
			assert.EqualValues(t, 1, c.Stats().PreImages)
		})
	}
}

// FuzzDescriptor: any bytes are refused or read whole, never a panic; what
// is read encodes again to a descriptor that reads the same.
func FuzzDescriptor(f *testing.F) {
	t := &testing.T{}
	f.Add(describe(t, Change{DB: "db", Coll: "c", Stmts: []Stmt{upd(t, 1, setOp(bson.E{Key: "a", Value: 1}))}}))
	f.Add(describe(t, Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpInsert, Doc: mustRaw(t, bson.D{{Key: "_id", Value: 1}})},
		{Op: OpDelete, Filter: mustRaw(t, bson.D{{Key: "a", Value: 1}}), Multi: true, PreImage: mustRaw(t, bson.D{}), PreImageFields: []string{"a"}}}}))
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, desc []byte) {
		ch, ok := ChangeOfDescriptor("db", "c", desc)
		if !ok {
			return
		}
		again, ok := AppendDescriptor(nil, &ch, 1<<30)
		require.True(t, ok, "a descriptor read whole encodes again")
		ch2, ok := ChangeOfDescriptor("db", "c", again)
		require.True(t, ok)
		require.Len(t, ch2.Stmts, len(ch.Stmts))
		for i := range ch.Stmts {
			require.Equal(t, public(ch.Stmts[i]), public(ch2.Stmts[i]))
		}
		third, _ := AppendDescriptor(nil, &ch2, 1<<30)
		require.True(t, bytes.Equal(again, third), "encoding is deterministic")
	})
}

// quietSource is a Source that is always following and never reports a
// write: what a fleet's cache looks like between two events (pure code,
// no server: the test drives the Sink itself).
type quietSource struct{}

func (quietSource) Publish(db, coll string) {}
func (quietSource) Run(ctx context.Context, sink Sink) {
	sink.Synced()
	<-ctx.Done()
}

// TestLocalWriteInAFleetIsNotJudgedByTheCopy: with a Source, other
// processes write too, and their events arrive after their writes: this
// cache's copy of a document may miss a write the server applied before
// this process's write. Here the server replaces order 7 (another process:
// paid, in Y), then this process sets its city to X: order 7 now belongs
// in the list of paid orders in X. Judged by the copy (open, in Y), the
// local write keeps the list; the remote replacement, arriving after and
// judged by what it carries (paid, in Y), keeps it too: stale until the
// TTL. So a cache with a Source judges its own writes without its copies
// (the server's pre-images are facts, and are used); one without a
// Source sees every write, in order, and uses them (TestImages).
func TestLocalWriteInAFleetIsNotJudgedByTheCopy(t *testing.T) {
	reader := new(mongo.Client) // an identity only: nothing connects
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "status", Value: "paid"}, {Key: "city", Value: "X"}}, Simple: true, Shape: simpleShape}
	point := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "_id", Value: 7}}, Simple: true, Shape: simpleShape, Client: reader}
	doc := func(status, city string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: 7}, {Key: "status", Value: status}, {Key: "city", Value: city}})
	}
	local := Change{DB: "db", Coll: "o", Stmts: []Stmt{upd(t, 7, setOp(bson.E{Key: "city", Value: "X"}))}, Writers: []*mongo.Client{reader}}
	remote := Change{DB: "db", Coll: "o", Stmts: []Stmt{{Op: OpReplace, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 7}}), Doc: doc("paid", "Y")}}}
	for _, via := range []string{"log", "change stream"} {
		t.Run(via, func(t *testing.T) {
			c := newTestCache(t, Config{Source: quietSource{}})
			require.Eventually(t, func() bool { return c.Stats().Synced }, 5*time.Second, time.Millisecond)
			fetchDocs(t, c, list, mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: "paid"}, {Key: "city", Value: "X"}}))
			fetchDocs(t, c, point, doc("open", "Y"))
			f := Begin(local)
			f.End(local)
			if via == "log" {
				sink{c}.Described("db", "o", describe(t, remote))
			} else {
				sink{c}.ChangeEvent(changeEvent(t, "replace", docKey(7), bson.E{Key: "fullDocument", Value: doc("paid", "Y")}))
			}
			assert.False(t, fetchDocs(t, c, list), "the list is not served")
		})
	}
}

// TestEventAfterTheLoadThatSawIt: another process's event arrives after
// this cache loaded a result that already saw the write (its event was on
// its way). When the result holds the document the write left, whole and
// byte for byte (an insert's document, a replacement, an update's document
// computed from the server's pre-image), the write changes nothing in it:
// kept. Holding the document as it was before, or without the facts to
// tell, it is invalidated as before. An update by _id that changes
// nothing in the result's own copy of its document is kept too, with or
// without a pre-image.
func TestEventAfterTheLoadThatSawIt(t *testing.T) {
	order := func(id int, status string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: "a"}, {Key: "status", Value: status}})
	}
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "tenant", Value: "a"}}, Sort: bson.D{{Key: "_id", Value: 1}}, Simple: true, Shape: simpleShape}
	projected := list
	projected.Projection = bson.D{{Key: "status", Value: 1}}
	paid := upd(t, 7, setOp(bson.E{Key: "status", Value: "paid"}))
	withPre := paid
	withPre.PreImage = order(7, "open")
	replace := Stmt{Op: OpReplace, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 7}}), Doc: order(7, "paid")}
	insert := Stmt{Op: OpInsert, Doc: order(7, "paid")}
	for _, tc := range []struct {
		name  string
		q     Key
		holds bson.Raw
		stmt  Stmt
		keep  bool
	}{
		{"update with pre-image, result holds the document after", list, order(7, "paid"), withPre, true},
		{"update with pre-image, result holds the document before", list, order(7, "open"), withPre, false},
		{"update without pre-image, the result's copy already as it sets", list, order(7, "paid"), paid, true},
		{"update without pre-image, the result's copy otherwise", list, order(7, "open"), paid, false},
		{"$inc without pre-image", list, order(7, "paid"), upd(t, 7, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}), false},
		{"replacement, result holds it", list, order(7, "paid"), replace, true},
		{"replacement, result holds the document before", list, order(7, "open"), replace, false},
		{"insert, result holds it", list, order(7, "paid"), insert, true},
		{"projected result", projected, order(7, "paid"), withPre, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, tc.q, order(1, "open"), tc.holds)
			sink{c}.Described("db", "o", describe(t, Change{DB: "db", Coll: "o", Stmts: []Stmt{tc.stmt}}))
			assert.Equal(t, tc.keep, fetchDocs(t, c, tc.q))
		})
	}
}
