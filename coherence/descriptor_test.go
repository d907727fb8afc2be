package coherence

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// readID is p's cached read of document id's version (0 when there is
// none), and whether it was a hit.
func (p *peer) readID(tb testing.TB, id int) (v int, hit bool) {
	tb.Helper()
	before := p.cache.Stats().Hits
	docs, err := p.reader.FindMany(context.Background(), query.Eq("_id", id), query.Cached(time.Hour))
	require.NoError(tb, err)
	if len(docs) > 0 {
		v = docs[0].V
	}
	return v, p.cache.Stats().Hits > before
}

// cached reads document id through p's cache until the read is a hit
// (a load stored; on a loaded machine a flush may drop it in between),
// and returns its version.
func (p *peer) cached(tb testing.TB, id int) int {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, hit := p.readID(tb, id)
		if hit {
			return v
		}
		require.True(tb, time.Now().Before(deadline), "document %d never stayed cached", id)
		time.Sleep(time.Millisecond)
	}
}

// replace sets document id's version to v as a process of its own would,
// like write, but tells p's cache what the write changed, as odm does for
// a Replace: the statement is built here by hand, in the form odm reports
// it, because every cache of this test binary is on one invalidation bus
// (a write through odm would reach the other peers' caches directly, not
// through their logs).
func (p *peer) replace(tb testing.TB, id, v int) {
	tb.Helper()
	ctx, _ := cachecore.Handled(context.Background())
	doc := Doc{ID: id, V: v}
	_, err := p.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
	require.NoError(tb, err)
	filter, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	require.NoError(tb, err)
	raw, err := bson.Marshal(doc)
	require.NoError(tb, err)
	cachecore.Unwrap(p.cache).Apply(cachecore.Change{DB: p.coll.Database().Name(), Coll: p.coll.Name(),
		Stmts: []cachecore.Stmt{{Op: cachecore.OpReplace, Filter: filter, Doc: raw, Upsert: true, NotUpserted: true}}})
}

// TestDescriptorEvents: a write in one process reaches the other's cache
// as what it changed: the read of the document it replaced is fresh, the
// read of another document stays a hit. An older publisher's event
// (NamespaceEvents, the format before descriptors) and an event over the
// cap invalidate the collection, as before: fresh, never stale.
func TestDescriptorEvents(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	for _, tc := range []struct {
		name     string
		opts     []LogOption
		precise  bool
		oversize bool
	}{
		{"descriptors", nil, true, false},
		{"an older publisher", []LogOption{NamespaceEvents()}, false, false},
		{"over the cap", []LogOption{MaxDescriptorBytes(10)}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testdb.DB(t).Name()
			a := newPeer(t, observedClient(t), db, tc.opts...)
			a.replace(t, 1, 1)
			a.replace(t, 2, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, a.log.Flush(ctx))
			// b starts after those events: they are its backlog, never
			// applied, so that only the write below reaches its entries.
			b := newPeer(t, observedClient(t), db)
			for _, id := range []int{1, 2} {
				require.Equal(t, 1, b.cached(t, id))
			}
			before := b.cache.Stats()

			a.replace(t, 1, 2)
			b.waitFor(t, 2) // fresh within the propagation bound, whatever the event carries
			v, hit := b.readID(t, 2)
			assert.Equal(t, 1, v)
			after := b.cache.Stats()
			if after.Resyncs == before.Resyncs { // a flush (a read of the log past the liveness bound, on a loaded machine) drops it too
				assert.Equal(t, tc.precise, hit, "the read of another document survives a described write")
			} else {
				t.Logf("%d resyncs: the surviving read is not checked", after.Resyncs-before.Resyncs)
			}
			assert.Greater(t, after.Remote, before.Remote)
			if tc.precise {
				assert.Greater(t, after.RemotePrecise, before.RemotePrecise)
				assert.Positive(t, a.log.Stats().Described)
			} else {
				assert.Equal(t, before.RemotePrecise, after.RemotePrecise)
			}
			assert.Equal(t, tc.oversize, a.log.Stats().Oversize > 0)
		})
	}
}

// oldEvent is an event as a reader before descriptor events decodes it.
type oldEvent struct {
	ID        bson.ObjectID `bson:"_id"`
	Publisher bson.ObjectID `bson:"p"`
	Seq       int64         `bson:"s"`
	NS        []string      `bson:"ns"`
}

// TestOldReaderReadsNewEvents: an event with descriptors, as the log
// stores it, decodes for a reader that predates them (this package's
// decoder and the driver's, as older versions used) with the namespaces
// it names: such a reader invalidates each of them, as before.
func TestOldReaderReadsNewEvents(t *testing.T) {
	desc, ok := cachecore.AppendDescriptor(nil, &cachecore.Change{DB: "app", Coll: "a", Stmts: []cachecore.Stmt{
		{Op: cachecore.OpDelete, Filter: bson.Raw(mustMarshal(t, bson.D{{Key: "_id", Value: 1}}))}}}, cachecore.MaxDescriptor)
	require.True(t, ok)
	ev := event{ID: bson.NewObjectID(), Publisher: bson.NewObjectID(), Seq: 3, NS: []string{"app\x00a", "app\x00b"},
		W: []described{{NS: "app\x00a", Descs: [][]byte{desc}}}, At: time.Now()}
	raw := mustMarshal(t, ev)
	var old oldEvent
	require.NoError(t, decode.MustCompile[oldEvent]().Decode(raw, &old))
	assert.Equal(t, []string{"app\x00a", "app\x00b"}, old.NS)
	assert.EqualValues(t, 3, old.Seq)
	var viaDriver oldEvent
	require.NoError(t, bson.Unmarshal(raw, &viaDriver))
	assert.Equal(t, old, viaDriver)

	// And this version reads it whole: a's write by its descriptor, b's
	// collection (no descriptor) invalidated.
	var s recordingSink
	f := &follower{l: &Log{}, sink: &s}
	var back event
	require.NoError(t, eventPlan.Decode(raw, &back))
	f.deliver(&back)
	assert.Equal(t, []string{"app.a"}, s.described)
	assert.Equal(t, []string{"app.b"}, s.invalidated)
	assert.Equal(t, []byte(desc), s.descriptors[0])
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := bson.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestRefusedEventIsAppendedWithoutDescriptors: an event whose append
// fails with its descriptors (here one larger than a message may be, which
// the driver refuses; the dev server accepts documents past 16 MiB) is
// appended again as its namespaces only: the events after it are not held
// up, and the readers invalidate the collection.
func TestRefusedEventIsAppendedWithoutDescriptors(t *testing.T) {
	db := testdb.DB(t)
	l := NewLog(db, MaxDescriptorBytes(64<<20))
	ctx := context.Background()
	require.NoError(t, l.ensure(ctx))
	big := make([]byte, 16<<10)
	for range 3300 { // 54 MB of descriptors, past the 48 MB of a message
		l.PublishDescribed(db.Name(), "docs", big)
	}
	err := l.appendPending(ctx)
	require.Error(t, err)
	t.Logf("first append: %v", err)
	require.NoError(t, l.appendPending(ctx))
	assert.EqualValues(t, 1, l.Stats().Refused)
	assert.Zero(t, l.Stats().Described)
	f := &follower{l: l}
	evs, err := f.newest(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{db.Name() + "\x00docs"}, evs[0].NS)
	assert.Empty(t, evs[0].W)
}

// TestPreImagesTravel: a write through a handle with pre-images, in a
// process whose cache publishes descriptors, asks the server for its
// pre-image even when this process caches nothing it would keep (another
// process may), and its event carries it, whole: what the other
// processes' entries read is not known here.
func TestPreImagesTravel(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	a := newPeer(t, observedClient(t), db)
	h, err := odm.New[Doc](a.coll, odm.WithCache(a.cache), odm.WithPreImages())
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, h.Insert(ctx, &Doc{ID: 1, V: 1}))
	_, err = h.UpdateOne(ctx, query.Eq("_id", 1), bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, a.log.Flush(fctx))

	cur, err := a.log.coll.Find(ctx, bson.D{{Key: "p", Value: a.log.id}})
	require.NoError(t, err)
	var updates []cachecore.Stmt
	for cur.Next(ctx) {
		var ev event
		require.NoError(t, eventPlan.Decode(cur.Current, &ev))
		for _, w := range ev.W {
			for _, d := range w.Descs {
				ch, ok := cachecore.ChangeOfDescriptor(db, "docs", d)
				require.True(t, ok)
				for _, s := range ch.Stmts {
					if s.Op == cachecore.OpUpdate {
						updates = append(updates, s)
					}
				}
			}
		}
	}
	require.NoError(t, cur.Err())
	require.Len(t, updates, 1)
	assert.Equal(t, `{"_id": {"$numberInt":"1"},"v": {"$numberInt":"1"}}`, updates[0].PreImage.String(), "the document before the update, whole")
	assert.Nil(t, updates[0].PreImageFields)
}

// TestLargeWriteIsPublishedByName: an InsertMany of 1,000 documents, whose
// descriptor would pass cache.MaxDescriptorSize, is published by its
// collection's name (counted in Stats.Undescribed), and the other process
// invalidates the collection. (The change is built by hand as odm reports
// an InsertMany, for the reason given at replace.)
func TestLargeWriteIsPublishedByName(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	a := newPeer(t, observedClient(t), db)
	a.replace(t, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.log.Flush(ctx))
	b := newPeer(t, observedClient(t), db)
	b.cached(t, 2)
	before := b.cache.Stats()

	docs := make([]any, 1000)
	stmts := make([]cachecore.Stmt, 1000)
	for i := range docs {
		d := bson.D{{Key: "_id", Value: 1000 + i}, {Key: "v", Value: 1}, {Key: "pad", Value: "0123456789012345678901234567890123456789"}}
		docs[i] = d
		stmts[i] = cachecore.Stmt{Op: cachecore.OpInsert, Doc: mustMarshal(t, d)}
	}
	hctx, _ := cachecore.Handled(ctx)
	_, err := a.coll.InsertMany(hctx, docs)
	require.NoError(t, err)
	cachecore.Unwrap(a.cache).Apply(cachecore.Change{DB: db, Coll: "docs", Stmts: stmts})
	assert.EqualValues(t, 1, a.cache.Stats().Undescribed)
	require.Eventually(t, func() bool { return b.cache.Stats().Remote > before.Remote }, 10*time.Second, time.Millisecond)
	after := b.cache.Stats()
	assert.Equal(t, before.RemotePrecise, after.RemotePrecise)
	_, hit := b.readID(t, 2)
	assert.False(t, hit, "the collection was invalidated")
}

// lagRecorder is a cache.Tracer and SourceTracer that keeps the lags of
// the events delivered.
type lagRecorder struct {
	mu   sync.Mutex
	lags []time.Duration
}

func (r *lagRecorder) TraceReadStart(ctx context.Context, _ cache.ReadStart) context.Context {
	return ctx
}
func (r *lagRecorder) TraceReadEnd(context.Context, cache.ReadEnd) {}
func (r *lagRecorder) TraceSource(_ context.Context, e cache.SourceEvent) {
	if e.Kind == cache.SourceDelivered {
		r.mu.Lock()
		r.lags = append(r.lags, e.Lag)
		r.mu.Unlock()
	}
}

// TestEventsCarryTheirLag: each event says when its first write was
// published; the reader's cache hands its SourceTracer the delay from
// there to the delivery (the propagation lag), measured from before the
// write to after the reader saw it.
func TestEventsCarryTheirLag(t *testing.T) {
	db := testdb.DB(t).Name()
	a := newPeer(t, observedClient(t), db)
	rec := &lagRecorder{}
	cl := observedClient(t)
	l := NewLog(cl.Database(db))
	c, err := cache.New(cache.Config{Source: l, Tracer: rec})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.Eventually(t, func() bool { return c.Stats().Synced }, 20*time.Second, 5*time.Millisecond)

	start := time.Now()
	a.replace(t, 1, 1)
	require.Eventually(t, func() bool { return c.Stats().Remote > 0 }, 20*time.Second, time.Millisecond)
	bound := time.Since(start)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.NotEmpty(t, rec.lags, "the delivered event's lag reached the tracer")
	// Both clocks are this host's; the event's time has millisecond
	// precision.
	assert.LessOrEqual(t, rec.lags[0], bound+time.Millisecond)
}
