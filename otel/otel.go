package otel

import (
	"context"

	global "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/databridge-go/databridge/cache"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/databridge-go/databridge/otel"

// Option configures NewTracer and RegisterMetrics.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp    trace.TracerProvider
	mp    metric.MeterProvider
	attrs []attribute.KeyValue
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		o.apply(c)
	}
	if c.tp == nil {
		c.tp = global.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = global.GetMeterProvider()
	}
	return c
}

// WithTracerProvider sets the TracerProvider of NewTracer's spans.
// Default: the global one (go.opentelemetry.io/otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the MeterProvider of RegisterMetrics'
// instruments. Default: the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithAttributes adds attributes to every span, event and measurement
// (for example, a name for each of several caches).
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return optionFunc(func(c *config) { c.attrs = append(c.attrs, attrs...) })
}

// Tracer is a cache.Tracer, cache.WriteTracer and cache.SourceTracer that
// makes OpenTelemetry spans and span events (see the package
// documentation), and records how long other processes' events took to
// arrive in the histogram databridge.cache.propagation (seconds; with a
// coherence.Log, whose events say when their writes were published). Set
// it in cache.Config.Tracer. The Source's losses and recoveries have no
// span: they are measured (RegisterMetrics: databridge.cache.resyncs,
// databridge.cache.synced).
type Tracer struct {
	t     trace.Tracer
	attrs []attribute.KeyValue
	lag   metric.Float64Histogram
	opt   metric.RecordOption
}

var (
	_ cache.Tracer       = (*Tracer)(nil)
	_ cache.WriteTracer  = (*Tracer)(nil)
	_ cache.SourceTracer = (*Tracer)(nil)
)

// NewTracer returns a Tracer. Its spans go to WithTracerProvider's
// provider, its propagation histogram to WithMeterProvider's (default:
// the global ones).
func NewTracer(opts ...Option) *Tracer {
	c := newConfig(opts)
	t := &Tracer{t: c.tp.Tracer(ScopeName), attrs: c.attrs, opt: metric.WithAttributes(c.attrs...)}
	// On an error (none for this valid name) no lag is recorded.
	lag, err := c.mp.Meter(ScopeName).Float64Histogram("databridge.cache.propagation", metric.WithUnit("s"),
		metric.WithDescription("From a write's publication by another process to its event's delivery here."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err == nil {
		t.lag = lag
	}
	return t
}

// Attribute keys: the semantic conventions' for databases, and
// databridge's own.
const (
	keySystem     = attribute.Key("db.system.name")
	keyNamespace  = attribute.Key("db.namespace")
	keyCollection = attribute.Key("db.collection.name")
	keyOperation  = attribute.Key("db.operation.name")
	keyRows       = attribute.Key("db.response.returned_rows")
	keyErrorType  = attribute.Key("error.type")

	KeyOutcome    = attribute.Key("databridge.cache.outcome")     // hit, miss, joined, bypassed
	KeyReason     = attribute.Key("databridge.cache.reason")      // why bypassed or not stored (cache.Reason)
	KeyStored     = attribute.Key("databridge.cache.stored")      // a miss's result was stored
	KeyRule       = attribute.Key("databridge.cache.rule")        // precise, collection_wide; on events: id, match, path, wide
	KeyWideReason = attribute.Key("databridge.cache.wide_reason") // why collection-wide (cache.WideReason)
	KeyBytes      = attribute.Key("databridge.cache.bytes")       // the result's raw BSON bytes
	KeyDecode     = attribute.Key("databridge.decode.duration")   // seconds spent decoding the result
)

// TraceReadStart implements cache.Tracer: it starts the read's span. Its
// attributes are set once the span is known to record: a read whose span
// is not sampled pays for the span only.
func (t *Tracer) TraceReadStart(ctx context.Context, r cache.ReadStart) context.Context {
	ctx, span := t.t.Start(ctx, "cached "+r.Op+" "+r.Collection, internalKind)
	if span.IsRecording() {
		span.SetAttributes(keySystem.String("mongodb"), keyNamespace.String(r.Database),
			keyCollection.String(r.Collection), keyOperation.String(r.Op))
		span.SetAttributes(t.attrs...)
	}
	return ctx
}

var internalKind = trace.WithSpanKind(trace.SpanKindInternal)

// TraceReadEnd implements cache.Tracer: it ends the read's span.
func (t *Tracer) TraceReadEnd(ctx context.Context, r cache.ReadEnd) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, KeyOutcome.String(r.Outcome.String()), keyRows.Int(r.Docs), KeyBytes.Int(r.Bytes),
		KeyDecode.Float64(r.Decode.Seconds()))
	if r.Reason != cache.ReasonNone {
		attrs = append(attrs, KeyReason.String(r.Reason.String()))
	}
	if r.Outcome == cache.OutcomeMiss {
		attrs = append(attrs, KeyStored.Bool(r.Stored))
	}
	if r.Outcome != cache.OutcomeBypassed && r.Outcome != cache.OutcomeNone && r.Err == nil {
		// (A failed read has no result: no rule to name.)
		if r.Wide == cache.WideNone {
			attrs = append(attrs, KeyRule.String("precise"))
		} else {
			attrs = append(attrs, KeyRule.String("collection_wide"), KeyWideReason.String(r.Wide.String()))
		}
	}
	span.SetAttributes(attrs...)
	if r.Leader != nil {
		if sc := trace.SpanContextFromContext(r.Leader); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("databridge.link", "load")}})
		}
	}
	if r.Err != nil {
		// Its class, never its message: a server error can quote the
		// query's values.
		span.SetAttributes(keyErrorType.String(r.ErrClass))
		span.SetStatus(codes.Error, r.ErrClass)
	}
	span.End()
}

// TraceWrite implements cache.WriteTracer: an event
// "databridge.cache.invalidate" on the writer's current span, if it is
// recording (another process's write has no span here: it is counted in
// the metrics, cache.Stats.Remote).
func (t *Tracer) TraceWrite(ctx context.Context, w cache.WriteApplied) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		keyNamespace.String(w.Database), keyCollection.String(w.Collection),
		attribute.Int("databridge.cache.invalidated.id", w.InvalidatedByID),
		attribute.Int("databridge.cache.invalidated.match", w.InvalidatedByMatch),
		attribute.Int("databridge.cache.invalidated.path", w.InvalidatedByPath),
		attribute.Int("databridge.cache.invalidated.wide", w.InvalidatedWide),
		attribute.Int("databridge.cache.kept", w.Kept),
		attribute.Int("databridge.cache.held", w.Held),
		attribute.Int("databridge.cache.statements", w.Statements),
		attribute.Bool("databridge.cache.wide", w.Wide),
		attribute.Bool("databridge.cache.unknown_outcome", w.Unknown),
		attribute.Bool("databridge.cache.pre_image", w.PreImage),
		attribute.Bool("databridge.cache.remote", w.Remote),
	}
	span.AddEvent("databridge.cache.invalidate", trace.WithAttributes(append(attrs, t.attrs...)...))
}

// TraceSource implements cache.SourceTracer: it records each delivered
// event's lag in databridge.cache.propagation.
func (t *Tracer) TraceSource(ctx context.Context, e cache.SourceEvent) {
	if e.Kind == cache.SourceDelivered && t.lag != nil {
		t.lag.Record(ctx, e.Lag.Seconds(), t.opt)
	}
}
