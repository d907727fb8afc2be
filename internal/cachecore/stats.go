package cachecore

// Stats is cache.Stats, field for field (package cache converts one to
// the other, so they cannot drift); cache.Stats documents each counter.
type Stats struct {
	Hits, Misses, Loads, Applied, Evictions                                 uint64
	UsedBytes, MaxBytes                                                     int64
	InvalidatedByID, InvalidatedByMatch, InvalidatedByPath, InvalidatedWide uint64
	Kept, Discarded                                                         uint64
	Remote, RemotePrecise, Resyncs, Bypassed                                uint64
	Synced                                                                  bool
	Described, Undescribed                                                  uint64
	Unsettled, UnsettledNoDeadline, Lagging, Unobserved, Rejected           uint64
	Held, Released, PreImages                                               uint64
	WideLoads                                                               [NumWide]uint64
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
	s := Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Loads: c.loads.Load(),
		Applied: c.invalidations.Load(), Evictions: c.evictions.Load(),
		UsedBytes: c.Used(), MaxBytes: c.MaxCost(),
		InvalidatedByID: c.byID.Load(), InvalidatedByMatch: c.byMatch.Load(),
		InvalidatedByPath: c.byPath.Load(), InvalidatedWide: c.byWide.Load(),
		Kept: c.kept.Load(), Discarded: c.discarded.Load(),
		Remote: c.remote.Load(), RemotePrecise: c.remotePrecise.Load(), Resyncs: c.resyncs.Load(), Bypassed: c.bypassed.Load(),
		Described: c.described.Load(), Undescribed: c.undescribed.Load(),
		Synced: c.source == nil || c.synced.Load(), Unsettled: c.unsettledWrites.Load(), UnsettledNoDeadline: c.unsettledNoDeadline.Load(), Lagging: c.lagging.Load(),
		Unobserved: c.unobserved.Load(),
		Rejected:   c.rejected.Load(),
		Held:       c.held.Load(), Released: c.released.Load(), PreImages: c.preImages.Load(),
	}
	for i := range s.WideLoads {
		s.WideLoads[i] = c.wideLoads[i].Load()
	}
	return s
}

// MaxCost returns the byte budget of the cache.
func (c *Cache) MaxCost() int64 { return c.rc.MaxCost() }

// Used returns the bytes of results the cache holds now (admitted entries;
// ristretto applies sets asynchronously).
func (c *Cache) Used() int64 { return c.rc.MaxCost() - c.rc.RemainingCost() }
