package cache

import (
	"context"
	"log/slog"
)

// LogTracer is a Tracer, WriteTracer and SourceTracer that writes what the
// cache does to a log/slog logger: each cached read at debug level (its
// outcome, and, when it was not cached or is under the collection-wide
// rule, why), each write applied at debug level (what it invalidated, by
// rule), a write of unknown outcome and a Source that lost its place at
// warn level, the Source following again at info level, and each event of
// another process with its lag at debug level. Records hold database,
// collection and operation names and counts, never filter values or
// documents: a read's error is logged by its class (ReadEnd.ErrClass), not
// its message, which a server may fill with the query's values. Nothing is
// formatted for a level the logger does not enable.
type LogTracer struct {
	l *slog.Logger
}

// NewLogTracer returns a LogTracer that writes to l (slog.Default() when
// l is nil).
func NewLogTracer(l *slog.Logger) *LogTracer {
	if l == nil {
		l = slog.Default()
	}
	return &LogTracer{l: l}
}

// TraceReadStart implements Tracer; it returns ctx.
func (t *LogTracer) TraceReadStart(ctx context.Context, _ ReadStart) context.Context { return ctx }

// TraceReadEnd implements Tracer: a debug record "databridge: cached read".
func (t *LogTracer) TraceReadEnd(ctx context.Context, r ReadEnd) {
	if !t.l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("db", r.Database), slog.String("collection", r.Collection), slog.String("op", r.Op),
		slog.String("outcome", r.Outcome.String()))
	if r.Reason != ReasonNone {
		attrs = append(attrs, slog.String("reason", r.Reason.String()))
	}
	if r.Outcome == OutcomeMiss {
		attrs = append(attrs, slog.Bool("stored", r.Stored))
	}
	if r.Wide != WideNone {
		attrs = append(attrs, slog.String("collection_wide", r.Wide.String()))
	}
	attrs = append(attrs, slog.Int("docs", r.Docs), slog.Int("bytes", r.Bytes), slog.Duration("decode", r.Decode))
	if r.Err != nil {
		attrs = append(attrs, slog.String("error_class", r.ErrClass)) // not the message: it may quote values
	}
	t.l.LogAttrs(ctx, slog.LevelDebug, "databridge: cached read", attrs...)
}

// TraceWrite implements WriteTracer: a debug record "databridge: write
// applied", or a warn record "databridge: write of unknown outcome".
func (t *LogTracer) TraceWrite(ctx context.Context, w WriteApplied) {
	level, msg := slog.LevelDebug, "databridge: write applied"
	if w.Unknown {
		level, msg = slog.LevelWarn, "databridge: write of unknown outcome: collection not cached until it has surely ended"
	}
	if !t.l.Enabled(ctx, level) {
		return
	}
	t.l.LogAttrs(ctx, level, msg,
		slog.String("db", w.Database), slog.String("collection", w.Collection),
		slog.Bool("remote", w.Remote), slog.Int("statements", w.Statements), slog.Bool("wide", w.Wide),
		slog.Int("by_id", w.InvalidatedByID), slog.Int("by_match", w.InvalidatedByMatch),
		slog.Int("by_path", w.InvalidatedByPath), slog.Int("by_wide", w.InvalidatedWide),
		slog.Int("kept", w.Kept), slog.Int("held", w.Held),
		slog.Bool("pre_image", w.PreImage), slog.Bool("described", w.Described))
}

// TraceSource implements SourceTracer: a warn record when the Source lost
// its place, an info record when it follows again, a debug record for
// each event delivered with its lag.
func (t *LogTracer) TraceSource(ctx context.Context, e SourceEvent) {
	switch e.Kind {
	case SourceSynced:
		t.l.LogAttrs(ctx, slog.LevelInfo, "databridge: cache source following", slog.Duration("down", e.Down))
	case SourceLost:
		t.l.LogAttrs(ctx, slog.LevelWarn, "databridge: cache source lost its place: cache flushed, nothing cached until it follows again",
			slog.Any("error", e.Err))
	case SourceDelivered:
		if t.l.Enabled(ctx, slog.LevelDebug) {
			t.l.LogAttrs(ctx, slog.LevelDebug, "databridge: event delivered", slog.Duration("lag", e.Lag))
		}
	}
}
