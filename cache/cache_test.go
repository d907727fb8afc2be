package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

type Doc struct {
	ID   int      `bson:"_id"`
	V    int      `bson:"v"`
	Tags []string `bson:"tags"`
}

func newCache(t *testing.T, cfg cache.Config) *cache.Cache {
	t.Helper()
	c, err := cache.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

type env struct {
	coll *mongo.Collection
	log  *testdb.CommandLog
	c    *cache.Cache
	docs *odm.Collection[Doc]
}

func setup(t *testing.T, n int) env {
	t.Helper()
	log := &testdb.CommandLog{}
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(log.Monitor())))
	coll := testdb.DBOn(t, cl).Collection("docs")
	docs := make([]any, n)
	for i := range docs {
		docs[i] = Doc{ID: i, V: 0, Tags: []string{"a", "b"}}
	}
	_, err := coll.InsertMany(context.Background(), docs)
	require.NoError(t, err)
	c := newCache(t, cache.Config{})
	log.Reset()
	return env{coll: coll, log: log, c: c, docs: handle[Doc](t, coll, odm.WithCache(c))}
}

// write changes a document with the raw driver: the client's observer puts
// it on the invalidation bus before the driver returns.
func (e env) write(t testing.TB, id int) int {
	var after Doc
	err := e.coll.FindOneAndUpdate(context.Background(), bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&after)
	if err != nil {
		t.Errorf("write: %v", err)
	}
	return after.V
}

func TestHitMissAndInvalidate(t *testing.T) {
	e := setup(t, 10)
	ctx := context.Background()
	cached := query.Cached(time.Minute)

	got, err := e.docs.FindMany(ctx, nil, cached, query.Sort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	require.Len(t, got, 10)
	cache.Core(e.c).Wait()
	got, err = e.docs.FindMany(ctx, nil, cached, query.Sort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	require.Len(t, got, 10)
	assert.Equal(t, 1, e.log.Count("find"), "the second read is a hit")
	s := e.c.Stats()
	assert.EqualValues(t, 1, s.Hits)
	assert.EqualValues(t, 1, s.Misses)
	assert.InDelta(t, 0.5, s.HitRatio(), 1e-9)
	assert.Positive(t, s.UsedBytes)

	// A write invalidates: the next read goes to the server and sees it.
	assert.Equal(t, 1, e.write(t, 3))
	got, err = e.docs.FindMany(ctx, nil, cached, query.Sort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	assert.Equal(t, 1, got[3].V)
	assert.Equal(t, 2, e.log.Count("find"))
	assert.EqualValues(t, 1, e.c.Stats().Applied)

	// FindOne and Iter use the cache too.
	cache.Core(e.c).Wait()
	one, err := e.docs.FindOne(ctx, query.Eq("_id", 3), cached)
	require.NoError(t, err)
	assert.Equal(t, 1, one.V)
	n := 0
	for d, err := range e.docs.Iter(ctx, nil, cached, query.Sort(bson.D{{Key: "_id", Value: 1}})) {
		require.NoError(t, err)
		assert.Equal(t, n, d.ID)
		n++
	}
	assert.Equal(t, 10, n)
	assert.Equal(t, 3, e.log.Count("find"), "FindOne missed once; Iter hit FindMany's entry")

	_, err = e.docs.FindOne(ctx, query.Eq("_id", 99), cached)
	assert.ErrorIs(t, err, query.ErrNotFound)
}

// TestHandleReadsThroughItsOwnCache: a handle reads through the cache it
// was given, or none: a handle made without WithCache fails a Cached read
// with ErrUncacheable, even on a collection value another handle caches; two
// caches on one collection value are two handles' business. A write through
// the handle without a cache still invalidates both caches (the bus).
func TestHandleReadsThroughItsOwnCache(t *testing.T) {
	e := setup(t, 1)
	ctx := context.Background()
	plain := handle[Doc](t, e.coll) // e.coll is e.docs's too, with e.c
	_, err := plain.FindMany(ctx, nil, query.Cached(0))
	assert.ErrorIs(t, err, query.ErrUncacheable)

	c2 := newCache(t, cache.Config{})
	second := handle[Doc](t, e.coll, odm.WithCache(c2))
	for _, h := range []*odm.Collection[Doc]{e.docs, second, e.docs, second} {
		got, err := h.FindMany(ctx, nil, query.Cached(time.Minute))
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Zero(t, got[0].V)
		cache.Core(e.c).Wait()
		cache.Core(c2).Wait()
	}
	assert.EqualValues(t, 1, e.c.Stats().Hits)
	assert.EqualValues(t, 1, c2.Stats().Hits, "each handle its own cache")

	_, err = plain.UpdateOne(ctx, query.Eq("_id", 0), bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}})
	require.NoError(t, err)
	for _, h := range []*odm.Collection[Doc]{e.docs, second} {
		got, err := h.FindMany(ctx, nil, query.Cached(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, 7, got[0].V, "the write through the handle without a cache reached every cache")
	}
}

func TestCallersMayMutateResults(t *testing.T) {
	e := setup(t, 3)
	ctx := context.Background()
	first, err := e.docs.FindMany(ctx, nil, query.Cached(time.Minute))
	require.NoError(t, err)
	cache.Core(e.c).Wait()
	for i := range first {
		first[i].V = 100
		first[i].Tags[0] = "mutated"
		first[i].Tags = append(first[i].Tags, "more")
	}
	second, err := e.docs.FindMany(ctx, nil, query.Cached(time.Minute))
	require.NoError(t, err)
	require.EqualValues(t, 1, e.c.Stats().Hits)
	for _, d := range second {
		assert.Equal(t, 0, d.V)
		assert.Equal(t, []string{"a", "b"}, d.Tags)
	}
}

// Flat holds no slices, maps or pointers: cached hits are memoized copies.
type Flat struct {
	ID int `bson:"_id"`
	V  int `bson:"v"`
}

func TestCallersMayMutateFlatResults(t *testing.T) {
	e := setup(t, 3)
	ctx := context.Background()
	h := handle[Flat](t, e.coll, odm.WithCache(e.c))
	first, err := h.FindMany(ctx, nil, query.Cached(time.Minute))
	require.NoError(t, err)
	cache.Core(e.c).Wait()
	for i := range first {
		first[i].V = 100
	}
	second, err := h.FindMany(ctx, nil, query.Cached(time.Minute))
	require.NoError(t, err)
	require.EqualValues(t, 1, e.c.Stats().Hits)
	for i := range second {
		second[i].V++
	}
	third, err := h.FindMany(ctx, nil, query.Cached(time.Minute))
	require.NoError(t, err)
	for _, d := range third {
		assert.Equal(t, 0, d.V)
	}
}

// TestSingleflight sends 16 identical concurrent misses and counts, with the
// command monitor, the finds that reach the server.
func TestSingleflight(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	e := setup(t, 5)
	ctx := context.Background()
	q := cachecore.Key{Database: e.coll.Database().Name(), Collection: e.coll.Name(), Filter: bson.D{}}
	release := make(chan struct{})
	load := func(ctx context.Context) ([]bson.Raw, error) {
		<-release // hold the first load until every reader has missed
		cur, err := e.coll.Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		var docs []bson.Raw
		for cur.Next(ctx) {
			docs = append(docs, cur.Current)
		}
		return docs, cur.Err()
	}
	const n = 16
	var wg sync.WaitGroup
	results := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cache.Core(e.c).Fetch(ctx, q, time.Minute, cache.Observed(load), nil)
			if assert.NoError(t, err) {
				results[i] = len(res.Docs)
			}
		}()
	}
	require.Eventually(t, func() bool { return e.c.Stats().Misses == n }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, 1, e.log.Count("find"))
	assert.EqualValues(t, 1, e.c.Stats().Loads)
	for _, r := range results {
		assert.Equal(t, 5, r)
	}
}

// TestNoStaleRefill forces the interleaving that defeats invalidate-then-set
// caches: a read loads the old value, a write lands and invalidates, then the
// slow read stores its old value. Later reads must not see it.
func TestNoStaleRefill(t *testing.T) {
	e := setup(t, 1)
	ctx := context.Background()
	q := cachecore.Key{Database: e.coll.Database().Name(), Collection: e.coll.Name(), Filter: bson.D{}}

	loaded := make(chan struct{})
	release := make(chan struct{})
	slow := func(ctx context.Context) ([]bson.Raw, error) {
		raw, err := e.coll.FindOne(ctx, bson.D{}).Raw() // reads v=0
		close(loaded)
		<-release // the write happens now
		return []bson.Raw{raw}, err
	}
	done := make(chan []bson.Raw)
	go func() {
		res, err := cache.Core(e.c).Fetch(ctx, q, time.Minute, cache.Observed(slow), nil)
		assert.NoError(t, err)
		done <- res.Docs
	}()
	<-loaded
	require.Equal(t, 1, e.write(t, 0)) // write returns: v=1 committed, cache invalidated
	close(release)
	stale := <-done
	assert.EqualValues(t, 0, stale[0].Lookup("v").Int32(), "the slow read saw the old value")
	cache.Core(e.c).Wait() // let ristretto apply the (stale) set

	fresh := func(ctx context.Context) ([]bson.Raw, error) {
		raw, err := e.coll.FindOne(ctx, bson.D{}).Raw()
		return []bson.Raw{raw}, err
	}
	res, err := cache.Core(e.c).Fetch(ctx, q, time.Minute, cache.Observed(fresh), nil)
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.Docs[0].Lookup("v").Int32(), "a read begun after the write sees it")
}

// TestConcurrentReadsSeeCompletedWrites mixes writes and cached reads from 8
// goroutines over shared documents (10,000 operations); after each write
// returns, every cached read begun after it must see it.
//
// Each document has one writer, which sets its own increasing version. (On
// FerretDB, concurrent findAndModify $inc on one document is not
// linearizable: an uncached read can miss an acknowledged increment, so a
// test built on that would blame the cache for the server.)
func TestConcurrentReadsSeeCompletedWrites(t *testing.T) {
	leakcheck.Check(t, 5*time.Second)
	const workers, opsPer = 8, 1250
	e := setup(t, workers)
	ctx := context.Background()
	db, coll := e.coll.Database().Name(), e.coll.Name()
	var committed [workers]atomic.Int64
	var violations, reads, writes atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			version := 0
			for range opsPer {
				if r.Intn(10) == 0 { // write my own document
					version++
					_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: w}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: version}}}})
					e.c.Invalidate(db, coll) // what every odm write does before returning
					if !assert.NoError(t, err) {
						return
					}
					committed[w].Store(int64(version))
					writes.Add(1)
					continue
				}
				var floor [workers]int64
				for i := range floor {
					floor[i] = committed[i].Load()
				}
				got, err := e.docs.FindMany(ctx, nil, query.Cached(time.Minute))
				if !assert.NoError(t, err) {
					return
				}
				reads.Add(1)
				for _, d := range got {
					if int64(d.V) < floor[d.ID] {
						violations.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, violations.Load(), "stale cached reads")
	assert.EqualValues(t, workers*opsPer, reads.Load()+writes.Load())
	s := e.c.Stats()
	t.Logf("reads %d writes %d hits %d misses %d loads %d invalidations %d", reads.Load(), writes.Load(), s.Hits, s.Misses, s.Loads, s.Applied)
	assert.Positive(t, s.Hits, "the cache must actually serve reads")
}

// TestChurnStaysWithinMaxCost runs many distinct queries through a small
// cache and checks the bytes it holds.
func TestChurnStaysWithinMaxCost(t *testing.T) {
	e := setup(t, 50)
	const maxCost = 16 << 10
	c := newCache(t, cache.Config{MaxCost: maxCost})
	h := handle[Doc](t, e.coll.Database().Collection(e.coll.Name()), odm.WithCache(c))
	ctx := context.Background()
	for i := range 300 {
		_, err := h.FindMany(ctx, query.Gte("_id", i%50), query.Cached(time.Minute), query.Limit(int64(1+i/50)))
		require.NoError(t, err)
	}
	cache.Core(c).Wait()
	s := c.Stats()
	t.Logf("used %d of %d bytes, %d evictions", s.UsedBytes, s.MaxBytes, s.Evictions)
	assert.LessOrEqual(t, s.UsedBytes, int64(maxCost))
	assert.Positive(t, s.Evictions)
}

// TestTTL runs in a synctest bubble: time.Sleep advances the fake clock, so
// expiry is tested without waiting.
func TestTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := cache.New(cache.Config{})
		require.NoError(t, err)
		defer c.Close()
		q := cachecore.Key{Database: "db", Collection: "c"}
		loads := 0
		load := func(context.Context) ([]bson.Raw, error) {
			loads++
			d, _ := bson.Marshal(bson.D{{Key: "n", Value: loads}})
			return []bson.Raw{d}, nil
		}
		ctx := context.Background()
		_, err = cache.Core(c).Fetch(ctx, q, 10*time.Second, cache.Observed(load), nil)
		require.NoError(t, err)
		cache.Core(c).Wait()
		time.Sleep(5 * time.Second)
		_, err = cache.Core(c).Fetch(ctx, q, 10*time.Second, cache.Observed(load), nil)
		require.NoError(t, err)
		assert.Equal(t, 1, loads, "fresh within the TTL")
		time.Sleep(6 * time.Second)
		_, err = cache.Core(c).Fetch(ctx, q, 10*time.Second, cache.Observed(load), nil)
		require.NoError(t, err)
		assert.Equal(t, 2, loads, "expired after the TTL")
	})
}

func TestConfigValidation(t *testing.T) {
	_, err := cache.New(cache.Config{MaxCost: -1})
	assert.Error(t, err)
}

func ExampleCache_Stats() {
	c, _ := cache.New(cache.Config{MaxCost: 1 << 20})
	defer c.Close()
	fmt.Println(c.Stats().MaxBytes, c.Stats().HitRatio())
	// Output: 1048576 0
}

// scriptSource is a cache.Source driven by the test: it hands the sink
// over and records what the cache publishes.
type scriptSource struct {
	sinks     chan cache.Sink
	published chan string
}

func (s *scriptSource) Publish(db, coll string) { s.published <- db + "." + coll }

func (s *scriptSource) Run(ctx context.Context, sink cache.Sink) {
	s.sinks <- sink
	<-ctx.Done()
}

// TestSourceContract checks the cache's side of cache.Source without a
// server: nothing is cached before Synced or after Lost, local
// invalidations are published and remote ones are not, Lost and
// InvalidateAll flush every collection, and Close waits for Run.
func TestSourceContract(t *testing.T) {
	src := &scriptSource{sinks: make(chan cache.Sink, 1), published: make(chan string, 10)}
	c, err := cache.New(cache.Config{Source: src})
	require.NoError(t, err)
	sink := <-src.sinks
	q := cachecore.Key{Database: "db", Collection: "c"}
	loads := 0
	load := func(context.Context) ([]bson.Raw, error) {
		loads++
		d, _ := bson.Marshal(bson.D{{Key: "n", Value: loads}})
		return []bson.Raw{d}, nil
	}
	fetch := func() {
		t.Helper()
		_, err := cache.Core(c).Fetch(context.Background(), q, time.Minute, cache.Observed(load), nil)
		require.NoError(t, err)
		cache.Core(c).Wait()
	}

	fetch()
	fetch()
	assert.Equal(t, 2, loads, "not synced yet: nothing is cached")
	assert.EqualValues(t, 2, c.Stats().Bypassed)
	assert.False(t, c.Stats().Synced)

	sink.Synced()
	fetch()
	fetch()
	assert.Equal(t, 3, loads, "synced: cached")

	c.Invalidate("db", "c")
	assert.Equal(t, "db.c", <-src.published, "a local invalidation is published")
	fetch()
	assert.Equal(t, 4, loads)

	sink.Invalidate("db", "c")
	assert.Empty(t, src.published, "a remote invalidation is not published back")
	assert.EqualValues(t, 1, c.Stats().Remote)
	fetch()
	assert.Equal(t, 5, loads)

	sink.Lost(errors.New("cursor killed"))
	fetch()
	fetch()
	assert.Equal(t, 7, loads, "lost: flushed, and nothing cached until synced")
	assert.EqualValues(t, 1, c.Stats().Resyncs)
	sink.Synced()
	fetch()
	fetch()
	assert.Equal(t, 8, loads)

	other := cachecore.Key{Database: "db", Collection: "never-seen-before"}
	_, err = cache.Core(c).Fetch(context.Background(), other, time.Minute, cache.Observed(load), nil)
	require.NoError(t, err)
	cache.Core(c).Wait()
	c.InvalidateAll()
	fetch()
	_, err = cache.Core(c).Fetch(context.Background(), other, time.Minute, cache.Observed(load), nil)
	require.NoError(t, err)
	assert.Equal(t, 11, loads, "InvalidateAll reaches every collection")
	assert.Empty(t, src.published, "InvalidateAll is not published")

	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the source")
	}
}

// recordingSource is a cache.Source that records what it is told to
// publish (pure bookkeeping: no server is involved).
type recordingSource struct {
	mu        sync.Mutex
	published []string
}

func (s *recordingSource) Publish(db, coll string) {
	s.mu.Lock()
	s.published = append(s.published, db+"."+coll)
	s.mu.Unlock()
}

func (s *recordingSource) Run(ctx context.Context, sink cache.Sink) {
	sink.Synced()
	<-ctx.Done()
}

func (s *recordingSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.published)
}

// TestUnsettledWindow runs in a synctest bubble: after Unsettled, reads of
// the collection neither hit nor store until the deadline plus the
// SettleMargin; then the collection is invalidated and published again,
// and reads are cached as before. Other collections are unaffected.
func TestUnsettledWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &recordingSource{}
		c, err := cache.New(cache.Config{SettleMargin: time.Second, Source: src})
		require.NoError(t, err)
		defer c.Close()
		synctest.Wait() // the source has reported Synced
		q := cachecore.Key{Database: "db", Collection: "c"}
		other := cachecore.Key{Database: "db", Collection: "other"}
		loads := 0
		load := func(context.Context) ([]bson.Raw, error) {
			loads++
			d, _ := bson.Marshal(bson.D{{Key: "n", Value: loads}})
			return []bson.Raw{d}, nil
		}
		ctx := context.Background()
		fetch := func(q cachecore.Key) {
			_, err := cache.Core(c).Fetch(ctx, q, time.Hour, cache.Observed(load), nil)
			require.NoError(t, err)
			cache.Core(c).Wait()
		}
		fetch(q)
		fetch(other)
		require.Equal(t, 2, loads)

		cache.Core(c).Apply(cachecore.Change{DB: "db", Coll: "c", Unknown: true, Deadline: time.Now().Add(2 * time.Second)})
		assert.Equal(t, 1, src.count(), "published at once")
		for range 3 { // within deadline + margin: every read loads, nothing is stored
			fetch(q)
			time.Sleep(900 * time.Millisecond)
		}
		assert.Equal(t, 5, loads)
		fetch(other)
		assert.Equal(t, 5, loads, "another collection is still served")
		assert.EqualValues(t, 3, c.Stats().Bypassed)

		time.Sleep(time.Second) // past 2 s + 1 s margin
		synctest.Wait()
		assert.Equal(t, 2, src.count(), "published again when the window ends")
		fetch(q)
		fetch(q)
		assert.Equal(t, 6, loads, "cached again after the window")

		// A second unknown write extends the window; an earlier deadline
		// does not shorten it.
		cache.Core(c).Apply(cachecore.Change{DB: "db", Coll: "c", Unknown: true, Deadline: time.Now().Add(5 * time.Second)})
		cache.Core(c).Apply(cachecore.Change{DB: "db", Coll: "c", Unknown: true, Deadline: time.Now().Add(time.Second)})
		time.Sleep(3 * time.Second)
		fetch(q)
		fetch(q)
		assert.Equal(t, 8, loads, "still unsettled at 3 s of 5+1")
		time.Sleep(4 * time.Second)
		synctest.Wait()
		fetch(q)
		fetch(q)
		assert.Equal(t, 9, loads)
		assert.EqualValues(t, 3, c.Stats().Unsettled)
	})
}

// TestAlsoDependencies: an entry that depends on other collections (an
// aggregation's $lookup, say) is invalidated by a write to any of them,
// and not by writes elsewhere. Bookkeeping only: the load is a function.
func TestAlsoDependencies(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx := context.Background()
	loads := 0
	load := func(context.Context) ([]bson.Raw, error) { loads++; return nil, nil }
	k := cachecore.Key{Op: "aggregate", Database: "app", Collection: "users", Also: []string{"app.orders", "other.items"}, Filter: bson.A{}}
	fetch := func() {
		_, err := cache.Core(c).Fetch(ctx, k, time.Hour, cache.Observed(load), nil)
		require.NoError(t, err)
	}
	fetch()
	fetch()
	require.Equal(t, 1, loads)
	c.Invalidate("app", "unrelated")
	fetch()
	assert.Equal(t, 1, loads, "a write elsewhere")
	c.Invalidate("app", "orders")
	fetch()
	assert.Equal(t, 2, loads, "a write to a dependency")
	c.Invalidate("other", "items")
	fetch()
	assert.Equal(t, 3, loads, "in another database too")
	c.Invalidate("app", "users")
	fetch()
	assert.Equal(t, 4, loads, "and to the source")
	cache.Core(c).Apply(cachecore.Change{DB: "app", Coll: "orders", Unknown: true, Deadline: time.Now().Add(time.Hour)})
	fetch()
	fetch()
	assert.Equal(t, 6, loads, "an unsettled dependency keeps it out of the cache")
}
