package cachecore

import (
	"context"
	"time"
)

// Tracing: package cache's Tracer, WriteTracer and SourceTracer, adapted
// to one interface here (package cache converts the records below into its
// own, documented types). With no tracer set, the only cost on any path is
// a nil check: the hit path allocates nothing more (TestHitPathAllocations
// in package cache).

// Tracer receives the cache's trace records. ReadStart's context is the
// one the read then runs in (the load's driver commands inherit it).
type Tracer interface {
	ReadStart(ctx context.Context, r *ReadTrace) context.Context
	ReadEnd(ctx context.Context, r *ReadTrace)
	Write(ctx context.Context, w *WriteTrace)
	Source(ctx context.Context, s *SourceTrace)
}

// Outcome is what a traced cached read did (cache.Outcome).
type Outcome uint8

// The outcomes.
const (
	OutcomeNone     Outcome = iota
	OutcomeHit              // served from the cache
	OutcomeMiss             // not in the cache: this read ran the load
	OutcomeJoined           // not in the cache: waited for another read's load of the same query
	OutcomeBypassed         // served from the server, and nothing stored (Why says why)
)

// Why says why a read was bypassed, or its load not stored (cache.Reason).
type Why uint8

// The reasons.
const (
	WhyNone       Why = iota
	WhyUnsettled      // bypassed: a write of unknown outcome may still be running in the collection
	WhyNotSynced      // bypassed: the Source is not following the other processes' writes
	WhyShape          // bypassed: what the collection is (a view?) could not be asked
	WhyLagging        // not stored: its read concern or preference may read data older than this process's writes
	WhyUnobserved     // not stored: no write observer saw its commands
	WhyDiscarded      // not stored: a write applied while it ran may have changed it
	WhyRejected       // not stored: ristretto refused it (full of more used entries), or the cache is closed
	WhyError          // not stored: the load failed
)

// Wide says why a cached result is under the collection-wide rule (every
// write of its collection invalidates it), or WideNone (cache.WideReason).
type Wide uint8

// The reasons, and NumWide, the number of them.
const (
	WideNone     Wide = iota
	WideOption        // Config.CollectionWideOnly
	WideJoins         // it reads other collections ($lookup, $unionWith, a view's pipeline)
	WideHint          // a hint
	WideSkip          // a skip
	WideBatch         // a negative limit (one batch: the server may cut it shorter)
	WideSort          // a limit that cuts the result by a sort that is not total (not ending in _id)
	WideFilter        // a filter (or projection, or sort) outside the forms the rules read
	WidePipeline      // an aggregation pipeline outside the forms the rules read
	WideLimit         // a count with a limit
	NumWide
)

// ReadTrace is one cached read (find, count or aggregate), filled in as it
// runs.
type ReadTrace struct {
	DB, Coll, Op string // Op: "find", "count" or "aggregate"
	Outcome      Outcome
	Why          Why
	Wide         Wide
	Stored       bool // a miss: its result was stored
	Docs, Bytes  int
	Decode       time.Duration
	Err          error
	// Leader is the context of the read whose load a joined read waited
	// for (nil otherwise): a tracer links to its span.
	Leader context.Context

	dep *dep // the entry the result was served from or stored in (FetchLive)
}

// WriteTrace is one write applied to the cache: this process's (Remote
// false) or another's, from the Source.
type WriteTrace struct {
	DB, Coll   string
	Remote     bool
	Statements int
	// Wide: the write changes the whole collection as far as the rules
	// know (a drop, a command they do not read, a remote event without a
	// descriptor); Unknown: its reply was lost (the collection is not
	// cached until it has surely ended).
	Wide, Unknown bool
	PreImage      bool // it carried the server's pre-image
	Described     bool // published to the Source with its descriptor
	// Entries invalidated, by rule; kept valid; held while the write ran
	// (pre-images), counted at its start.
	ByID, ByMatch, ByPath, ByWide, Kept, Held int
}

// SourceKind is what a SourceTrace reports.
type SourceKind uint8

// The source events.
const (
	SourceLost      SourceKind = iota + 1 // the Source may have missed writes: everything invalidated
	SourceSynced                          // the Source follows again
	SourceDelivered                       // an event arrived, Lag after its write was published
)

// SourceTrace is a change in the Source's state.
type SourceTrace struct {
	Kind SourceKind
	Err  error // SourceLost: the reason
	// SourceSynced: how long the cache was not following (zero the first
	// time).
	Down time.Duration
	// SourceDelivered: from the write's publication to the event's
	// delivery here.
	Lag time.Duration
}

// tally counts what one write did to one cache's entries, for its trace.
type tally struct{ byID, byMatch, byPath, byWide, kept, held int }

func (t *tally) add(r rule) {
	if t == nil {
		return
	}
	switch r {
	case keep:
		t.kept++
	case ruleID:
		t.byID++
	case ruleMatch:
		t.byMatch++
	case rulePath:
		t.byPath++
	default:
		t.byWide++
	}
}

// Tracer returns the cache's tracer, or nil.
func (c *Cache) Tracer() Tracer { return c.tracer }

// traceWrite reports a change applied to this cache, with what its flight
// did at Begin.
func (c *Cache) traceWrite(ch *Change, t *tally, remote, described bool) {
	if t == nil {
		return
	}
	w := WriteTrace{
		DB: ch.DB, Coll: ch.Coll, Remote: remote, Statements: len(ch.Stmts),
		Wide: ch.Wide || ch.Drop || (len(ch.Stmts) == 0 && !ch.Unknown) || ch.Coll == "", Unknown: ch.Unknown,
		Described: described,
		ByID:      t.byID, ByMatch: t.byMatch, ByPath: t.byPath, ByWide: t.byWide, Kept: t.kept, Held: t.held,
	}
	for i := range ch.Stmts {
		w.PreImage = w.PreImage || ch.Stmts[i].PreImage != nil
	}
	if ch.flight != nil {
		for _, p := range ch.flight.parts {
			if p.c != c || p.w.t == nil {
				continue
			}
			p.sp.mu.Lock()
			b := *p.w.t
			p.sp.mu.Unlock()
			w.ByID += b.byID
			w.ByMatch += b.byMatch
			w.ByPath += b.byPath
			w.ByWide += b.byWide
			w.Kept += b.kept
			w.Held += b.held
		}
	}
	ctx := ch.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	c.tracer.Write(ctx, &w)
}

// Fail records err in the trace (when there is one), and returns it.
func (r *ReadTrace) Fail(err error) error {
	if r != nil && err != nil {
		r.Err = err
	}
	return err
}
