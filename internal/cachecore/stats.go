package cachecore

// Stats are the cache's counters since New.
type Stats struct {
	Hits, Misses  uint64
	Loads         uint64 // queries sent to the server on misses (fewer than Misses with singleflight)
	Invalidations uint64
	Evictions     uint64
	UsedBytes     int64
	MaxBytes      int64

	// The invalidation rules: entries invalidated because a write named
	// one of their documents' _ids, because a document the write inserts,
	// replaces or selects matches them, because it changes a path they
	// read, and collection-wide (the entry or the write outside the
	// rules, a drop, Invalidate); Kept counts entries a write was checked
	// against and left valid. Discarded counts loads whose result a write
	// applied while they ran may have changed: returned, not stored.
	InvalidatedByID, InvalidatedByMatch, InvalidatedByPath, InvalidatedWide uint64
	Kept, Discarded                                                         uint64

	// With a Source: invalidations received from other processes; times the
	// source lost its place and the cache was flushed; reads served from
	// the server while it was not following (each counted as a miss too);
	// and whether it is following now. RemotePrecise counts the remote
	// invalidations that said what the write changed (change-stream
	// events of writes to documents), decided by the rules; the others
	// invalidated their collection.
	Remote, RemotePrecise, Resyncs, Bypassed uint64
	Synced                                   bool

	// Writes of unknown outcome (reads of their collection bypass the
	// cache until each settles, counted in Bypassed).
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

	// Rejected counts results ristretto refused to store (its admission
	// policy, when the cache is full of more frequently used entries): a
	// steady rise means MaxCost is too small for the working set.
	Rejected uint64
}

// HitRatio returns Hits/(Hits+Misses), or 0 before any lookup.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Loads: c.loads.Load(),
		Invalidations: c.invalidations.Load(), Evictions: c.evictions.Load(),
		UsedBytes: c.Used(), MaxBytes: c.MaxCost(),
		InvalidatedByID: c.byID.Load(), InvalidatedByMatch: c.byMatch.Load(),
		InvalidatedByPath: c.byPath.Load(), InvalidatedWide: c.byWide.Load(),
		Kept: c.kept.Load(), Discarded: c.discarded.Load(),
		Remote: c.remote.Load(), RemotePrecise: c.remotePrecise.Load(), Resyncs: c.resyncs.Load(), Bypassed: c.bypassed.Load(),
		Synced: c.source == nil || c.synced.Load(), Unsettled: c.unsettledWrites.Load(), UnsettledNoDeadline: c.unsettledNoDeadline.Load(), Lagging: c.lagging.Load(),
		Rejected: c.rejected.Load(),
	}
}

// MaxCost returns the byte budget of the cache.
func (c *Cache) MaxCost() int64 { return c.rc.MaxCost() }

// Used returns the bytes of results the cache holds now (admitted entries;
// ristretto applies sets asynchronously).
func (c *Cache) Used() int64 { return c.rc.MaxCost() - c.rc.RemainingCost() }
