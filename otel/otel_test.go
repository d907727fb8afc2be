package otel_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	dbotel "github.com/databridge-go/databridge/otel"
	"github.com/databridge-go/databridge/query"
)

// commandSpans is a driver command monitor that starts a span for each
// command in the context the driver hands it and ends it with the reply,
// as otelmongo's monitor does. otelmongo for driver v2 is not served by
// the module proxy this project builds from, so the test carries this
// stand-in: what it checks is that the driver's command runs in the
// context databridge gives the load, which is what makes otelmongo's span
// nest under the read's.
func commandSpans(tp trace.TracerProvider) *event.CommandMonitor {
	tr := tp.Tracer("commands")
	var mu sync.Mutex
	spans := map[int64]trace.Span{}
	end := func(id int64) {
		mu.Lock()
		s := spans[id]
		delete(spans, id)
		mu.Unlock()
		if s != nil {
			s.End()
		}
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			_, s := tr.Start(ctx, e.CommandName, trace.WithSpanKind(trace.SpanKindClient))
			mu.Lock()
			spans[e.RequestID] = s
			mu.Unlock()
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { end(e.RequestID) },
	}
}

type User struct {
	ID   int    `bson:"_id"`
	Team string `bson:"team"`
	Age  int    `bson:"age"`
}

func attr(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, a := range s.Attributes {
		if a.Key == k {
			return a.Value
		}
	}
	return attribute.Value{}
}

// TestSpansAndMetrics: with the SDK's in-memory exporter and a manual
// metric reader, against a real server: a miss that leads the load holds
// the driver's find span; a hit is one span with outcome hit and no
// command; a write records its invalidations by rule on the writer's span;
// the hit ratio moves. Spans carry no filter value.
func TestSpansAndMetrics(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	c, err := cache.New(cache.Config{Tracer: dbotel.NewTracer(dbotel.WithTracerProvider(tp))})
	require.NoError(t, err)
	defer c.Close()
	reg, err := dbotel.RegisterMetrics(c, dbotel.WithMeterProvider(mp), dbotel.WithAttributes(attribute.String("cache", "users")))
	require.NoError(t, err)
	defer func() { assert.NoError(t, reg.Unregister()) }()

	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(commandSpans(tp))))
	coll := testdb.DBOn(t, cl).Collection("users")
	users, err := odm.New[User](coll, odm.WithCache(c))
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 4 {
		require.NoError(t, users.Save(ctx, &User{ID: i, Team: "secret-team", Age: 30 + i}))
	}
	exp.Reset()

	cached := query.Cached(time.Minute)
	_, err = users.FindMany(ctx, query.Eq("team", "secret-team"), cached)
	require.NoError(t, err)
	c.Stats() // (ristretto's set was waited for on the miss path)
	spans := exp.GetSpans()
	var read, find tracetest.SpanStub
	for _, s := range spans {
		switch s.Name {
		case "cached find users":
			read = s
		case "find":
			find = s
		}
	}
	require.NotEmpty(t, read.Name, "the read has a span: %v", spans)
	require.NotEmpty(t, find.Name, "the driver's find has a span")
	assert.Equal(t, read.SpanContext.SpanID(), find.Parent.SpanID(), "the driver's find is a child of the read's span")
	assert.Equal(t, "miss", attr(read, dbotel.KeyOutcome).AsString())
	assert.True(t, attr(read, dbotel.KeyStored).AsBool())
	assert.Equal(t, "precise", attr(read, dbotel.KeyRule).AsString())
	assert.Equal(t, "mongodb", attr(read, "db.system.name").AsString())
	assert.Equal(t, "users", attr(read, "db.collection.name").AsString())
	assert.EqualValues(t, 4, attr(read, "db.response.returned_rows").AsInt64())
	for _, s := range spans {
		for _, a := range s.Attributes {
			assert.NotContains(t, a.Value.Emit(), "secret-team", "no filter value in span %s", s.Name)
		}
	}

	exp.Reset()
	for range 3 { // until a hit (ristretto may refuse a first set)
		_, err = users.FindMany(ctx, query.Eq("team", "secret-team"), cached)
		require.NoError(t, err)
		if c.Stats().Hits > 0 {
			break
		}
	}
	spans = exp.GetSpans()
	last := spans[len(spans)-1]
	assert.Equal(t, "cached find users", last.Name)
	assert.Equal(t, "hit", attr(last, dbotel.KeyOutcome).AsString())
	assert.NotContains(t, names(spans[len(spans)-1:]), "find", "a hit sends no command")

	// The hit ratio instrument moves.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	assert.Positive(t, gauge(t, rm, "databridge.cache.hit_ratio"))

	// A write: its invalidations by rule on the writer's span.
	exp.Reset()
	wctx, span := tp.Tracer("app").Start(ctx, "request")
	_, err = users.UpdateOne(wctx, query.Eq("_id", 1), bson.D{{Key: "$set", Value: bson.D{{Key: "team", Value: "other"}}}})
	require.NoError(t, err)
	span.End()
	var req tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "request" {
			req = s
		}
	}
	require.Len(t, req.Events, 1, "one invalidate event on the request's span")
	ev := req.Events[0]
	assert.Equal(t, "databridge.cache.invalidate", ev.Name)
	got := map[attribute.Key]attribute.Value{}
	for _, a := range ev.Attributes {
		got[a.Key] = a.Value
	}
	assert.EqualValues(t, 1, got["databridge.cache.invalidated.id"].AsInt64()+got["databridge.cache.invalidated.match"].AsInt64()+
		got["databridge.cache.invalidated.path"].AsInt64(), "the list by team, by a rule")
	assert.EqualValues(t, 0, got["databridge.cache.invalidated.wide"].AsInt64())

	require.NoError(t, reader.Collect(ctx, &rm))
	byRule := sum(t, rm, "databridge.cache.invalidations")
	assert.EqualValues(t, 1, byRule["rule=id"]+byRule["rule=match"]+byRule["rule=path"])
	reads := sum(t, rm, "databridge.cache.reads")
	assert.Positive(t, reads["outcome=hit"])

	// A failed read: status Error and error.type, never the message, which
	// quotes the value here.
	exp.Reset()
	_, err = users.FindMany(ctx, bson.D{{Key: "team", Value: bson.D{{Key: "$type", Value: "secret-team"}}}}, cached)
	require.ErrorContains(t, err, "secret-team")
	failed := exp.GetSpans()[len(exp.GetSpans())-1]
	assert.Equal(t, "cached find users", failed.Name)
	assert.Equal(t, codes.Error, failed.Status.Code)
	assert.Equal(t, "BadValue", attr(failed, "error.type").AsString())
	assert.NotContains(t, failed.Status.Description, "secret-team")
	for _, a := range failed.Attributes {
		assert.NotContains(t, a.Value.Emit(), "secret-team")
	}
	assert.Empty(t, failed.Events, "no exception event with the message")
}

// TestJoinedReadLinksToTheLoad: a read that waited for another's load has
// a span of its own, with a link to the loading read's span (which owns
// the driver's command), and no command of its own.
func TestJoinedReadLinksToTheLoad(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	c, err := cache.New(cache.Config{Tracer: dbotel.NewTracer(dbotel.WithTracerProvider(tp))})
	require.NoError(t, err)
	defer c.Close()
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(commandSpans(tp))))
	coll := testdb.DBOn(t, cl).Collection("users")
	users, err := odm.New[User](coll, odm.WithCache(c))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, users.Save(ctx, &User{ID: 1, Team: "a"}))
	// Concurrent misses of one query until one joins another's load (the
	// dev server takes milliseconds per find: they overlap often).
	for round := 0; round < 50; round++ {
		exp.Reset()
		c.InvalidateAll()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_, err := users.FindMany(ctx, query.Eq("team", "a"), query.Cached(time.Minute))
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		spans := exp.GetSpans()
		for _, s := range spans {
			if attr(s, dbotel.KeyOutcome).AsString() != "joined" {
				continue
			}
			require.Len(t, s.Links, 1)
			var leader tracetest.SpanStub
			for _, l := range spans {
				if l.SpanContext.SpanID() == s.Links[0].SpanContext.SpanID() {
					leader = l
				}
			}
			assert.Equal(t, "miss", attr(leader, dbotel.KeyOutcome).AsString(), "the link is to the loading read")
			for _, f := range spans {
				if f.Name == "find" {
					assert.NotEqual(t, s.SpanContext.SpanID(), f.Parent.SpanID(), "a joined read sends no command")
				}
			}
			return
		}
	}
	t.Skip("NOT RUN: no two reads overlapped in 50 rounds of 4 (a very slow or very fast machine); cachecore.TestTraceJoin checks the join without a server")
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func gauge(t *testing.T, rm metricdata.ResourceMetrics, name string) float64 {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				g, ok := m.Data.(metricdata.Gauge[float64])
				require.True(t, ok, "%s is a float64 gauge", name)
				require.Len(t, g.DataPoints, 1)
				return g.DataPoints[0].Value
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// sum returns the data points of the int64 sum name, by their attributes
// other than WithAttributes' (k=v).
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is an int64 sum", name)
			for _, dp := range s.DataPoints {
				k := ""
				for _, kv := range dp.Attributes.ToSlice() {
					if kv.Key != "cache" {
						k = string(kv.Key) + "=" + kv.Value.Emit()
					}
				}
				out[k] = dp.Value
			}
			return out
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// TestPropagationHistogram: each delivered event's lag is recorded in
// databridge.cache.propagation (seconds). Pure: the record is made here.
func TestPropagationHistogram(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	tr := dbotel.NewTracer(dbotel.WithMeterProvider(mp))
	tr.TraceSource(context.Background(), cache.SourceEvent{Kind: cache.SourceDelivered, Lag: 30 * time.Millisecond})
	tr.TraceSource(context.Background(), cache.SourceEvent{Kind: cache.SourceSynced})
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	require.Len(t, rm.ScopeMetrics[0].Metrics, 1)
	m := rm.ScopeMetrics[0].Metrics[0]
	assert.Equal(t, "databridge.cache.propagation", m.Name)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, h.DataPoints, 1)
	assert.EqualValues(t, 1, h.DataPoints[0].Count, "one delivered event; Synced is not a lag")
	assert.InDelta(t, 0.030, h.DataPoints[0].Sum, 1e-9)
}
