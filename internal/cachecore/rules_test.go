package cachecore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// These tests drive the cache with hand-made loads and changes: they test
// the bookkeeping of the rules (shapes, views, collations, the commit of
// loads that straddle a write, the observer's reading of commands), which
// needs no server. The decisions against a real server are in package
// cache's TestInvalidationRules and TestNoStaleReads.

func mustRaw(t *testing.T, v any) bson.Raw {
	t.Helper()
	raw, err := bson.Marshal(v)
	require.NoError(t, err)
	return raw
}

func newTestCache(t *testing.T, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// fetchDocs fetches q with a load returning docs, and reports whether it
// was a hit.
func fetchDocs(t *testing.T, c *Cache, q Key, docs ...bson.Raw) bool {
	t.Helper()
	loaded := false
	_, err := c.Fetch(context.Background(), q, time.Hour, func(ctx context.Context) ([]bson.Raw, error) {
		observed(ctx)
		loaded = true
		return docs, nil
	}, nil)
	require.NoError(t, err)
	return !loaded
}

func simpleShape(context.Context) (Shape, error) { return Shape{Simple: true}, nil }

func insertOf(t *testing.T, db, coll string, doc any) Change {
	return Change{DB: db, Coll: coll, Stmts: []Stmt{{Op: OpInsert, Doc: mustRaw(t, doc)}}}
}

func TestStringsDecidedOnlyUnderTheSimpleCollation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shape  func(context.Context) (Shape, error)
		simple bool
		keep   bool
	}{
		{"simple collection, simple query", simpleShape, true, true},
		{"collection of unknown collation", nil, true, false},
		{"collection with a default collation", func(context.Context) (Shape, error) { return Shape{}, nil }, true, false},
		{"query with a collation", simpleShape, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "status", Value: "paid"}}, Simple: tc.simple, Shape: tc.shape}
			fetchDocs(t, c, q, mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: "paid"}}))
			Apply(insertOf(t, "db", "c", bson.D{{Key: "_id", Value: 2}, {Key: "status", Value: "PAID"}}))
			assert.Equal(t, tc.keep, fetchDocs(t, c, q), "kept")
		})
	}
}

func TestViewReadsDependOnTheirCollections(t *testing.T) {
	c := newTestCache(t, Config{})
	view := Key{Database: "db", Collection: "v", Filter: bson.D{{Key: "a", Value: 1}}, Simple: true,
		Shape: func(context.Context) (Shape, error) {
			return Shape{View: true, Reads: []string{"db.base", "db.other"}}, nil
		}}
	fetchDocs(t, c, view)
	require.True(t, fetchDocs(t, c, view))
	Apply(insertOf(t, "db", "unrelated", bson.D{{Key: "a", Value: 1}}))
	assert.True(t, fetchDocs(t, c, view), "a write elsewhere")
	Apply(insertOf(t, "db", "base", bson.D{{Key: "a", Value: 2}}))
	assert.False(t, fetchDocs(t, c, view), "any write to the collection under the view")
	Apply(insertOf(t, "db", "other", bson.D{{Key: "a", Value: 2}}))
	assert.False(t, fetchDocs(t, c, view), "or to one its pipeline reads")
}

func TestShapeAskedOncePerDrop(t *testing.T) {
	c := newTestCache(t, Config{})
	asked := 0
	q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "a", Value: 1}}, Simple: true,
		Shape: func(context.Context) (Shape, error) { asked++; return Shape{Simple: true}, nil }}
	fetchDocs(t, c, q)
	Apply(insertOf(t, "db", "c", bson.D{{Key: "a", Value: 1}}))
	fetchDocs(t, c, q)
	assert.Equal(t, 1, asked, "data writes do not ask again")
	Apply(Change{DB: "db", Coll: "c", Drop: true})
	fetchDocs(t, c, q)
	assert.Equal(t, 2, asked, "a drop (or create, rename) does")
}

func TestShapeErrorBypasses(t *testing.T) {
	c := newTestCache(t, Config{})
	q := Key{Database: "db", Collection: "c", Shape: func(context.Context) (Shape, error) { return Shape{}, errors.New("not authorized") }}
	fetchDocs(t, c, q)
	assert.False(t, fetchDocs(t, c, q), "not known whether it is a view: not cached")
	assert.EqualValues(t, 2, c.Stats().Bypassed)
}

// TestLoadStraddlingAWrite: a write applied while a load is in flight is
// decided against the loaded result before it is stored: kept when it
// cannot have changed it, discarded (returned, not stored) when it can.
// TestLoadStraddlingAWrite: a load that a write is applied during (this
// process's, or another's arriving as its descriptor) is stored only if
// the write cannot have changed its result.
func TestLoadStraddlingAWrite(t *testing.T) {
	local := func(doc any) func(*testing.T, *Cache) {
		return func(t *testing.T, _ *Cache) { Apply(insertOf(t, "db", "c", doc)) }
	}
	remote := func(id int) func(*testing.T, *Cache) {
		return func(t *testing.T, c *Cache) {
			sink{c}.Described("db", "c", describe(t, Change{DB: "db", Coll: "c", Stmts: []Stmt{upd(t, id, setOp(bson.E{Key: "b", Value: 1}))}}))
		}
	}
	for _, tc := range []struct {
		name  string
		write func(*testing.T, *Cache)
		store bool
	}{
		{"a write the result cannot see", local(bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: 9}}), true},
		{"a write that changes it", local(bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}}), false},
		{"another process's write the result cannot see", remote(2), true},
		{"another process's write that changes it", remote(1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "a", Value: 1}}, Simple: true, Shape: simpleShape}
			_, err := c.Fetch(context.Background(), q, time.Hour, func(ctx context.Context) ([]bson.Raw, error) {
				observed(ctx)
				tc.write(t, c) // while the load runs
				return []bson.Raw{mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}})}, nil
			}, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.store, fetchDocs(t, c, q))
			assert.EqualValues(t, map[bool]uint64{true: 0, false: 1}[tc.store], c.Stats().Discarded)
		})
	}
}

// TestWatched: a write needs to say what it changed only while some cache
// holds, or loads, an entry of its collection.
func TestWatched(t *testing.T) {
	c := newTestCache(t, Config{})
	assert.False(t, Watched("db", "w"))
	q := Key{Database: "db", Collection: "w", Shape: simpleShape}
	_, err := c.Fetch(context.Background(), q, time.Hour, func(ctx context.Context) ([]bson.Raw, error) {
		observed(ctx)
		assert.True(t, Watched("db", "w"), "while a load is in flight")
		return nil, nil
	}, nil)
	require.NoError(t, err)
	assert.True(t, Watched("db", "w"), "while an entry lives")
	Apply(Change{DB: "db", Coll: "w", Wide: true})
	assert.False(t, Watched("db", "w"), "not after it is invalidated")
}

// TestCommandStmts reads the statements of commands as the driver's
// CommandStartedEvent carries them, built by hand here (the observer sees
// driver values; the fields are those of the server's command reference).
func TestCommandStmts(t *testing.T) {
	upd := mustRaw(t, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}}},
		bson.D{{Key: "q", Value: bson.D{{Key: "b", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "b", Value: 3}}}, {Key: "upsert", Value: true}, {Key: "multi", Value: false}},
		bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}}, {Key: "multi", Value: true},
			{Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}}}, {Key: "arrayFilters", Value: bson.A{}}},
	}}})
	stmts, ok := commandStmts("update", upd)
	require.True(t, ok)
	require.Len(t, stmts, 3)
	assert.Equal(t, OpUpdate, stmts[0].Op)
	assert.Equal(t, OpReplace, stmts[1].Op, "a document without operators replaces")
	assert.True(t, stmts[1].Upsert)
	assert.Equal(t, OpUpdate, stmts[2].Op)
	assert.Equal(t, bson.TypeArray, stmts[2].Update.Type, "a pipeline")
	assert.True(t, stmts[2].Multi && stmts[2].Collation && stmts[2].ArrayFilters)

	refineByReply("update", stmts, mustRaw(t, bson.D{{Key: "n", Value: 2}, {Key: "nModified", Value: 1},
		{Key: "upserted", Value: bson.A{bson.D{{Key: "index", Value: 1}, {Key: "_id", Value: 7}}}}}))
	assert.True(t, stmts[1].Upserted)
	assert.EqualValues(t, 7, stmts[1].UpsertedID.Int32())
	assert.True(t, stmts[0].NotUpserted && !stmts[0].NoChange)

	stmts, _ = commandStmts("update", upd)
	refineByReply("update", stmts, mustRaw(t, bson.D{{Key: "n", Value: 1}, {Key: "nModified", Value: 0}}))
	assert.True(t, stmts[0].NoChange && stmts[2].NoChange, "nothing modified, nothing upserted")

	stmts, _ = commandStmts("update", upd)
	refineByReply("update", stmts, mustRaw(t, bson.D{{Key: "n", Value: 0}, {Key: "nModified", Value: 0},
		{Key: "writeErrors", Value: bson.A{bson.D{{Key: "index", Value: 2}}}}}))
	assert.False(t, stmts[2].NoChange, "with write errors the totals do not say which did what")

	del := mustRaw(t, bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "limit", Value: 0}},
		bson.D{{Key: "q", Value: bson.D{{Key: "a", Value: 2}}}, {Key: "limit", Value: 1}},
	}}})
	stmts, ok = commandStmts("delete", del)
	require.True(t, ok)
	assert.True(t, stmts[0].Multi)
	assert.False(t, stmts[1].Multi)
	refineByReply("delete", stmts, mustRaw(t, bson.D{{Key: "n", Value: 0}}))
	assert.True(t, stmts[0].NoChange && stmts[1].NoChange)

	fam := mustRaw(t, bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{{Key: "a", Value: 1}}},
		{Key: "update", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}})
	stmts, ok = commandStmts("findAndModify", fam)
	require.True(t, ok)
	refineByReply("findAndModify", stmts, mustRaw(t, bson.D{{Key: "lastErrorObject", Value: bson.D{{Key: "n", Value: 1}}},
		{Key: "value", Value: bson.D{{Key: "_id", Value: 5}, {Key: "a", Value: 1}}}}))
	assert.Equal(t, mustRaw(t, bson.D{{Key: "_id", Value: 5}}), stmts[0].Filter, "confined to the document it changed")

	ins := mustRaw(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}}}})
	stmts, ok = commandStmts("insert", ins)
	require.True(t, ok)
	assert.Len(t, stmts, 2)

	_, ok = commandStmts("update", mustRaw(t, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{"not a document"}}}))
	assert.False(t, ok, "a shape not known: collection-wide")
}

// TestWritesInFlight: between Begin and End a write may run at any moment:
// the entries it may change are invalidated at Begin, and a load that ends
// meanwhile is stored only if the write cannot change it.
func TestWritesInFlight(t *testing.T) {
	c := newTestCache(t, Config{})
	a := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "a", Value: 1}}, Simple: true, Shape: simpleShape}
	b := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "b", Value: 1}}, Simple: true, Shape: simpleShape}
	doc := mustRaw(t, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}})
	fetchDocs(t, c, a, doc)
	fetchDocs(t, c, b)
	upd := Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 1}}),
		Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustRaw(t, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 2}}}})}}}}
	f := Begin(upd)
	assert.False(t, fetchDocs(t, c, a, doc), "invalidated when the write began")
	assert.False(t, fetchDocs(t, c, a, doc), "and not stored while it is in flight")
	assert.True(t, fetchDocs(t, c, b), "an entry it cannot change stays")
	f.End(upd)
	assert.False(t, fetchDocs(t, c, a, doc))
	assert.True(t, fetchDocs(t, c, a, doc), "stored again once it has ended")

	wide := Begin(Change{DB: "db", Coll: "c", Wide: true})
	assert.False(t, fetchDocs(t, c, b), "a write that may change anything")
	assert.False(t, fetchDocs(t, c, b))
	wide.End(Change{DB: "db", Coll: "c", Wide: true})
	fetchDocs(t, c, b)
	assert.True(t, fetchDocs(t, c, b))
}

// TestImages: a write by _id of a document that a valid entry holds whole
// is judged with the fields it does not touch, as that entry holds them:
// an order that becomes paid but belongs to another tenant, or sorts after
// the last of a full sorted list, cannot enter it.
func TestImages(t *testing.T) {
	order := func(id, at int, tenant, status string) bson.Raw {
		return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "status", Value: status}, {Key: "at", Value: at}})
	}
	list := Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "tenant", Value: "a"}, {Key: "status", Value: "paid"}},
		Sort: bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}, Limit: 2, Simple: true, Shape: simpleShape}
	// Two clients, as identities only: the rules compare them, nothing
	// connects (pure code, no server), so they are built as zero values.
	clientA, clientB := new(mongo.Client), new(mongo.Client)
	point := func(id int) Key {
		return Key{Database: "db", Collection: "o", Filter: bson.D{{Key: "_id", Value: id}}, Simple: true, Shape: simpleShape, Client: clientA}
	}
	setStatus := func(id int, status string) Stmt {
		return Stmt{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: id}}),
			Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustRaw(t, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status}}}})}}
	}
	paid := func(id int) Change {
		return Change{DB: "db", Coll: "o", Stmts: []Stmt{setStatus(id, "paid")}, Writers: []*mongo.Client{clientA}}
	}
	for _, tc := range []struct {
		name   string
		doc    bson.Raw
		cached bool
		keep   bool
	}{
		{"another tenant's order, cached", order(7, 99, "b", "open"), true, true},
		{"an older order of the tenant, cached", order(7, 1, "a", "open"), true, true},
		{"a newer order of the tenant, cached", order(7, 99, "a", "open"), true, false},
		{"another tenant's order, not cached", order(7, 99, "b", "open"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid"))
			if tc.cached {
				fetchDocs(t, c, point(7), tc.doc)
			}
			f := Begin(paid(7))
			f.End(paid(7))
			assert.Equal(t, tc.keep, fetchDocs(t, c, list))
		})
	}

	// Another write to the collection that begins, or is applied, while
	// the first flies may have changed the document: the image is
	// forgotten, and the first write is judged without it.
	other := Change{DB: "db", Coll: "o", Stmts: []Stmt{{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 8}}),
		Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustRaw(t, bson.D{{Key: "$set", Value: bson.D{{Key: "note", Value: "x"}}}})}}}}
	for _, name := range []string{"begins", "is applied"} {
		t.Run("another write "+name+" in flight", func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid"))
			fetchDocs(t, c, point(7), order(7, 99, "b", "open"))
			f := Begin(paid(7))
			if name == "begins" {
				g := Begin(other) // still flying when f ends
				f.End(paid(7))
				g.End(other)
			} else {
				Apply(other) // an observed write, reported once
				f.End(paid(7))
			}
			assert.False(t, fetchDocs(t, c, list), "judged with an image another write may have changed")
		})
	}

	// A flush (InvalidateAll, or a Source that lost its place: writes of
	// other processes may have been missed) while the write flies: the
	// image may be out of date.
	t.Run("flushed in flight", func(t *testing.T) {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, point(7), order(7, 99, "b", "open"))
		f := Begin(paid(7))
		c.InvalidateAll()
		fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid")) // loaded after the flush
		f.End(paid(7))
		assert.False(t, fetchDocs(t, c, list), "judged with an image from before the flush")
	})

	// Each cache reads only the images of its own entries: what one cache
	// knows of a document (another process's write its Source reported, a
	// flush), another cache of the process may not.
	t.Run("two caches", func(t *testing.T) {
		a, b := newTestCache(t, Config{}), newTestCache(t, Config{})
		for _, c := range []*Cache{a, b} {
			fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid"))
		}
		fetchDocs(t, a, point(7), order(7, 99, "b", "open")) // only a holds the document
		f := Begin(paid(7))
		f.End(paid(7))
		assert.True(t, fetchDocs(t, a, list), "a: judged with its own image")
		assert.False(t, fetchDocs(t, b, list), "b: holds no image, judged without one")
	})

	// A write through another client (maybe another deployment, whose
	// document 7 is another) or through a client not known (an observed
	// write before any load) is judged without the image.
	for name, writers := range map[string][]*mongo.Client{"another client": {clientB}, "no client known": nil} {
		t.Run(name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid"))
			fetchDocs(t, c, point(7), order(7, 99, "b", "open"))
			ch := paid(7)
			ch.Writers = writers
			f := Begin(ch)
			f.End(ch)
			assert.False(t, fetchDocs(t, c, list), "judged with another deployment's document")
		})
	}

	// Two statements on one _id: the second is not judged by the document
	// as it was before the first (TestMultiStatementWriteOnOneID). The
	// first makes order 7 (of tenant b) paid, the second moves it to
	// tenant a: the pair makes it enter.
	t.Run("two statements on one _id", func(t *testing.T) {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid"))
		fetchDocs(t, c, point(7), order(7, 99, "b", "open"))
		toA := Stmt{Op: OpUpdate, Filter: mustRaw(t, bson.D{{Key: "_id", Value: 7}}),
			Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: mustRaw(t, bson.D{{Key: "$set", Value: bson.D{{Key: "tenant", Value: "a"}}}})}}
		ch := Change{DB: "db", Coll: "o", Stmts: []Stmt{setStatus(7, "paid"), toA}, Writers: []*mongo.Client{clientA}}
		f := Begin(ch)
		f.End(ch)
		assert.False(t, fetchDocs(t, c, list), "each statement judged with the image from before the other")
	})

	// A projected entry does not hold the document whole: no image.
	t.Run("projected entry", func(t *testing.T) {
		c := newTestCache(t, Config{})
		fetchDocs(t, c, list, order(2, 20, "a", "paid"), order(1, 10, "a", "paid"))
		pq := point(7)
		pq.Projection = bson.D{{Key: "at", Value: 0}}
		fetchDocs(t, c, pq, mustRaw(t, bson.D{{Key: "_id", Value: 7}, {Key: "tenant", Value: "b"}, {Key: "status", Value: "open"}}))
		f := Begin(paid(7))
		f.End(paid(7))
		assert.False(t, fetchDocs(t, c, list))
	})
}

// observed marks the load of ctx as seen by a command monitor of the bus,
// as the monitor of a real client marks it when the load's first command
// starts (these loads send no command: they return documents built here).
func observed(ctx context.Context) {
	if l := loadOf(ctx); l != nil {
		l.observed.Store(true)
	}
}

// TestEachCacheDerivesItsOwnCopy: the bus gives the first cache the
// writer's statements and every other cache a clone made after the first
// has derived its copy in place. Each must derive by its own knowledge of
// the collection (whether it compares strings simply): a clone that kept
// the first cache's derivation judged a string _id by the other cache's
// collation. On 3a1c28b the clone kept it. (Statements built by hand: the
// bookkeeping of the bus, no server involved.)
func TestEachCacheDerivesItsOwnCopy(t *testing.T) {
	f, err := bson.Marshal(bson.D{{Key: "_id", Value: "ABC"}})
	require.NoError(t, err)
	ch := Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpDelete, Filter: f}}}
	shared := false
	first := ch.own(&shared)
	first.Stmts[0].derive(true) // the first cache compares strings simply
	require.True(t, first.Stmts[0].idsKnown)
	second := ch.own(&shared)
	assert.False(t, second.Stmts[0].derived, "the clone derives again")
	second.Stmts[0].derive(false) // the second knows no collation: a string _id is not decided
	assert.False(t, second.Stmts[0].idsKnown)
	assert.True(t, first.Stmts[0].idsKnown, "the first cache's copy is its own")
}
