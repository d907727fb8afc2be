package odm_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// hitAllocs is what a cached FindMany hit of 10 small documents with a
// bson.D filter allocates (AllocsPerRun), measured on 48ac17e, the commit
// before tracing: with no tracer, tracing must add nothing.
const hitAllocs = 5

// TestCachedHitAllocations: the hit path with no tracer allocates what it
// did before tracers existed.
func TestCachedHitAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("NOT RUN under -race (its instrumentation allocates, 6-7 times here); make test runs it without -race")
	}
	allocs := hitAllocations(t, hitsColl(t), nil)
	assert.LessOrEqual(t, allocs, float64(hitAllocs), "a hit with no tracer allocates what it did before tracers")
	t.Logf("a hit allocates %v times", allocs)
}

// hitsColl is a collection of 10 small documents.
func hitsColl(t *testing.T) *mongo.Collection {
	t.Helper()
	coll := testdb.DB(t).Collection("hits")
	for i := range 10 {
		_, err := coll.InsertOne(context.Background(), benchdata.NewSmall(i))
		require.NoError(t, err)
	}
	return coll
}

// hitAllocations is what a cached FindMany hit of coll's documents
// allocates through a cache with tracer tr (AllocsPerRun).
func hitAllocations(t *testing.T, coll *mongo.Collection, tr cache.Tracer) float64 {
	t.Helper()
	ctx := context.Background()
	c, err := cache.New(cache.Config{Tracer: tr})
	require.NoError(t, err)
	defer c.Close()
	h, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
	require.NoError(t, err)
	filter := bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 0}}}}
	cached := query.Cached(time.Hour)
	for c.Stats().Hits == 0 { // until stored (ristretto may refuse a first set)
		_, err := h.FindMany(ctx, filter, cached)
		require.NoError(t, err)
	}
	hits := c.Stats().Hits
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := h.FindMany(ctx, filter, cached); err != nil {
			t.Error(err)
		}
	})
	require.Equal(t, hits+101, c.Stats().Hits, "every read measured was a hit")
	return allocs
}

// recorder is a cache.Tracer, WriteTracer and SourceTracer that keeps
// every record.
type recorder struct {
	mu     sync.Mutex
	reads  []cache.ReadEnd
	writes []cache.WriteApplied
	ctxs   []context.Context // each write's context
}

func (r *recorder) TraceReadStart(ctx context.Context, _ cache.ReadStart) context.Context { return ctx }

func (r *recorder) TraceReadEnd(_ context.Context, e cache.ReadEnd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, e)
}

func (r *recorder) TraceWrite(ctx context.Context, w cache.WriteApplied) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, w)
	r.ctxs = append(r.ctxs, ctx)
}

func (r *recorder) lastRead(t *testing.T) cache.ReadEnd {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.reads)
	return r.reads[len(r.reads)-1]
}

// TestTracerSeesReadsAndWrites: through a real server, every cached read
// shape reaches the tracer with its outcome, and every write with what it
// invalidated, in the writer's context: odm's (the caller's) and a raw
// driver write's (the driver's monitor passes the operation's context).
func TestTracerSeesReadsAndWrites(t *testing.T) {
	rec := &recorder{}
	c, err := cache.New(cache.Config{Tracer: rec})
	require.NoError(t, err)
	defer c.Close()
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	coll := testdb.DBOn(t, cl).Collection("traced")
	h, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
	require.NoError(t, err)
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "caller")
	for i := range 5 {
		u := benchdata.NewSmall(i)
		require.NoError(t, h.Save(ctx, &u))
	}
	cached := query.Cached(time.Hour)
	byAge := query.Gte("age", 0)

	_, err = h.FindMany(ctx, byAge, cached)
	require.NoError(t, err)
	r := rec.lastRead(t)
	assert.Equal(t, cache.OutcomeMiss, r.Outcome)
	assert.Equal(t, "find", r.Op)
	assert.Equal(t, "traced", r.Collection)
	assert.Equal(t, 5, r.Docs)
	assert.Positive(t, r.Bytes)
	for c.Stats().Hits == 0 {
		_, err = h.FindMany(ctx, byAge, cached)
		require.NoError(t, err)
	}
	r = rec.lastRead(t)
	assert.Equal(t, cache.OutcomeHit, r.Outcome)
	assert.Positive(t, r.Decode, "decoding (a copy of the memoized values) is timed")

	_, err = h.Count(ctx, byAge, cached)
	require.NoError(t, err)
	assert.Equal(t, "count", rec.lastRead(t).Op)
	_, err = odm.Aggregate[bson.M](ctx, h, bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "age", Value: 1}}}}}, cached)
	require.NoError(t, err)
	assert.Equal(t, "aggregate", rec.lastRead(t).Op)
	_, err = h.FindMany(ctx, byAge, cached, query.Skip(1))
	require.NoError(t, err)
	assert.Equal(t, cache.WideSkip, rec.lastRead(t).Wide)
	assert.EqualValues(t, 1, c.Stats().WideLoads[cache.WideSkip])

	// An odm write, in the caller's context.
	_, err = h.UpdateOne(ctx, query.Eq("_id", benchdata.NewSmall(1).ID), bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: -1}}}})
	require.NoError(t, err)
	rec.mu.Lock()
	require.NotEmpty(t, rec.writes)
	w, wctx := rec.writes[len(rec.writes)-1], rec.ctxs[len(rec.ctxs)-1]
	rec.mu.Unlock()
	assert.Equal(t, "caller", wctx.Value(key{}), "the write's trace has the writer's context")
	assert.Positive(t, w.Invalidated(), "the find by age held document 1")
	assert.Positive(t, w.InvalidatedWide, "the skip's entry, at least")

	// A raw driver write, seen by the observer.
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: benchdata.NewSmall(2).ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "age", Value: -2}}}})
	require.NoError(t, err)
	rec.mu.Lock()
	w, wctx = rec.writes[len(rec.writes)-1], rec.ctxs[len(rec.ctxs)-1]
	rec.mu.Unlock()
	assert.Equal(t, 1, w.Statements)
	assert.Equal(t, "caller", wctx.Value(key{}), "a raw write's trace has the operation's context")
}

// TestLogTracer: at debug level the log says why a read was not cached
// precisely; at info level reads are not logged (and nothing is
// formatted for them).
func TestLogTracer(t *testing.T) {
	var buf bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
	c, err := cache.New(cache.Config{Tracer: cache.NewLogTracer(logger)})
	require.NoError(t, err)
	defer c.Close()
	coll := testdb.DB(t).Collection("logged")
	h, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
	require.NoError(t, err)
	ctx := context.Background()
	u := benchdata.NewSmall(1)
	require.NoError(t, h.Save(ctx, &u))
	_, err = h.FindMany(ctx, nil, query.Cached(time.Hour), query.Limit(1), query.Sort(bson.D{{Key: "age", Value: 1}}))
	require.NoError(t, err)
	out := buf.String()
	assert.Contains(t, out, `msg="databridge: write applied" db=`)
	assert.Contains(t, out, "collection=logged op=find outcome=miss stored=true collection_wide=sort_not_total docs=1")
	assert.NotContains(t, out, u.Name, "no document values in the log")

	// A failed read: logged by its error's class, never its message, which
	// quotes the value here (the server: "Unknown type name alias: secret").
	buf.Reset()
	_, err = h.FindMany(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$type", Value: "secret"}}}}, query.Cached(time.Hour))
	require.ErrorContains(t, err, "secret", "the server's message quotes the value")
	out = buf.String()
	assert.Contains(t, out, "error_class=BadValue")
	assert.NotContains(t, out, "secret", "no filter value in the log, even from an error")

	buf.Reset()
	level.Set(slog.LevelInfo)
	_, err = h.FindMany(ctx, nil, query.Cached(time.Hour), query.Limit(1), query.Sort(bson.D{{Key: "age", Value: 1}}))
	require.NoError(t, err)
	assert.Empty(t, buf.String())
}

// nopTracer records nothing: what tracing itself costs a hit.
type nopTracer struct{}

func (nopTracer) TraceReadStart(ctx context.Context, _ cache.ReadStart) context.Context { return ctx }
func (nopTracer) TraceReadEnd(context.Context, cache.ReadEnd)                           {}

// tracedHitAllocs is what a traced hit allocates beyond an untraced one:
// the read's record. (7a5a730 made it 4: the targets of errors.As in the
// error's class escaped on every read, with or without an error.)
const tracedHitAllocs = 1

// TestTracedHitAllocations: a tracer that does nothing costs a hit one
// allocation, its record.
func TestTracedHitAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("NOT RUN under -race (its instrumentation allocates); make test runs it without -race")
	}
	coll := hitsColl(t)
	without, with := hitAllocations(t, coll, nil), hitAllocations(t, coll, nopTracer{})
	assert.LessOrEqual(t, with-without, float64(tracedHitAllocs), "%v allocations traced, %v not", with, without)
}
