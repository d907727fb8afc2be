package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestObserverCoversRawDriverWrites: on a client with the observer, a write
// made with the raw driver (no Invalidate call) makes the next cached read
// fresh, for each write command the server supports. Commands the dev
// server does not support are reported NOT RUN. On 16a31ad (no observer)
// each cached read stayed stale until the TTL.
func TestObserverCoversRawDriverWrites(t *testing.T) {
	var chained int
	next := &event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { chained++ }}
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(next)))
	db := testdb.DBOn(t, cl)
	c := newCache(t, cache.Config{})
	ctx := context.Background()
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}
	writes := []struct {
		name  string
		write func(coll *mongo.Collection) error
		want  []Doc // what the cached read must give after the write
	}{
		{"insert", func(coll *mongo.Collection) error {
			_, err := coll.InsertOne(ctx, Doc{ID: 2})
			return err
		}, []Doc{{ID: 1}, {ID: 2}}},
		{"update", func(coll *mongo.Collection) error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, set)
			return err
		}, []Doc{{ID: 1, V: 1}}},
		{"delete", func(coll *mongo.Collection) error {
			_, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
			return err
		}, nil},
		{"findAndModify", func(coll *mongo.Collection) error {
			return coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, set).Err()
		}, []Doc{{ID: 1, V: 1}}},
		{"bulk (insert and update commands)", func(coll *mongo.Collection) error {
			_, err := coll.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(Doc{ID: 3}), mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 1}}).SetUpdate(set)})
			return err
		}, []Doc{{ID: 1, V: 1}, {ID: 3}}},
		{"drop", func(coll *mongo.Collection) error { return coll.Drop(ctx) }, nil},
		{"dropDatabase", func(coll *mongo.Collection) error { return coll.Database().Drop(ctx) }, nil},
		{"aggregate $out", func(coll *mongo.Collection) error {
			// Writes the source's documents, updated, over the target.
			src := coll.Database().Collection(coll.Name() + "_src")
			if _, err := src.InsertOne(ctx, Doc{ID: 1, V: 7}); err != nil {
				return err
			}
			cur, err := src.Aggregate(ctx, mongo.Pipeline{{{Key: "$out", Value: coll.Name()}}})
			if err != nil {
				return err
			}
			return cur.Close(ctx)
		}, []Doc{{ID: 1, V: 7}}},
		{"renameCollection", func(coll *mongo.Collection) error {
			// The cached collection moves away: it is empty afterwards.
			return cl.Database("admin").RunCommand(ctx, bson.D{
				{Key: "renameCollection", Value: coll.Database().Name() + "." + coll.Name()},
				{Key: "to", Value: coll.Database().Name() + "." + coll.Name() + "_moved"},
			}).Err()
		}, nil},
	}
	for i, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			coll := db.Collection("docs" + string(rune('a'+i)))
			_, err := coll.InsertOne(ctx, Doc{ID: 1})
			require.NoError(t, err)
			h := handle[Doc](t, coll, odm.WithCache(c))
			read := func() []Doc {
				got, err := h.FindMany(ctx, bson.D{}, query.Cached(time.Hour), query.Sort(bson.D{{Key: "_id", Value: 1}}))
				require.NoError(t, err)
				cache.Core(c).Wait()
				if len(got) == 0 {
					return nil
				}
				return got
			}
			require.Equal(t, []Doc{{ID: 1}}, read())
			require.Equal(t, []Doc{{ID: 1}}, read()) // a hit
			if err := tt.write(coll); err != nil {
				var ce mongo.CommandError
				if errors.As(err, &ce) && testdb.IsFerretDB(t) {
					t.Skipf("NOT RUN on FerretDB: %s is not supported (%v)", tt.name, err)
				}
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, read(), "the cached read after a raw driver write")
		})
	}
	assert.Positive(t, chained, "the user's own monitor is chained")
}

// TestObserverBookkeeping feeds the observer command events built by hand,
// the one place these tests do: FerretDB has no transactions, so the
// driver never sends a transaction's commands to it. Writes in a
// transaction are invalidated at commit, not before; an abort invalidates
// nothing; a failed commit, or a write whose reply was lost, leaves the
// collection unsettled.
func TestObserverBookkeeping(t *testing.T) {
	c := newCache(t, cache.Config{})
	m := cache.Observer(nil)
	ctx := context.Background()
	lsid, err := bson.Marshal(bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}})
	require.NoError(t, err)
	req := int64(0)
	cmd := func(name string, txn int64, extra ...bson.E) (*event.CommandStartedEvent, event.CommandFinishedEvent) {
		req++
		d := bson.D{{Key: name, Value: "docs"}}
		if name == "commitTransaction" || name == "abortTransaction" {
			d = bson.D{{Key: name, Value: 1}}
		}
		if txn > 0 {
			d = append(d, bson.E{Key: "lsid", Value: bson.Raw(lsid)}, bson.E{Key: "txnNumber", Value: txn}, bson.E{Key: "autocommit", Value: false})
		}
		d = append(d, extra...)
		raw, err := bson.Marshal(d)
		require.NoError(t, err)
		db := "app"
		if name == "commitTransaction" || name == "abortTransaction" {
			db = "admin"
		}
		return &event.CommandStartedEvent{Command: raw, DatabaseName: db, CommandName: name, RequestID: req, ConnectionID: "c1"},
			event.CommandFinishedEvent{CommandName: name, DatabaseName: db, RequestID: req, ConnectionID: "c1"}
	}
	ok := func(name string, txn int64, extra ...bson.E) {
		s, f := cmd(name, txn, extra...)
		m.Started(ctx, s)
		m.Succeeded(ctx, &event.CommandSucceededEvent{CommandFinishedEvent: f})
	}
	fail := func(name string, txn int64, failure error, extra ...bson.E) {
		s, f := cmd(name, txn, extra...)
		m.Started(ctx, s)
		m.Failed(ctx, &event.CommandFailedEvent{CommandFinishedEvent: f, Failure: failure})
	}
	gen := func() uint64 { return cache.Core(c).Generation("app", "docs") }

	g := gen()
	ok("find", 0)
	assert.Equal(t, g, gen(), "reads change nothing")
	ok("insert", 0)
	assert.Equal(t, g+1, gen(), "a write outside a transaction: at once")

	g = gen()
	ok("update", 7)
	ok("insert", 7)
	assert.Equal(t, g, gen(), "a transaction's writes: not before the commit")
	ok("commitTransaction", 7)
	assert.Equal(t, g+1, gen(), "at the commit")
	ok("commitTransaction", 7)
	assert.Equal(t, g+1, gen(), "a second commit of the same transaction has nothing left")

	g = gen()
	ok("delete", 8)
	ok("abortTransaction", 8)
	assert.Equal(t, g, gen(), "an abort invalidates nothing")

	before := c.Stats().Unsettled
	ok("update", 9)
	fail("commitTransaction", 9, mongo.CommandError{Code: 251, Name: "NoSuchTransaction"})
	assert.Equal(t, before+1, c.Stats().Unsettled, "a failed commit is an unknown outcome")

	fail("update", 0, context.DeadlineExceeded, bson.E{Key: "maxTimeMS", Value: int64(100)})
	assert.Equal(t, before+2, c.Stats().Unsettled, "a lost reply: unsettled until its maxTimeMS")
	fail("insert", 0, mongo.CommandError{Code: 2, Message: "bad"})
	assert.Equal(t, before+2, c.Stats().Unsettled, "a server's refusal is a known outcome")

	// Targets named inside the command: $out/$merge, a client bulkWrite.
	raw := func(name, db string, d bson.D) {
		req++
		b, err := bson.Marshal(d)
		require.NoError(t, err)
		m.Started(ctx, &event.CommandStartedEvent{Command: b, DatabaseName: db, CommandName: name, RequestID: req, ConnectionID: "c1"})
		m.Succeeded(ctx, &event.CommandSucceededEvent{CommandFinishedEvent: event.CommandFinishedEvent{CommandName: name, DatabaseName: db, RequestID: req, ConnectionID: "c1"}})
	}
	gy, gz, gsrc := cache.Core(c).Generation("x", "y"), cache.Core(c).Generation("app", "z"), cache.Core(c).Generation("app", "src")
	raw("aggregate", "app", bson.D{{Key: "aggregate", Value: "src"}, {Key: "pipeline", Value: bson.A{
		bson.D{{Key: "$match", Value: bson.D{}}}, bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "db", Value: "x"}, {Key: "coll", Value: "y"}}}}}}}}})
	raw("aggregate", "app", bson.D{{Key: "aggregate", Value: "src"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$out", Value: "z"}}}}})
	raw("aggregate", "app", bson.D{{Key: "aggregate", Value: "src"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{}}}}}})
	assert.Greater(t, cache.Core(c).Generation("x", "y"), gy, "$merge into another database")
	assert.Greater(t, cache.Core(c).Generation("app", "z"), gz, "$out")
	assert.Equal(t, gsrc, cache.Core(c).Generation("app", "src"), "a read-only pipeline invalidates nothing")
	ga, gb := cache.Core(c).Generation("app", "a"), cache.Core(c).Generation("b", "c")
	raw("bulkWrite", "admin", bson.D{{Key: "bulkWrite", Value: 1}, {Key: "nsInfo", Value: bson.A{bson.D{{Key: "ns", Value: "app.a"}}, bson.D{{Key: "ns", Value: "b.c"}}}}})
	assert.Greater(t, cache.Core(c).Generation("app", "a"), ga)
	assert.Greater(t, cache.Core(c).Generation("b", "c"), gb)

	// A command of an unexpected shape (autocommit not a boolean) is
	// taken as outside a transaction, never a panic.
	g = gen()
	raw("insert", "app", bson.D{{Key: "insert", Value: "docs"}, {Key: "lsid", Value: bson.Raw(lsid)}, {Key: "txnNumber", Value: int64(3)}, {Key: "autocommit", Value: int32(0)}})
	assert.Greater(t, gen(), g)

	g = cache.Core(c).Generation("other", "x")
	s, f := cmd("dropDatabase", 0)
	s.DatabaseName, f.DatabaseName = "other", "other"
	m.Started(ctx, s)
	m.Succeeded(ctx, &event.CommandSucceededEvent{CommandFinishedEvent: f})
	assert.Greater(t, cache.Core(c).Generation("other", "x"), g, "dropDatabase: every collection")
}

// TestTransactionReadsBypassTheCache: a cached read whose context carries
// a session with a transaction started neither reads, fills nor joins the
// cache, whatever the server answers (FerretDB refuses transactions; the
// bypass is decided before anything is sent). On 16a31ad such a read
// filled the shared cache with the transaction's view.
func TestTransactionReadsBypassTheCache(t *testing.T) {
	e := setup(t, 3)
	ctx := context.Background()
	sess, err := e.coll.Database().Client().StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	require.NoError(t, sess.StartTransaction())
	tctx := mongo.NewSessionContext(ctx, sess)
	before := e.c.Stats()
	for range 3 {
		_, _ = e.docs.FindMany(tctx, bson.D{}, query.Cached(time.Hour))
		_, _ = e.docs.FindOne(tctx, bson.D{}, query.Cached(time.Hour))
		for _, err := range e.docs.Iter(tctx, bson.D{}, query.Cached(time.Hour)) {
			_ = err
		}
	}
	after := e.c.Stats()
	assert.Equal(t, before.Hits, after.Hits)
	assert.Equal(t, before.Misses, after.Misses)
	assert.Equal(t, before.Loads, after.Loads)
	_ = sess.AbortTransaction(ctx)
}

// TestTransactionCommitInvalidates is the real path of the observer's
// transaction bookkeeping: a write in a transaction on a replica set, a
// cached read between the write and the commit (it sees the committed
// state and stays valid), then the commit, after which the cached read is
// fresh. FerretDB has no transactions, and a standalone MongoDB none
// either: there it is NOT RUN (TestObserverBookkeeping covers the
// bookkeeping with events built by hand).
func TestTransactionCommitInvalidates(t *testing.T) {
	testdb.NotRunOnFerretDB(t, "no transactions")
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	ctx := context.Background()
	var hello bson.M
	require.NoError(t, cl.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
	if _, ok := hello["setName"]; !ok {
		if _, mongos := hello["msg"]; !mongos {
			t.Skip("NOT RUN: transactions need a replica set or a sharded cluster; MONGODB_URI is a standalone server")
		}
	}
	coll := testdb.DBOn(t, cl).Collection("docs")
	_, err := coll.InsertOne(ctx, Doc{ID: 1})
	require.NoError(t, err)
	c := newCache(t, cache.Config{})
	h := handle[Doc](t, coll, odm.WithCache(c))
	read := func() int {
		d, err := h.FindOne(ctx, query.Eq("_id", 1), query.Cached(time.Hour))
		require.NoError(t, err)
		cache.Core(c).Wait()
		return d.V
	}
	require.Equal(t, 0, read())
	sess, err := cl.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		_, err := coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 5}}}})
		if err != nil {
			return nil, err
		}
		assert.Equal(t, 0, read(), "before the commit, the committed state")
		return nil, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 5, read(), "after the commit, fresh")
}

// TestClientWithoutObserverStoresNothing: a cache stores nothing loaded
// through a client without the observer, whose raw writes (and
// transactions) cannot reach it. On 3a1c28b the first read was stored and
// the raw write below, which nothing saw, left the second read stale until
// the TTL (served 0, server 1).
func TestClientWithoutObserverStoresNothing(t *testing.T) {
	cl := testdb.NewClient(t) // no observer
	coll := testdb.DBOn(t, cl).Collection("docs")
	ctx := context.Background()
	_, err := coll.InsertOne(ctx, Doc{ID: 1})
	require.NoError(t, err)
	c := newCache(t, cache.Config{})
	h := handle[Doc](t, coll, odm.WithCache(c))
	read := func() int {
		got, err := h.FindOne(ctx, query.Eq("_id", 1), query.Cached(time.Hour))
		require.NoError(t, err)
		cache.Core(c).Wait()
		return got.V
	}
	assert.Equal(t, 0, read())
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}})
	require.NoError(t, err)
	assert.Equal(t, 1, read(), "the raw write no observer saw is not hidden by a cached result")
	s := c.Stats()
	assert.EqualValues(t, 2, s.Unobserved, "each load counted")
	assert.Zero(t, s.Hits)
	assert.Zero(t, s.UsedBytes)
}

// TestTransactionOnClientWithoutObserver: a write in a transaction through
// odm on a client without the observer, while another client's cached
// reads of the collection are stored: nothing will see the commit, so the
// collection is not cached until the commit must be over. On 3a1c28b the
// read between the write and the commit stored the committed state, and
// kept it after the commit until the TTL. NOT RUN without a replica set.
func TestTransactionOnClientWithoutObserver(t *testing.T) {
	testdb.NotRunOnFerretDB(t, "no transactions")
	ctx := context.Background()
	writer := testdb.NewClient(t) // no observer
	var hello bson.M
	require.NoError(t, writer.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
	if _, ok := hello["setName"]; !ok {
		if _, mongos := hello["msg"]; !mongos {
			t.Skip("NOT RUN: transactions need a replica set or a sharded cluster; MONGODB_URI is a standalone server")
		}
	}
	e := setup(t, 2) // e.docs reads through an observed client
	w := handle[Doc](t, writer.Database(e.coll.Database().Name()).Collection(e.coll.Name()))
	read := func() int {
		d, err := e.docs.FindOne(ctx, query.Eq("_id", 1), query.Cached(time.Hour))
		require.NoError(t, err)
		cache.Core(e.c).Wait()
		return d.V
	}
	require.Equal(t, 0, read())
	sess, err := writer.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		if _, err := w.UpdateOne(sctx, query.Eq("_id", 1), bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 5}}}}); err != nil {
			return nil, err
		}
		assert.Equal(t, 0, read(), "before the commit, the committed state")
		return nil, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 5, read(), "after the commit nothing saw, not the entry read before it")
	assert.EqualValues(t, 1, e.c.Stats().UnsettledNoDeadline)
}

// TestRawFindAndModifyCarriesItsPreImage: a raw findAndModify that returns
// the document before its write, whole (the driver's FindOneAndUpdate,
// FindOneAndReplace and FindOneAndDelete without ReturnDocument(After) or
// a projection), is judged by it, as odm's writes with pre-images are: a
// cached count the document was outside of before and after is kept (it
// is held until the reply), one it was inside is dropped. With the
// document after the write (new: true), the count is dropped.
func TestRawFindAndModifyCarriesItsPreImage(t *testing.T) {
	ctx := context.Background()
	coll := testdb.DB(t).Collection("orders")
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "status", Value: "open"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "status", Value: "paid"}},
		bson.D{{Key: "_id", Value: 3}, {Key: "status", Value: "open"}},
	})
	require.NoError(t, err)
	c := newCache(t, cache.Config{})
	h := handle[bson.Raw](t, coll, odm.WithCache(c))
	paid := func() (int64, bool) {
		before := c.Stats().Hits
		n, err := h.Count(ctx, bson.D{{Key: "status", Value: "paid"}}, query.Cached(time.Hour))
		require.NoError(t, err)
		return n, c.Stats().Hits > before
	}
	paid()
	ship := bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "shipped"}}}}

	require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, ship).Err())
	n, hit := paid()
	assert.True(t, hit, "open to shipped: the count of paid cannot change")
	assert.EqualValues(t, 1, n)

	require.NoError(t, coll.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: 2}}).Err())
	n, hit = paid()
	assert.False(t, hit, "a paid order deleted: dropped")
	assert.EqualValues(t, 0, n)

	require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 3}}, ship, options.FindOneAndUpdate().SetReturnDocument(options.After)).Err())
	n, hit = paid()
	assert.False(t, hit, "the document after the write is no pre-image: dropped")
	assert.EqualValues(t, 0, n)
	assert.NotZero(t, c.Stats().Released)
}
