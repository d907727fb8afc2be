package cachecore

import "go.mongodb.org/mongo-driver/v2/bson"

// A write's change, applied to this cache (Apply, from the bus or from the
// cache's own Invalidate): the entries each statement may change, as the
// index walk (walk.go) names them and the rules (decide.go) judge them,
// are marked invalid; a collection-wide change invalidates every entry of
// its collection in one atomic add.

// Apply applies one write's change to this cache and publishes it to the
// other processes.
func (c *Cache) Apply(ch Change) {
	var t *tally
	if c.tracer != nil {
		t = &tally{}
	}
	c.apply(ch, t)
	described := false
	if c.source != nil {
		described = c.publish(&ch)
	}
	c.traceWrite(&ch, t, false, described)
}

// publish tells the source of a change applied here: with its descriptor
// when the source carries them and the change can be described within
// MaxDescriptor, by its namespace otherwise.
func (c *Cache) publish(ch *Change) (described bool) {
	if c.describer != nil {
		if desc, ok := AppendDescriptor(nil, ch, MaxDescriptor); ok {
			c.described.Add(1)
			c.describer.PublishDescribed(ch.DB, ch.Coll, desc)
			return true
		}
		c.undescribed.Add(1)
	}
	c.source.Publish(ch.DB, ch.Coll)
	return false
}

// apply applies ch, counting what it did in t (nil: not traced).
func (c *Cache) apply(ch Change, t *tally) {
	switch {
	case ch.Unknown:
		c.unsettled(ch.DB, ch.Coll, ch.Deadline, t)
	case ch.Coll == "":
		c.invalidateAll()
	case ch.Wide || ch.Drop || len(ch.Stmts) == 0 || c.wideOnly:
		c.invalidateWide(c.space(ch.DB, ch.Coll), ch.Drop, t)
	default:
		c.applyStmts(c.space(ch.DB, ch.Coll), &ch, t)
	}
}

// applyRemote applies another process's change, from the Source.
func (c *Cache) applyRemote(ch Change) {
	var t *tally
	if c.tracer != nil {
		t = &tally{}
	}
	c.apply(ch, t)
	c.traceWrite(&ch, t, true, false)
}

// applyStmts invalidates the entries each statement may affect, and keeps
// the change for the loads in flight.
func (c *Cache) applyStmts(sp *space, ch *Change, t *tally) {
	var stale []string
	// This cache's own images, set on its own copy of the statements (the
	// first cache's copy is the writer's; each other cache's is a clone,
	// made before this runs).
	imgs := ch.images[c]
	sp.mu.Lock()
	sp.derive(ch.Stmts) // this cache's copy: what the rules read from it, once
	distrustUpserts(ch.Stmts, sp.simple.Load())
	for i := range ch.Stmts {
		s := &ch.Stmts[i]
		switch {
		case i < len(imgs) && imgs[i] != nil:
			s.setImage(imgs[i], nil)
		case s.PreImage != nil:
			// The server's: a fact for every cache (a cache whose entries
			// are another deployment's is not changed by the write at all).
			s.setImage(s.PreImage, s.PreImageFields)
			s.served = true
			c.preImages.Add(1)
		default:
			s.setImage(nil, nil)
		}
	}
	sp.seq.Add(1)
	sp.forgetImages()
	if sp.inflight == 0 && len(sp.deps) == 0 {
		sp.notify(c)
		sp.mu.Unlock() // nothing to invalidate, no load to tell
		c.invalidations.Add(1)
		return
	}
	if sp.inflight > 0 {
		for i := range ch.Stmts {
			ch.Stmts[i].doc() // the caller's value may change once it returns
		}
		// Kept for the loads in flight, which read its statements only:
		// not the writer's context or flight (apply's own copy; Apply's
		// trace reads its own), which the ring would hold alive.
		ch.Ctx, ch.flight = nil, nil
		sp.keep(applied{seq: sp.seq.Load(), ch: ch})
	}
	stale = c.decideAll(sp, ch.Stmts, t)
	sp.notify(c)
	sp.mu.Unlock()
	c.invalidations.Add(1)
	c.ristretto(func() {
		for _, k := range stale {
			c.rc.Del(k) // outside mu: ristretto calls OnExit, which takes it
		}
	})
}

// distrustUpserts drops every fact a write's reply gave of its statements
// when one contradicts its statement: an upserted _id other than the one
// the statement's filter confines it to (the dev server reports each
// upsert of a multi-statement update at index 0: docs/ferretdb.md). A
// reply that contradicts itself is no fact; without its facts, the rules
// take every statement that may upsert as having inserted
// (TestInconsistentUpsertIsNoFact). Derived stmts, under mu.
func distrustUpserts(stmts []Stmt, simple bool) {
	bad := false
	for i := range stmts {
		s := &stmts[i]
		if !s.Upserted || s.UpsertedID.Type == 0 || s.derivation == nil || !s.idsKnown || len(s.ids) != 1 {
			continue
		}
		if k, ok := keyOfID(s.UpsertedID, simple && !s.Collation); !ok || k != s.ids[0] {
			bad = true
			break
		}
	}
	if !bad {
		return
	}
	for i := range stmts {
		s := &stmts[i]
		s.Upsert = s.Upsert || s.Upserted // the reply said it inserted: it may have
		s.Upserted, s.NotUpserted, s.NoChange, s.UpsertedID = false, false, false, bson.RawValue{}
	}
}

// decideAll invalidates the entries each statement may change (under mu),
// and returns their keys, for the caller to delete from ristretto once it
// has let mu go.
func (c *Cache) decideAll(sp *space, stmts []Stmt, t *tally) (stale []string) {
	for i := range stmts {
		s := &stmts[i]
		if s.NoChange {
			continue
		}
		sp.stamp++
		sp.candidates(s, func(d *dep) {
			r := decide(s, d)
			t.add(r)
			if r != keep {
				c.count(r)
				d.invalid.Store(true)
				sp.unregister(d)
				stale = append(stale, d.key)
			} else {
				c.kept.Add(1)
			}
		})
	}
	return stale
}

// keep records a write applied while loads are in flight (under mu), within
// the ring's bounds.
func (sp *space) keep(a applied) {
	sp.ring = append(sp.ring, a)
	if a.ch != nil {
		sp.stmts += len(a.ch.Stmts)
	}
	for len(sp.ring) > ringChanges || sp.stmts > ringStmts {
		old := sp.ring[0]
		sp.floor = old.seq
		if old.ch != nil {
			sp.stmts -= len(old.ch.Stmts)
		}
		sp.ring = sp.ring[1:]
	}
}

// count counts an invalidation by its rule.
func (c *Cache) count(r rule) {
	switch r {
	case ruleID:
		c.byID.Add(1)
	case ruleMatch:
		c.byMatch.Add(1)
	case rulePath:
		c.byPath.Add(1)
	default:
		c.byWide.Add(1)
	}
}

// Invalidate invalidates every cached result of the collection, and
// publishes that to the other processes. An empty coll stands for every
// collection of db, and an empty db and coll for every collection.
func (c *Cache) Invalidate(db, coll string) { c.Apply(Change{DB: db, Coll: coll, Drop: true}) }

// invalidateWide invalidates every entry of a collection: one atomic add
// that every hit compares, and fresh indexes. drop: the collection itself
// may have changed, and its shape is asked again.
func (c *Cache) invalidateWide(sp *space, drop bool, t *tally) {
	sp.mu.Lock()
	sp.seq.Add(1)
	sp.forgetImages()
	if drop {
		sp.drops.Add(1)
		sp.simple.Store(false) // until its shape is asked again
	}
	sp.wide.Add(1)
	c.byWide.Add(uint64(len(sp.deps)))
	if t != nil {
		t.byWide += len(sp.deps)
	}
	sp.reset()
	if sp.inflight > 0 {
		sp.keep(applied{seq: sp.seq.Load()})
	}
	sp.notify(c)
	sp.mu.Unlock()
	c.invalidations.Add(1)
}

// InvalidateAll invalidates every collection the cache has seen, for code
// that lost track of which ones changed. It is not published to other
// processes. It is one atomic add to a counter every hit compares, so it
// also covers collections whose first read is racing with it.
func (c *Cache) InvalidateAll() { c.invalidateAll() }

func (c *Cache) invalidateAll() {
	c.epoch.Add(1)
	c.invalidations.Add(1)
	// The entries are invalid by the epoch already; their indexes go too,
	// so that no write looks at them again.
	c.eachSpace(func(sp *space) {
		sp.mu.Lock()
		sp.reset()
		sp.forgetImages() // taken before the flush: any document may have changed
		sp.notify(c)
		sp.mu.Unlock()
	})
}

// Generation returns the number of changes applied to db.coll plus the
// number of InvalidateAll calls: it grows with every invalidation that can
// reach the collection's entries (for tests).
func (c *Cache) Generation(db, coll string) uint64 {
	return c.space(db, coll).seq.Load() + c.epoch.Load()
}
