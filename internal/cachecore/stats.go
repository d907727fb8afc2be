package cachecore

// Stats are the cache's counters since New.
type Stats struct {
	Hits, Misses  uint64
	Loads         uint64 // queries sent to the server on misses (fewer than Misses with singleflight)
	Invalidations uint64
	Evictions     uint64
	UsedBytes     int64
	MaxBytes      int64

	// With a Source: invalidations received from other processes; times the
	// source lost its place and the cache was flushed; reads served from
	// the server while it was not following (each counted as a miss too);
	// and whether it is following now.
	Remote, Resyncs, Bypassed uint64
	Synced                    bool

	// Writes of unknown outcome reported with Unsettled (reads of their
	// collection bypass the cache until each settles, counted in Bypassed).
	Unsettled uint64

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
		Remote: c.remote.Load(), Resyncs: c.resyncs.Load(), Bypassed: c.bypassed.Load(),
		Synced: c.source == nil || c.synced.Load(), Unsettled: c.unsettled.Load(),
		Rejected: c.rejected.Load(),
	}
}
