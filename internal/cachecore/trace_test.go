package cachecore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// recorder is a Tracer that keeps every record (pure bookkeeping).
type recorder struct {
	mu      sync.Mutex
	reads   []ReadTrace
	writes  []WriteTrace
	sources []SourceTrace
}

type ctxKey struct{}

func (r *recorder) ReadStart(ctx context.Context, tr *ReadTrace) context.Context {
	return context.WithValue(ctx, ctxKey{}, tr.Op)
}

func (r *recorder) ReadEnd(ctx context.Context, tr *ReadTrace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, *tr)
}

func (r *recorder) Write(ctx context.Context, w *WriteTrace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, *w)
}

func (r *recorder) Source(ctx context.Context, s *SourceTrace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources = append(r.sources, *s)
}

func (r *recorder) lastWrite(t *testing.T) WriteTrace {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.writes)
	return r.writes[len(r.writes)-1]
}

// traced runs one cached read through FetchTraced as odm does, and returns
// its record.
func traced(t *testing.T, c *Cache, q Key, load LoadFunc) ReadTrace {
	t.Helper()
	tr := &ReadTrace{DB: q.Database, Coll: q.Collection, Op: "find"}
	ctx := c.Tracer().ReadStart(context.Background(), tr)
	_, err := c.FetchTraced(ctx, q, time.Hour, load, nil, tr)
	tr.Fail(err)
	c.Tracer().ReadEnd(ctx, tr)
	c.Wait()
	return *tr
}

// TestTraceRecords: what each read and write tells the tracer — hit, miss,
// stored or not and why, the collection-wide rule and why, the write's
// invalidations by rule and what it kept — and that the load runs in the
// context ReadStart returned. Pure code: documents are built here.
func TestTraceRecords(t *testing.T) {
	rec := &recorder{}
	c := newTestCache(t, Config{Tracer: rec})
	doc := func(id, v int) bson.Raw { return mustRaw(t, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: v}}) }
	load := func(ctx context.Context) ([]bson.Raw, error) {
		assert.Equal(t, "find", ctx.Value(ctxKey{}), "the load runs in ReadStart's context")
		observed(ctx)
		return []bson.Raw{doc(1, 1), doc(2, 1)}, nil
	}
	byV := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "v", Value: 1}}, Projection: bson.D{{Key: "v", Value: 1}}, Simple: true, Shape: simpleShape}

	r := traced(t, c, byV, load)
	assert.Equal(t, OutcomeMiss, r.Outcome)
	assert.True(t, r.Stored)
	assert.Equal(t, WhyNone, r.Why)
	assert.Equal(t, WideNone, r.Wide)
	assert.Equal(t, 2, r.Docs)
	assert.Equal(t, len(doc(1, 1))+len(doc(2, 1)), r.Bytes)

	r = traced(t, c, byV, load)
	assert.Equal(t, OutcomeHit, r.Outcome)
	assert.Equal(t, 2, r.Docs)

	skipped := byV
	skipped.Skip = 1
	r = traced(t, c, skipped, load)
	assert.Equal(t, OutcomeMiss, r.Outcome)
	assert.Equal(t, WideSkip, r.Wide, "a skip is outside the rules")
	assert.Equal(t, WideSkip, traced(t, c, skipped, load).Wide, "and a hit says so too")
	assert.EqualValues(t, 1, c.Stats().WideLoads[WideSkip])

	unsorted := byV
	unsorted.Filter, unsorted.Limit, unsorted.Sort = bson.D{}, 2, bson.D{{Key: "v", Value: 1}}
	assert.Equal(t, WideSort, traced(t, c, unsorted, load).Wide, "a full limit cut by a sort that is not total")

	// A $set of a field byV's filter does not read, on a document it does
	// not hold, keeps it; the skip and the unsorted limit go with any write.
	Apply(Change{DB: "db", Coll: "c", Stmts: []Stmt{upd(t, 3, setOp(bson.E{Key: "w", Value: 2}))}})
	w := rec.lastWrite(t)
	assert.Equal(t, 1, w.Statements)
	assert.Equal(t, 2, w.ByWide, "the skip and the unsorted limit")
	assert.Zero(t, w.ByID+w.ByMatch+w.ByPath, "byV is kept")
	assert.False(t, w.Remote)
	assert.Equal(t, OutcomeHit, traced(t, c, byV, load).Outcome)

	Apply(Change{DB: "db", Coll: "c", Stmts: []Stmt{upd(t, 2, setOp(bson.E{Key: "v", Value: 3}))}})
	w = rec.lastWrite(t)
	assert.Equal(t, 1, w.ByID+w.ByMatch+w.ByPath, "the change of v leaves byV: invalidated by a rule")
	assert.Zero(t, w.ByWide)

	failing := func(ctx context.Context) ([]bson.Raw, error) { return nil, errors.New("boom") }
	r = traced(t, c, byV, failing)
	assert.Equal(t, OutcomeMiss, r.Outcome)
	assert.Equal(t, WhyError, r.Why)
	assert.False(t, r.Stored)
	assert.EqualError(t, r.Err, "boom")

	unobserved := func(ctx context.Context) ([]bson.Raw, error) { return []bson.Raw{doc(1, 1)}, nil }
	r = traced(t, c, byV, unobserved)
	assert.Equal(t, WhyUnobserved, r.Why)
	assert.False(t, r.Stored)

	// A write of unknown outcome invalidates the collection: its trace
	// counts what Stats counts (a stranger found it counted none).
	assert.Equal(t, OutcomeMiss, traced(t, c, byV, load).Outcome)
	before := c.Stats().InvalidatedWide
	Apply(Change{DB: "db", Coll: "c", Unknown: true, Deadline: time.Now().Add(time.Hour)})
	w = rec.lastWrite(t)
	assert.True(t, w.Unknown)
	assert.Equal(t, int(c.Stats().InvalidatedWide-before), w.ByWide)
	assert.Positive(t, w.ByWide)
	r = traced(t, c, byV, load)
	assert.Equal(t, OutcomeBypassed, r.Outcome)
	assert.Equal(t, WhyUnsettled, r.Why)
}

// TestTraceJoin: a miss that joins another's load says so, and carries the
// leader's context (a tracer links to its span). Pure code.
func TestTraceJoin(t *testing.T) {
	rec := &recorder{}
	c := newTestCache(t, Config{Tracer: rec})
	q := Key{Database: "db", Collection: "c", Filter: bson.D{{Key: "_id", Value: 1}}, Simple: true, Shape: simpleShape}
	release := make(chan struct{})
	load := func(ctx context.Context) ([]bson.Raw, error) {
		observed(ctx)
		<-release
		return []bson.Raw{mustRaw(t, bson.D{{Key: "_id", Value: 1}})}, nil
	}
	joining := make(chan struct{})
	c.joining = func() { close(joining) }
	type leaderKey struct{}
	leader := context.WithValue(context.Background(), leaderKey{}, "leader")
	done := make(chan ReadTrace)
	go func() {
		tr := &ReadTrace{Op: "find"}
		_, err := c.FetchTraced(leader, q, time.Hour, load, nil, tr)
		assert.NoError(t, err)
		done <- *tr
	}()
	joined := make(chan ReadTrace)
	go func() {
		// Starts once the leader's flight is in the map: its load blocks.
		for {
			c.mu.Lock()
			n := len(c.flights)
			c.mu.Unlock()
			if n == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		tr := &ReadTrace{Op: "find"}
		_, err := c.FetchTraced(context.Background(), q, time.Hour, load, nil, tr)
		assert.NoError(t, err)
		joined <- *tr
	}()
	<-joining
	close(release)
	l, j := <-done, <-joined
	assert.Equal(t, OutcomeMiss, l.Outcome)
	assert.Equal(t, OutcomeJoined, j.Outcome)
	require.NotNil(t, j.Leader)
	assert.Equal(t, "leader", j.Leader.Value(leaderKey{}), "the joiner carries the leader's context")
	assert.Equal(t, 1, j.Docs)
}

// TestTraceSource: the Source's losses and recoveries reach the tracer,
// with the reason and how long the cache was not following. Pure code.
func TestTraceSource(t *testing.T) {
	rec := &recorder{}
	src := &stubSource{sinks: make(chan Sink, 1)}
	c := newTestCache(t, Config{Tracer: rec, Source: src})
	sink := <-src.sinks
	sink.Synced()
	reason := errors.New("log wrapped")
	sink.Lost(reason)
	time.Sleep(2 * time.Millisecond)
	sink.Synced()
	sink.Invalidate("db", "c")
	sink.(interface{ Delayed(time.Duration) }).Delayed(42 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.sources, 4)
	assert.Equal(t, SourceDelivered, rec.sources[3].Kind)
	assert.Equal(t, 42*time.Millisecond, rec.sources[3].Lag)
	assert.Equal(t, SourceSynced, rec.sources[0].Kind)
	assert.Zero(t, rec.sources[0].Down, "the first Synced follows no loss")
	assert.Equal(t, SourceLost, rec.sources[1].Kind)
	assert.Same(t, reason, rec.sources[1].Err)
	assert.GreaterOrEqual(t, rec.sources[2].Down, 2*time.Millisecond)
	require.Len(t, rec.writes, 1)
	assert.True(t, rec.writes[0].Remote)
	assert.True(t, rec.writes[0].Wide, "an event by name is collection-wide")
	_ = c
}

// stubSource hands its sink to the test and publishes nowhere.
type stubSource struct{ sinks chan Sink }

func (s *stubSource) Publish(db, coll string) {}

func (s *stubSource) Run(ctx context.Context, sink Sink) {
	s.sinks <- sink
	<-ctx.Done()
}
