package coherence

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
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

// Doc is the document the processes of these tests write and cache.
type Doc struct {
	ID int `bson:"_id"`
	V  int `bson:"v"`
}

// peer is one process's view: its client, its cache with a Log and a
// cached reader of the "docs" collection of a shared database. Its writes
// are what another process's are to the rest of this test binary (see
// write).
type peer struct {
	log    *Log
	cache  *cache.Cache
	reader *odm.Collection[Doc]
	coll   *mongo.Collection
}

func newPeer(tb testing.TB, cl *mongo.Client, db string, opts ...LogOption) *peer {
	tb.Helper()
	l := NewLog(cl.Database(db), opts...)
	return startPeer(tb, cl, db, l)
}

func startPeer(tb testing.TB, cl *mongo.Client, db string, l *Log) *peer {
	tb.Helper()
	c, err := cache.New(cache.Config{Source: l})
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	coll := cl.Database(db).Collection("docs")
	r, err := odm.New[Doc](coll, odm.WithCache(c))
	require.NoError(tb, err)
	p := &peer{log: l, cache: c, reader: r, coll: coll}
	require.Eventually(tb, func() bool { return c.Stats().Synced }, 20*time.Second, 5*time.Millisecond, "the reader follows the log")
	return p
}

// read is a cached read of document 1's version.
func (p *peer) read(tb testing.TB) int {
	tb.Helper()
	docs, err := p.reader.FindMany(context.Background(), query.Eq("_id", 1), query.Cached(time.Hour))
	require.NoError(tb, err)
	require.Len(tb, docs, 1)
	return docs[0].V
}

// write sets document 1's version to v as a process of its own would: the
// write is kept off this binary's invalidation bus (a context the command
// monitor leaves alone, as it does odm's own writes), and p's cache is told
// of it as its own process's bus would tell it: applied here, published
// through p's Source. The other peers' caches learn of it only through
// their Sources. (Every cache of one process is on its bus; a test that
// wants a write the bus carries to the other processes of the test binary
// has none, so the real thing runs in TestPropagationAcrossProcesses.)
func (p *peer) write(tb testing.TB, v int) {
	tb.Helper()
	ctx, _ := cachecore.Handled(context.Background())
	_, err := p.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, Doc{ID: 1, V: v}, options.Replace().SetUpsert(true))
	assert.NoError(tb, err) // not require: TestConcurrentPublishers writes from goroutines
	p.cache.Invalidate(p.coll.Database().Name(), p.coll.Name())
}

// waitFor polls p's cached read until it returns at least v, and returns
// how long that took; it fails the test after 10 s.
func (p *peer) waitFor(tb testing.TB, v int) time.Duration {
	tb.Helper()
	start := time.Now()
	for p.read(tb) < v {
		if time.Since(start) > 10*time.Second {
			tb.Fatalf("version %d never reached the other process's cache", v)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Since(start)
}

func TestMain(m *testing.M) {
	if os.Getenv(writerEnv) != "" {
		os.Exit(runWriter())
	}
	os.Exit(m.Run())
}

// TestLogPropagates is the in-process sanity check: two caches on two
// clients, one writes, the other's cached read sees it, and neither applies
// its own events twice.
func TestLogPropagates(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	a := newPeer(t, observedClient(t), db)
	b := newPeer(t, observedClient(t), db)
	a.write(t, 1)
	require.Equal(t, 1, a.read(t))
	require.Equal(t, 1, b.read(t))
	b.write(t, 2)
	assert.Equal(t, 2, b.read(t), "the writer's own cache, at once")
	a.waitFor(t, 2)
	a.write(t, 3)
	b.waitFor(t, 3)
	sa, sb := a.cache.Stats(), b.cache.Stats()
	assert.Positive(t, sa.Remote)
	assert.Positive(t, sb.Remote)
	assert.Zero(t, sa.Resyncs)
	assert.Zero(t, sb.Resyncs)
}

// TestPublishCoalesces publishes 10,000 invalidations of one collection as
// fast as possible and checks they become far fewer events, then that Flush
// returns once they are all appended.
func TestPublishCoalesces(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t)
	p := newPeer(t, observedClient(t), db.Name())
	logColl := db.Collection(DefaultLogCollection)
	before, err := logColl.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	const writes = 10_000
	for range writes {
		p.cache.Invalidate(db.Name(), "docs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.log.Flush(ctx))
	after, err := logColl.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	events := after - before
	t.Logf("%d invalidations became %d events", writes, events)
	assert.Positive(t, events)
	assert.Less(t, events, int64(writes/10))
}

const (
	writerEnv = "DATABRIDGE_COHERENCE_WRITER" // "<uri> <database> <writes> <mode>"
)

// Writer modes: the events the second process publishes.
const (
	modeDescriptors = "descriptors" // the default Log
	modeNamespaces  = "namespaces"  // NamespaceEvents: an older publisher's events
	modeOversize    = "oversize"    // every event over MaxDescriptorBytes
)

// runWriter is the second process of TestPropagationAcrossProcesses: it
// writes documents 1..10 with versions 1..n, one write each 5-25 ms apart,
// through odm as a user would (Save and UpdateOne, every other write on a
// handle with pre-images), and prints "<id> <version> <unix ns when the
// write returned>" after each.
func runWriter() int {
	f := strings.Fields(os.Getenv(writerEnv))
	n, _ := strconv.Atoi(f[2])
	cl, err := mongo.Connect(options.Client().ApplyURI(f[0]).SetMonitor(cache.Observer(nil))) // the documented setup
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cl.Disconnect(context.Background())
	var opts []LogOption
	switch f[3] {
	case modeNamespaces:
		opts = append(opts, NamespaceEvents())
	case modeOversize:
		opts = append(opts, MaxDescriptorBytes(1))
	}
	l := NewLog(cl.Database(f[1]), opts...)
	c, err := cache.New(cache.Config{Source: l})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	coll := cl.Database(f[1]).Collection("docs")
	w, err := odm.New[Doc](coll, odm.WithCache(c))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pre, err := odm.New[Doc](coll, odm.WithCache(c), odm.WithPreImages())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A cached read of each document, so that pre-image writes have
	// entries to keep (they ask the server for one only then).
	for id := 1; id <= 10; id++ {
		if _, err := w.FindMany(context.Background(), query.Eq("_id", id), query.Cached(time.Hour)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	out := bufio.NewWriter(os.Stdout)
	for v := 1; v <= n; v++ {
		h := w
		if v%2 == 0 {
			h = pre
		}
		id := 1 + rand.IntN(10)
		if v%3 == 0 {
			_, err = h.UpdateOne(context.Background(), query.Eq("_id", id), bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}})
		} else {
			err = h.Save(context.Background(), &Doc{ID: id, V: v})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "%d %d %d\n", id, v, time.Now().UnixNano())
		out.Flush()
		time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
	}
	return 0
}

// startWriter starts runWriter in another OS process, writing to db; its
// lines come on out, and cmd.Wait ends it (the test's cleanup kills it).
func startWriter(t *testing.T, db string, writes int, mode string) (cmd *exec.Cmd, out io.Reader) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %s", writerEnv, testdb.URI(), db, writes, mode))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, out
}

// TestPropagationAcrossProcesses runs the writer as a separate OS process
// with a cache of its own, while this process keeps documents 1..10 and a
// list of them cached and re-reads them: every write reaches this
// process's cached reads within the bound (each version shows, and the
// cached list then equals the server's), whatever the writer's events
// carry: descriptors, namespaces only (an older publisher in a mixed
// fleet), or descriptors over the cap. The delay from the write returning
// to the first fresh cached read here is measured. With descriptors, a
// cached read the writes cannot change (documents past 100) survives them.
func TestPropagationAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a second process for about 8 s")
	}
	for _, tc := range []struct {
		mode   string
		writes int
	}{{modeDescriptors, 300}, {modeNamespaces, 100}, {modeOversize, 100}} {
		t.Run(tc.mode, func(t *testing.T) { testPropagation(t, tc.mode, tc.writes) })
	}
}

func testPropagation(t *testing.T, mode string, writes int) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	var errs errorLog
	a := newPeer(t, observedClient(t), db, OnError(errs.add))
	ctx := context.Background()
	for id := 1; id <= 10; id++ {
		a.replace(t, id, 0)
	}
	cachedList := func(f query.Filter) []Doc {
		docs, err := a.reader.FindMany(ctx, f, query.Sort(bson.D{{Key: "_id", Value: 1}}), query.Cached(time.Hour))
		require.NoError(t, err)
		return docs
	}
	serverList := func() []Doc {
		cur, err := a.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lte", Value: 10}}}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		require.NoError(t, err)
		var docs []Doc
		require.NoError(t, cur.All(ctx, &docs))
		return docs
	}
	unchanged := query.Gt("_id", 100) // no write of the writer can change it

	cmd, out := startWriter(t, db, writes, mode)

	var delays []time.Duration
	survived, flushed := 0, 0
	lastResyncs := a.cache.Stats().Resyncs
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var id, v int
		var at int64
		_, err := fmt.Sscan(sc.Text(), &id, &v, &at)
		require.NoError(t, err, sc.Text())
		start := time.Now()
		for got, _ := a.readID(t, id); got < v; got, _ = a.readID(t, id) {
			require.Less(t, time.Since(start), 10*time.Second, "version %d of document %d never reached this process's cache", v, id)
			time.Sleep(100 * time.Microsecond)
		}
		delays = append(delays, time.Since(time.Unix(0, at)))
		// The list is as fresh: once the write's event is applied, the
		// cached list equals the server's (later writes may land
		// meanwhile: it is read until they agree, within the bound).
		for want := serverList(); !slices.Equal(cachedList(query.Lte("_id", 10)), want); want = serverList() {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("after the write of version %d to document %d, the cached list never caught up with the server's:\ncached %v\nserver %v\nstats %+v",
					v, id, cachedList(query.Lte("_id", 10)), serverList(), a.cache.Stats())
			}
			time.Sleep(time.Millisecond)
		}
		before := a.cache.Stats()
		cachedList(unchanged)
		switch after := a.cache.Stats(); {
		case after.Hits > before.Hits:
			survived++
		case after.Resyncs != lastResyncs || after.Bypassed > before.Bypassed:
			// A flush since the previous read (a read of the log past the
			// liveness bound on a loaded machine), or not following now:
			// counted, not held against the rules.
			flushed++
		}
		lastResyncs = a.cache.Stats().Resyncs
	}
	require.NoError(t, cmd.Wait())
	require.Len(t, delays, writes)
	slices.Sort(delays)
	pct := func(p float64) time.Duration { return delays[int(p*float64(len(delays)-1))] }
	t.Logf("%s: propagation over %d writes: p50 %v, p90 %v, p99 %v, max %v", mode, writes, pct(0.5), pct(0.9), pct(0.99), delays[len(delays)-1])
	s := a.cache.Stats()
	t.Logf("reader: %d hits, %d misses, %d remote invalidations (%d by descriptor), %d resyncs; the unchanged read was a hit after %d of %d writes (%d misses after a flush)",
		s.Hits, s.Misses, s.Remote, s.RemotePrecise, s.Resyncs, survived, writes, flushed)
	if mode == modeDescriptors {
		assert.Positive(t, s.RemotePrecise)
		// No described write can change it: it misses only on its first
		// read and after a flush, whatever the machine's load. (With
		// namespace events it misses after most writes.)
		assert.LessOrEqual(t, writes-survived-flushed, 1+writes/20, "the read no write changes stays cached")
	} else {
		assert.Zero(t, s.RemotePrecise)
	}
	// Under load (a busy CI machine), a read of the log can outlast the
	// liveness bound: the cache then flushes, rightly, and every version
	// was still seen above. What must not happen is a lost event: these
	// writes are far fewer than the log holds.
	for _, err := range errs.get() {
		assert.NotErrorIs(t, err, ErrEventsLost)
	}
	if s.Resyncs > 0 {
		t.Logf("%d resyncs (counted, not failed: each a read past the liveness bound on a loaded machine): %v", s.Resyncs, errs.get())
	}
}

// errorLog collects what a Log reports to OnError.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }

func (l *errorLog) get() []error { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.errs) }

// TestConcurrentPublishers has four writers append events as fast as they
// can, each on its own client and to its own collection, while a fifth
// process's cache follows: it applies every event without a flush
// (FerretDB commits some appends out of order, which the reader must
// catch), and each writer's last event reaches it: nothing else would
// invalidate that writer's collection.
func TestConcurrentPublishers(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	var errs errorLog
	rcl := observedClient(t)
	r := newPeer(t, rcl, db, OnError(errs.add))
	const writers, writes = 4, 150
	colls := make([]string, writers)
	readers := make([]*odm.Collection[Doc], writers)
	ws := make([]*peer, writers)
	for i := range ws {
		colls[i] = fmt.Sprintf("docs%d", i)
		cl := observedClient(t)
		p := newPeer(t, cl, db, Coalesce(0))
		p.coll = cl.Database(db).Collection(colls[i]) // p writes there (see peer.write)
		ws[i] = p
		var err error
		readers[i], err = odm.New[Doc](rcl.Database(db).Collection(colls[i]), odm.WithCache(r.cache))
		require.NoError(t, err)
	}
	read := func(i int) int {
		docs, err := readers[i].FindMany(context.Background(), query.Eq("_id", 1), query.Cached(time.Hour))
		require.NoError(t, err)
		if len(docs) == 0 {
			return 0
		}
		return docs[0].V
	}
	for i := range ws {
		require.Zero(t, read(i), "cached before the writes")
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			for v := 1; v <= writes; v++ {
				w.write(t, v)
			}
		})
	}
	wg.Wait()
	for i := range ws {
		require.Eventually(t, func() bool { return read(i) == writes }, 10*time.Second, time.Millisecond, "writer %d's last version", i)
	}
	s := r.cache.Stats()
	t.Logf("reader: %d remote invalidations; events committed out of order: %d found by a poll's margin, %d by looking up a gap; %d resyncs",
		s.Remote, r.log.late.Load(), r.log.repaired.Load(), s.Resyncs)
	// Under load (a busy CI machine), a read of the log can outlast the
	// liveness bound: the cache then flushes, rightly, and every version
	// was still seen above. What must not happen is a lost event: 300
	// writes are far fewer than the log holds.
	for _, err := range errs.get() {
		assert.NotErrorIs(t, err, ErrEventsLost)
	}
	if s.Resyncs > 0 {
		t.Logf("%d resyncs (counted, not failed: each a read past the liveness bound on a loaded machine): %v", s.Resyncs, errs.get())
	}
}

// TestCursorKilled kills the tailer's cursor on the server: the cache is
// flushed (a stale entry is not served) and it follows again.
func TestCursorKilled(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	var id atomic.Int64
	// Tailing on every server: the cursor is what the test kills.
	la := NewLog(testdb.Client(t).Database(db), MaxAwait(200*time.Millisecond), PollInterval(0))
	la.cursorID = func(c int64) { id.Store(c) }
	cl := observedClient(t)
	a := startPeer(t, cl, db, la)
	a.write(t, 1)
	require.Equal(t, 1, a.read(t))

	// A write the log does not carry (made with the driver, kept off the
	// bus, announced to nobody): only a flush can make a's cache see it.
	handled, _ := cachecore.Handled(context.Background())
	_, err := cl.Database(db).Collection("docs").UpdateOne(handled, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	require.NoError(t, err)
	require.Equal(t, 1, a.read(t), "cached")

	killed := id.Load()
	require.NotZero(t, killed)
	err = cl.Database(db).RunCommand(context.Background(), bson.D{
		{Key: "killCursors", Value: DefaultLogCollection}, {Key: "cursors", Value: bson.A{killed}},
	}).Err()
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.cache.Stats().Resyncs > 0 }, 10*time.Second, 5*time.Millisecond, "the lost cursor flushes the cache")
	require.Eventually(t, func() bool { return a.cache.Stats().Synced && id.Load() != killed }, 10*time.Second, 5*time.Millisecond, "a new cursor follows the log")
	assert.Equal(t, 2, a.read(t), "no stale read after recovery")

	b := newPeer(t, observedClient(t), db)
	b.write(t, 3)
	a.waitFor(t, 3)
}

// TestLogOverflow holds the reader while another process appends more
// events than the capped collection keeps: when it reads on, it notices the
// missing sequence numbers and flushes, so the write whose event was lost
// is not served stale.
func TestLogOverflow(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	db := testdb.DB(t).Name()
	const size = 4096 // the smallest capped collection: about 40 events
	la := NewLog(testdb.Client(t).Database(db), LogSize(size))
	var hold atomic.Bool
	resume := make(chan struct{})
	var a *peer
	la.afterBatch = func() {
		// Hold after the first batch with another process's event.
		if hold.Load() && a.cache.Stats().Remote > 0 {
			<-resume
		}
	}
	a = startPeer(t, observedClient(t), db, la)
	b := newPeer(t, observedClient(t), db, LogSize(size))
	a.write(t, 1)
	require.Equal(t, 1, a.read(t))

	hold.Store(true)
	b.write(t, 2) // its event is read, then the reader holds
	require.Eventually(t, func() bool { return a.cache.Stats().Remote > 0 }, 10*time.Second, time.Millisecond)
	// a re-reads version 2 into its cache while its reader is held.
	require.Equal(t, 2, a.read(t))
	ctx := context.Background()
	for v := 3; v <= 200; v++ { // one event each: far more than the log keeps
		b.write(t, v)
		require.NoError(t, b.log.Flush(ctx))
	}
	require.Equal(t, 2, a.read(t), "stale while the reader is held (the bounded window)")
	dropOldest(t, testdb.Client(t).Database(db).Collection(DefaultLogCollection), 5)
	resyncs := a.cache.Stats().Resyncs
	hold.Store(false)
	close(resume)
	require.Eventually(t, func() bool { return a.cache.Stats().Resyncs > resyncs }, 10*time.Second, time.Millisecond, "the gap flushes the cache")
	assert.Equal(t, 200, a.read(t))
}

// dropOldest deletes all but the newest keep events of the log, as the
// capped collection's own cleanup does when it is full. MongoDB does this on
// insert; the embedded FerretDB never does (its capped cleanup interval is
// unset, see docs/ferretdb.md), so the test does it itself on every server,
// which is a no-op where the server already did.
func dropOldest(t *testing.T, log *mongo.Collection, keep int) {
	t.Helper()
	ctx := context.Background()
	cur, err := log.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetSkip(int64(keep)).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var old []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	require.NoError(t, cur.All(ctx, &old))
	ids := make(bson.A, len(old))
	for i, o := range old {
		ids[i] = o.ID
	}
	if len(ids) > 0 {
		_, err = log.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		require.NoError(t, err)
	}
}

// TestServerRestart kills the server under two processes' readers and
// restarts it: each cache is flushed and serves nothing cached while its
// reader is down, and a write made after the restart reaches the other.
func TestServerRestart(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	srv := testdb.StartServer(t)
	connect := func() *mongo.Client {
		cl, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetServerSelectionTimeout(2 * time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
		return cl
	}
	const db = "coherence_restart"
	a := newPeer(t, connect(), db, MaxAwait(200*time.Millisecond))
	b := newPeer(t, connect(), db, MaxAwait(200*time.Millisecond))
	a.write(t, 1)
	require.Equal(t, 1, a.read(t))
	require.Equal(t, 1, b.read(t))

	srv.Kill()
	require.Eventually(t, func() bool {
		sa, sb := a.cache.Stats(), b.cache.Stats()
		return sa.Resyncs > 0 && sb.Resyncs > 0 && !sa.Synced && !sb.Synced
	}, 10*time.Second, 5*time.Millisecond, "both readers notice the lost server")
	srv.Restart()
	require.Eventually(t, func() bool { return a.cache.Stats().Synced && b.cache.Stats().Synced }, 30*time.Second, 10*time.Millisecond)
	// A write the log does not carry: only the flush makes it visible to
	// the entries both caches held before the kill.
	_, err := connect().Database(db).Collection("docs").UpdateOne(context.Background(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}})
	require.NoError(t, err)
	assert.Equal(t, 2, a.read(t), "no stale read after recovery")
	assert.Equal(t, 2, b.read(t), "no stale read after recovery")
	b.write(t, 3)
	a.waitFor(t, 3)
}

// recordingSink is a cache.Sink that records what a reader reports.
type recordingSink struct {
	invalidated []string
	described   []string // "db.coll" of each descriptor, in order
	descriptors [][]byte
	events      []bson.Raw
	lost        []error
}

func (s *recordingSink) Invalidate(db, coll string) {
	s.invalidated = append(s.invalidated, db+"."+coll)
}
func (s *recordingSink) Described(db, coll string, desc []byte) {
	s.described = append(s.described, db+"."+coll)
	s.descriptors = append(s.descriptors, desc)
}
func (s *recordingSink) ChangeEvent(ev bson.Raw) {
	s.events = append(s.events, ev)
}
func (s *recordingSink) Lost(err error) { s.lost = append(s.lost, err) }
func (s *recordingSink) Synced()        {}

// TestGapLookup gives the reader events out of order: the events a
// publisher numbered before the one read are looked up in the log and
// applied, and a flush happens only for those that are gone.
func TestGapLookup(t *testing.T) {
	db := testdb.DB(t)
	l := NewLog(db)
	ctx := context.Background()
	require.NoError(t, l.ensure(ctx))
	p := bson.NewObjectID()
	ev := func(seq int64, coll string) *event {
		return &event{ID: bson.NewObjectID(), Publisher: p, Seq: seq, NS: []string{"app\x00" + coll}}
	}
	for _, e := range []*event{ev(1, "a"), ev(2, "b"), ev(5, "e")} {
		_, err := l.coll.InsertOne(ctx, e)
		require.NoError(t, err)
	}
	var s recordingSink
	f := &follower{l: l, sink: &s, seen: map[bson.ObjectID]int64{}}

	applied, err := f.apply(ctx, ev(3, "c")) // 1 and 2 were not read
	require.NoError(t, err)
	assert.True(t, applied)
	assert.Equal(t, []string{"app.a", "app.b", "app.c"}, s.invalidated)
	assert.Empty(t, s.lost)
	assert.EqualValues(t, 2, l.repaired.Load())

	applied, err = f.apply(ctx, ev(2, "b")) // read late, after its lookup
	require.NoError(t, err)
	assert.False(t, applied)

	s.invalidated = nil
	_, err = f.apply(ctx, ev(6, "f")) // 4 is not in the log, 5 is
	require.NoError(t, err)
	assert.Equal(t, []string{"app.e", "app.f"}, s.invalidated)
	require.Len(t, s.lost, 1)
	assert.ErrorIs(t, s.lost[0], ErrEventsLost)
	assert.ErrorContains(t, s.lost[0], "1 of events 4..5")

	// The backlog (events from before the reader started) only sets where
	// each publisher's next event must follow.
	s = recordingSink{}
	q := bson.NewObjectID()
	f.baseline(&event{Publisher: q, Seq: 40})
	_, err = f.apply(ctx, &event{Publisher: q, Seq: 41, NS: []string{"app\x00g"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"app.g"}, s.invalidated)
	assert.Empty(t, s.lost)
}

// observedClient is a client of the documented setup: the write observer
// installed, so that raw writes invalidate too, and the Log on the same
// client (TestObserverAndLogOnOneClient).
func observedClient(tb testing.TB) *mongo.Client {
	tb.Helper()
	return testdb.NewClient(tb, options.Client().SetMonitor(cache.Observer(nil)))
}
