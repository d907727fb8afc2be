package cache

// Stats are the cache's counters since New; docs/caching.md says how to
// read them.
type Stats struct {
	// Hits and Misses are the cached reads served from the cache and
	// from the server; Loads the queries sent to the server on misses
	// (fewer than Misses: concurrent misses of one key share a load).
	Hits, Misses, Loads uint64
	// Applied counts the changes the cache applied: each write of this
	// process (once per write, whatever it invalidated), each event of
	// another process, each Invalidate and InvalidateAll.
	Applied uint64
	// Evictions counts entries ristretto evicted: to make room, and, in
	// its periodic sweep, those whose TTL ran out.
	Evictions uint64
	// UsedBytes is the bytes of results held now (ristretto applies sets
	// asynchronously); MaxBytes is Config.MaxCost.
	UsedBytes, MaxBytes int64

	// What the invalidation rules decided (docs/caching.md): entries
	// invalidated because a write named the _id of one of their
	// documents, because a document the write inserts, replaces or
	// selects matches them, because it changes a path they read, and
	// collection-wide (the read or the write outside the rules, a drop,
	// Invalidate, CollectionWideOnly). Kept counts entries a write was
	// checked against and left valid. Discarded counts loads that a write
	// applied while they ran may have changed: returned to their caller,
	// not stored.
	InvalidatedByID, InvalidatedByMatch, InvalidatedByPath, InvalidatedWide uint64
	Kept, Discarded                                                         uint64

	// With a Source: invalidations received from other processes; times the
	// source lost its place and the cache was flushed; reads served from
	// the server while it was not following (each counted as a miss too);
	// and whether it is following now. RemotePrecise counts the remote
	// invalidations that said what the write changed (a log event's
	// descriptor, a change-stream event of a write to documents), decided
	// by the rules; the others invalidated their collection.
	Remote, RemotePrecise, Resyncs, Bypassed uint64
	Synced                                   bool
	// With a Source that carries descriptors ([DescribingSource]): this
	// process's writes published with their descriptor, and those
	// published as their collection only (collection-wide writes, writes
	// of unknown outcome, Invalidate calls, descriptors over
	// MaxDescriptorSize).
	Described, Undescribed uint64

	// Writes whose reply was lost (reads of their collection bypass the
	// cache until each has surely ended, counted in Bypassed).
	Unsettled uint64
	// UnsettledNoDeadline counts those sent with no time limit (no
	// maxTimeMS): their collection bypasses the cache for the longest TTL
	// of its entries, and a result stored after that which such a write
	// changes is served for at most its own TTL (docs/caching.md).
	UnsettledNoDeadline uint64

	// Lagging counts loads not stored because, as the write observer saw
	// their commands, they read at a read concern (majority, snapshot) or
	// a read preference (a secondary) that can return data older than
	// this process's own last write.
	Lagging uint64
	// Unobserved counts loads not stored because no command monitor of
	// a cache ([Observer]) saw their commands: their client's raw
	// writes and transactions cannot reach the cache, so what they read
	// cannot be kept correct. A steady rise means a client is connected
	// without the monitor.
	Unobserved uint64

	// Rejected counts results ristretto refused to store (its admission
	// policy, when the cache is full of more frequently used entries): a
	// steady rise means MaxCost is too small for the working set.
	Rejected uint64

	// Writes through a handle with pre-images on (odm.WithPreImages,
	// docs/caching.md): Held counts entries such a write held while it
	// ran (not served, not dropped) for want of the document's other
	// values, Released those its pre-image then showed it could not
	// change, served again; PreImages counts the writes whose pre-image
	// the cache judged its entries by.
	Held, Released, PreImages uint64

	// WideLoads counts the loads whose result is under the collection-wide
	// rule (every write of its collection invalidates it), by why:
	// WideLoads[WideSort] are the loads of queries whose limit cuts the
	// result by a sort that does not end in _id, and so on (WideReason).
	// A steady rise at one index is a query shape that forfeits the
	// rules' precision; the trace (Tracer, ReadEnd.Wide) names the
	// collection. Index WideNone stays 0.
	WideLoads [numWide]uint64
}

// HitRatio returns Hits/(Hits+Misses), or 0 before any lookup.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats { return Stats(c.core.Stats()) }
