package otel_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	dbotel "github.com/databridge-go/databridge/otel"
	"github.com/databridge-go/databridge/query"
)

// BenchmarkTracedHit is a cached FindMany hit of 10 small documents by
// the cache's tracer: none; the OpenTelemetry Tracer with an SDK that
// samples and records every span (no exporter: the recording cost) or
// samples none; the LogTracer at info level (reads are debug: not
// formatted) and at debug level to io.Discard.
//
//	cd otel && go test -run '^$' -bench BenchmarkTracedHit -count 6 | benchstat -col /tracer -
func BenchmarkTracedHit(b *testing.B) {
	coll := testdb.DB(b).Collection("bench")
	ctx := context.Background()
	for i := range 10 {
		if _, err := coll.InsertOne(ctx, benchdata.NewSmall(i)); err != nil {
			b.Fatal(err)
		}
	}
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = sampled.Shutdown(ctx); _ = unsampled.Shutdown(ctx) }()
	discard := func(l slog.Level) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: l}))
	}
	for _, tt := range []struct {
		name string
		t    cache.Tracer
	}{
		{"none", nil},
		{"otel-sampled", dbotel.NewTracer(dbotel.WithTracerProvider(sampled))},
		{"otel-unsampled", dbotel.NewTracer(dbotel.WithTracerProvider(unsampled))},
		{"slog-info", cache.NewLogTracer(discard(slog.LevelInfo))},
		{"slog-debug", cache.NewLogTracer(discard(slog.LevelDebug))},
	} {
		b.Run("tracer="+tt.name, func(b *testing.B) {
			c, err := cache.New(cache.Config{Tracer: tt.t})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			h, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
			if err != nil {
				b.Fatal(err)
			}
			filter := bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 0}}}}
			for c.Stats().Hits == 0 {
				if _, err := h.FindMany(ctx, filter, query.Cached(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.FindMany(ctx, filter, query.Cached(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
