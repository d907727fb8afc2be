package cachecore

import "slices"

// A write is reported twice: Begin before it is sent, End after its reply
// (or its failure). Between the two the server may run it at any moment,
// so every entry it may change is invalidated at Begin (as by the rules,
// on the statements as sent), and a load that ends meanwhile is stored
// only if the write cannot change its result. Without Begin, a write whose
// reply comes late would leave the cached documents out of date for the
// rules' decision on a later write that the server ran after it: the
// later write would be judged against documents the earlier one had
// already changed (TestWriteAppliedBeforeAnEarlierOne).

// Flight is a write between Begin and End.
type Flight struct {
	parts []flightPart
}

type flightPart struct {
	c  *Cache
	sp *space
	w  *flying
}

// flying is a write in flight in one collection of one cache: its
// statements (the cache's own copy), or wide.
type flying struct {
	stmts []Stmt
	wide  bool
}

// writing reports whether a write is in flight in the collection.
func (sp *space) writing() bool { return sp.nflying.Load() > 0 }

// Begin reports a write about to be sent, with what it may change (as in
// Apply; its reply is not known yet), to every live cache of the writer's
// domain. The caller must End it.
func Begin(writer *Cache, ch Change) *Flight {
	var domain uint64
	if writer != nil {
		domain = writer.domain
	}
	f := &Flight{}
	live.Range(func(k, _ any) bool {
		if c := k.(*Cache); c.domain == domain {
			f.add(c, ch)
		}
		return true
	})
	return f
}

// add begins ch in c, with c's own copy of the statements (the caller
// refines its own until End, while c's loads read c's copy).
func (f *Flight) add(c *Cache, ch Change) {
	ch.Stmts = slices.Clone(ch.Stmts)
	if p, ok := c.beginWrite(ch); ok {
		f.parts = append(f.parts, p)
	}
}

// beginObserved adds a write the observer sees to f: in every live cache,
// whatever its domain.
func (f *Flight) beginObserved(ch Change) {
	live.Range(func(k, _ any) bool {
		f.add(k.(*Cache), ch)
		return true
	})
}

// End applies the write's change, refined by its reply (or Unknown), to
// the caches Begin reached, publishes it, and ends the flight. Caches made
// since Begin get the change too.
func (f *Flight) End(writer *Cache, ch Change) {
	Apply(writer, ch)
	f.land()
}

// land removes the flight from the collections it was in.
func (f *Flight) land() {
	if f == nil {
		return
	}
	for _, p := range f.parts {
		p.sp.mu.Lock()
		if i := slices.Index(p.sp.flying, p.w); i >= 0 {
			p.sp.flying = slices.Delete(p.sp.flying, i, i+1)
			p.sp.nflying.Add(-1)
		}
		p.sp.mu.Unlock()
	}
}

// beginWrite records a write in flight in this cache, and invalidates the
// entries it may change.
func (c *Cache) beginWrite(ch Change) (flightPart, bool) {
	if ch.Coll == "" {
		return flightPart{}, false // a database or everything: End invalidates every entry
	}
	sp := c.space(ch.DB, ch.Coll)
	w := &flying{stmts: ch.Stmts, wide: ch.Wide || ch.Drop || ch.Unknown || len(ch.Stmts) == 0 || c.wideOnly}
	sp.mu.Lock()
	sp.flying = append(sp.flying, w)
	sp.nflying.Add(1)
	if len(sp.deps) == 0 {
		sp.mu.Unlock()
		return flightPart{c: c, sp: sp, w: w}, true
	}
	var stale []string
	if w.wide {
		c.byWide.Add(uint64(len(sp.deps)))
		for d := range sp.deps {
			d.invalid.Store(true)
			stale = append(stale, d.key)
		}
		sp.reset()
	} else {
		stale = c.decideAll(sp, w.stmts)
	}
	sp.mu.Unlock()
	for _, k := range stale {
		c.rc.Del(k)
	}
	return flightPart{c: c, sp: sp, w: w}, true
}
