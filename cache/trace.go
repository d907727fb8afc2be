package cache

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cursor"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/query"
)

// Tracer sees every cached read (a find, count or aggregation with
// query.Cached through a handle that has this cache): TraceReadStart when
// it begins, TraceReadEnd when its values are decoded. Set it in
// Config.Tracer. The context TraceReadStart returns is the one the read
// runs in: a miss's load sends its driver commands with it, so a span it
// holds is the parent of the driver's command spans (otelmongo's). Reads
// without query.Cached are not traced here (the driver's command monitor
// sees each of them).
//
// A Tracer that also implements WriteTracer sees every write applied to the
// cache, and one that implements SourceTracer the Source's losses and
// recoveries. With no Tracer the cache costs nothing more: the hit path
// allocates nothing for it. Tracer methods run on the read's or the
// write's goroutine: they must not block, and must not read or write
// through the cache. Package cache's LogTracer is one; the module
// github.com/databridge-go/databridge/otel is another (OpenTelemetry
// spans and metrics). The shape is pgx's QueryTracer's.
type Tracer interface {
	TraceReadStart(ctx context.Context, r ReadStart) context.Context
	TraceReadEnd(ctx context.Context, r ReadEnd)
}

// WriteTracer is a Tracer that sees every write applied to the cache:
// this process's (through odm or the write observer), once its reply
// came, and other processes' (from the Source). ctx is the writer's
// context for this process's writes (the caller's, or the driver's monitor
// context for raw writes), and context.Background() for other processes'.
type WriteTracer interface {
	TraceWrite(ctx context.Context, w WriteApplied)
}

// SourceTracer is a Tracer that sees the Source stop following the other
// processes' writes (the cache then invalidates everything and stores
// nothing), follow again, and, for a Source that knows (coherence.Log),
// how long each event took to arrive. It runs on the Source's goroutine.
type SourceTracer interface {
	TraceSource(ctx context.Context, e SourceEvent)
}

// ReadStart describes a cached read as it begins. It holds names only,
// never filter values (they may be user data).
type ReadStart struct {
	Database, Collection string
	// Op is "find" (FindMany, FindOne, Iter), "count" or "aggregate".
	Op string
}

// ReadEnd describes a cached read once it has ended.
type ReadEnd struct {
	Database, Collection, Op string
	// Outcome: served from the cache, loaded, joined another read's load,
	// or bypassed (served from the server, nothing stored; Reason says
	// why). Zero when the read failed before reaching the cache (its key
	// could not be built: Err says why).
	Outcome Outcome
	// Reason: why a read was bypassed, or its load (Outcome Miss) not
	// stored. ReasonNone otherwise.
	Reason Reason
	// Stored reports, for a miss, whether its result was stored.
	Stored bool
	// Wide says why the result is under the collection-wide rule (every
	// write of the collection invalidates it), or WideNone: the query
	// shape that forfeits precision. Known for hits, misses and joins.
	Wide WideReason
	// Docs and Bytes are the result's documents and their raw BSON size;
	// Decode the time spent decoding them into the caller's values (or
	// copying the memoized ones).
	Docs, Bytes int
	Decode      time.Duration
	// Err is the read's error, if any. Its message may quote the query's
	// values (a server error can); ErrClass is what may be recorded
	// instead.
	Err error
	// ErrClass names Err's kind without its message, safe to log and
	// record: the server's error code name ("BadValue", …, or
	// "server_error"), "canceled", "deadline_exceeded", "network",
	// "decode" (a document did not decode into the type), "uncacheable",
	// or "error"; "" without an error.
	ErrClass string
	// Leader is, for a joined read (Outcome Joined), the context of the
	// read that ran the load it waited for: a tracer links its record to
	// that read's, which owns the driver's command.
	Leader context.Context
}

// WriteApplied describes a write applied to the cache. Counts are of
// this cache's entries.
type WriteApplied struct {
	Database, Collection string
	// Remote: another process's write, from the Source.
	Remote bool
	// Statements is the number of statements the rules judged (0 for a
	// collection-wide write).
	Statements int
	// Wide: the write invalidated the whole collection (a drop, a command
	// the rules do not read, a remote event by name, Invalidate).
	// Unknown: its reply was lost; the collection is not cached until it
	// has surely ended (Stats.Unsettled).
	Wide, Unknown bool
	// PreImage: it carried the server's pre-image of its document
	// (odm.WithPreImages, or a change event's). Described: it was
	// published to the Source with its descriptor (DescribingSource).
	PreImage, Described bool
	// Entries it invalidated, by rule (see Stats), including those
	// invalidated when it was sent; entries it was checked against and
	// kept; entries it held while it ran (pre-images).
	InvalidatedByID, InvalidatedByMatch, InvalidatedByPath, InvalidatedWide int
	Kept, Held                                                              int
}

// Invalidated returns the entries the write invalidated, by any rule.
func (w WriteApplied) Invalidated() int {
	return w.InvalidatedByID + w.InvalidatedByMatch + w.InvalidatedByPath + w.InvalidatedWide
}

// SourceEvent is what the Source did.
type SourceEvent struct {
	Kind SourceEventKind
	// Err is why the Source lost its place (SourceLost): its log wrapped,
	// its server went away…
	Err error
	// Down is how long the cache was not following (SourceSynced; zero
	// the first time).
	Down time.Duration
	// Lag is how long an event took from its write's publication to its
	// delivery here (SourceDelivered), by the publisher's clock and this
	// process's.
	Lag time.Duration
}

// SourceEventKind is what a SourceEvent reports.
type SourceEventKind uint8

// The kinds of SourceEvent.
const (
	SourceLost      SourceEventKind = SourceEventKind(cachecore.SourceLost)      // the Source may have missed writes: the cache was flushed
	SourceSynced    SourceEventKind = SourceEventKind(cachecore.SourceSynced)    // the Source follows again (also the first time)
	SourceDelivered SourceEventKind = SourceEventKind(cachecore.SourceDelivered) // an event of another process arrived
)

// Outcome is what a cached read did.
type Outcome uint8

// The outcomes of a cached read.
const (
	OutcomeNone     Outcome = Outcome(cachecore.OutcomeNone)
	OutcomeHit      Outcome = Outcome(cachecore.OutcomeHit)      // served from the cache
	OutcomeMiss     Outcome = Outcome(cachecore.OutcomeMiss)     // this read ran the load
	OutcomeJoined   Outcome = Outcome(cachecore.OutcomeJoined)   // it waited for another read's load of the same query
	OutcomeBypassed Outcome = Outcome(cachecore.OutcomeBypassed) // served from the server, nothing stored
)

var outcomeNames = [...]string{"", "hit", "miss", "joined", "bypassed"}

// String returns "hit", "miss", "joined", "bypassed", or "" for OutcomeNone.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Reason says why a cached read was bypassed, or its load not stored.
type Reason uint8

// The reasons.
const (
	ReasonNone       Reason = Reason(cachecore.WhyNone)
	ReasonUnsettled  Reason = Reason(cachecore.WhyUnsettled)  // bypassed: a write of unknown outcome may still be running (Stats.Unsettled)
	ReasonNotSynced  Reason = Reason(cachecore.WhyNotSynced)  // bypassed: the Source is not following the other processes' writes
	ReasonShape      Reason = Reason(cachecore.WhyShape)      // bypassed: what the collection is (a view?) could not be asked
	ReasonLagging    Reason = Reason(cachecore.WhyLagging)    // not stored: its read concern or preference may read older data (Stats.Lagging)
	ReasonUnobserved Reason = Reason(cachecore.WhyUnobserved) // not stored: no write observer saw its commands (Stats.Unobserved)
	ReasonDiscarded  Reason = Reason(cachecore.WhyDiscarded)  // not stored: a write applied while it ran may have changed it (Stats.Discarded)
	ReasonRejected   Reason = Reason(cachecore.WhyRejected)   // not stored: ristretto refused it, or the cache is closed (Stats.Rejected)
	ReasonError      Reason = Reason(cachecore.WhyError)      // not stored: the load failed
)

var reasonNames = [...]string{"", "unsettled", "not_synced", "shape_unknown", "lagging", "unobserved", "discarded", "rejected", "error"}

// String returns the reason's name in snake case ("unsettled",
// "not_synced", …), or "" for ReasonNone.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// WideReason says why a cached result is under the collection-wide rule:
// every write of its collection invalidates it, whatever the write
// changes (docs/caching.md, "What the rules cannot read").
type WideReason uint8

// The reasons a result is under the collection-wide rule.
const (
	WideNone     WideReason = WideReason(cachecore.WideNone)
	WideOption   WideReason = WideReason(cachecore.WideOption)   // Config.CollectionWideOnly
	WideJoins    WideReason = WideReason(cachecore.WideJoins)    // it reads other collections ($lookup, $unionWith, a view)
	WideHint     WideReason = WideReason(cachecore.WideHint)     // query.Hint
	WideSkip     WideReason = WideReason(cachecore.WideSkip)     // query.Skip
	WideBatch    WideReason = WideReason(cachecore.WideBatch)    // a negative limit (one batch)
	WideSort     WideReason = WideReason(cachecore.WideSort)     // a limit cutting the result by a sort that does not end in _id
	WideFilter   WideReason = WideReason(cachecore.WideFilter)   // a filter, projection or sort outside the forms the rules read
	WidePipeline WideReason = WideReason(cachecore.WidePipeline) // a pipeline outside the forms the rules read
	WideLimit    WideReason = WideReason(cachecore.WideLimit)    // a count with a limit
)

// numWide is the number of WideReasons (the length of Stats.WideLoads).
const numWide = cachecore.NumWide

var wideNames = [...]string{"", "collection_wide_only", "joins", "hint", "skip", "single_batch", "sort_not_total", "filter", "pipeline", "count_limit"}

// String returns the reason's name in snake case ("sort_not_total", …),
// or "" for WideNone.
func (w WideReason) String() string {
	if int(w) < len(wideNames) {
		return wideNames[w]
	}
	return "unknown"
}

// tracer adapts a Tracer (and its WriteTracer and SourceTracer, if it is
// one) to the core.
type tracer struct {
	t Tracer
	w WriteTracer
	s SourceTracer
}

func newTracer(t Tracer) cachecore.Tracer {
	if t == nil {
		return nil
	}
	a := &tracer{t: t}
	a.w, _ = t.(WriteTracer)
	a.s, _ = t.(SourceTracer)
	return a
}

func (a *tracer) ReadStart(ctx context.Context, r *cachecore.ReadTrace) context.Context {
	return a.t.TraceReadStart(ctx, ReadStart{Database: r.DB, Collection: r.Coll, Op: r.Op})
}

func (a *tracer) ReadEnd(ctx context.Context, r *cachecore.ReadTrace) {
	a.t.TraceReadEnd(ctx, ReadEnd{
		Database: r.DB, Collection: r.Coll, Op: r.Op,
		Outcome: Outcome(r.Outcome), Reason: Reason(r.Why), Stored: r.Stored, Wide: WideReason(r.Wide),
		Docs: r.Docs, Bytes: r.Bytes, Decode: r.Decode, Err: r.Err, ErrClass: errClass(r.Err), Leader: r.Leader,
	})
}

// errClass names err's kind without its message (see ReadEnd.ErrClass).
func errClass(err error) string {
	if err == nil {
		return "" // before the targets of errors.As, which escape: a read without error allocates nothing here
	}
	var ce mongo.CommandError
	var se mongo.ServerError
	var de *cursor.DocumentError
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err):
		return "deadline_exceeded"
	case errors.As(err, &ce) && ce.Name != "":
		return ce.Name
	case errors.As(err, &se):
		return "server_error"
	case mongo.IsNetworkError(err):
		return "network"
	case errors.As(err, &de):
		return "decode"
	case errors.Is(err, query.ErrUncacheable):
		return "uncacheable"
	}
	return "error"
}

func (a *tracer) Write(ctx context.Context, w *cachecore.WriteTrace) {
	if a.w == nil {
		return
	}
	a.w.TraceWrite(ctx, WriteApplied{
		Database: w.DB, Collection: w.Coll, Remote: w.Remote, Statements: w.Statements,
		Wide: w.Wide, Unknown: w.Unknown, PreImage: w.PreImage, Described: w.Described,
		InvalidatedByID: w.ByID, InvalidatedByMatch: w.ByMatch, InvalidatedByPath: w.ByPath, InvalidatedWide: w.ByWide,
		Kept: w.Kept, Held: w.Held,
	})
}

func (a *tracer) Source(ctx context.Context, s *cachecore.SourceTrace) {
	if a.s == nil {
		return
	}
	a.s.TraceSource(ctx, SourceEvent{Kind: SourceEventKind(s.Kind), Err: s.Err, Down: s.Down, Lag: s.Lag})
}
