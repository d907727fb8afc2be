package cachecore

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func namespace(db, coll string) string { return db + "." + coll }

// space returns the state of collection db.coll, made on first use. It is
// on every hit: two map loads, no allocation (a "db.coll" key would be
// concatenated on every call).
func (c *Cache) space(db, coll string) *space {
	colls, ok := c.spaces.Load(db)
	if !ok {
		colls, _ = c.spaces.LoadOrStore(db, new(sync.Map))
	}
	m := colls.(*sync.Map)
	if sp, ok := m.Load(coll); ok {
		return sp.(*space)
	}
	sp, _ := m.LoadOrStore(coll, newSpace(db, coll))
	return sp.(*space)
}

// spaceNS is space for a namespace "db.coll".
func (c *Cache) spaceNS(ns string) *space {
	db, coll, _ := strings.Cut(ns, ".")
	return c.space(db, coll)
}

// eachSpace calls f for every collection the cache knows.
func (c *Cache) eachSpace(f func(*space)) {
	c.spaces.Range(func(_, colls any) bool {
		colls.(*sync.Map).Range(func(_, sp any) bool {
			f(sp.(*space))
			return true
		})
		return true
	})
}

// unsettledAll reports whether a write of unknown outcome may still be
// changing every collection.
func (c *Cache) unsettledAll() bool {
	s := c.settleAll.Load()
	return s != 0 && time.Now().UnixNano() < s
}

// Apply applies one write's change to this cache and publishes it to the
// other processes.
func (c *Cache) Apply(ch Change) {
	c.apply(ch)
	if c.source != nil {
		c.source.Publish(ch.DB, ch.Coll)
	}
}

func (c *Cache) apply(ch Change) {
	switch {
	case ch.Unknown:
		c.unsettled(ch.DB, ch.Coll, ch.Deadline)
	case ch.Coll == "":
		c.invalidateAll()
	case ch.Wide || ch.Drop || len(ch.Stmts) == 0 || c.wideOnly:
		c.invalidateWide(c.space(ch.DB, ch.Coll), ch.Drop)
	default:
		c.applyStmts(c.space(ch.DB, ch.Coll), &ch)
	}
}

// applyStmts invalidates the entries each statement may affect, and keeps
// the change for the loads in flight.
func (c *Cache) applyStmts(sp *space, ch *Change) {
	var stale []string
	// This cache's own images, set on its own copy of the statements (the
	// first cache's copy is the writer's; each other cache's is a clone,
	// made before this runs).
	imgs := ch.images[c]
	for i := range ch.Stmts {
		ch.Stmts[i].image = nil
		if i < len(imgs) {
			ch.Stmts[i].image = imgs[i]
		}
	}
	sp.mu.Lock()
	sp.seq.Add(1)
	sp.forgetImages()
	if sp.inflight == 0 && len(sp.deps) == 0 {
		sp.mu.Unlock() // nothing to invalidate, no load to tell
		c.invalidations.Add(1)
		return
	}
	if sp.inflight > 0 {
		for i := range ch.Stmts {
			ch.Stmts[i].doc() // the caller's value may change once it returns
		}
		sp.keep(applied{seq: sp.seq.Load(), ch: ch})
	}
	stale = c.decideAll(sp, ch.Stmts)
	sp.mu.Unlock()
	c.invalidations.Add(1)
	c.ristretto(func() {
		for _, k := range stale {
			c.rc.Del(k) // outside mu: ristretto calls OnExit, which takes it
		}
	})
}

// decideAll invalidates the entries each statement may change (under mu),
// and returns their keys, for the caller to delete from ristretto once it
// has let mu go.
func (c *Cache) decideAll(sp *space, stmts []Stmt) (stale []string) {
	simple := sp.simple.Load()
	for i := range stmts {
		s := &stmts[i]
		if s.NoChange {
			continue
		}
		s.derive(simple)
		sp.stamp++
		sp.candidates(s, func(d *dep) {
			if r := decide(s, d, simple); r != keep {
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

// candidates calls visit once for each entry statement s may affect (under
// mu): the rules decide for those; no other entry can be affected.
func (sp *space) candidates(s *Stmt, visit func(*dep)) {
	each := func(ds set) {
		for d := range ds {
			if sp.visited[d] != sp.stamp {
				sp.visited[d] = sp.stamp
				visit(d)
			}
		}
	}
	each(sp.wild)
	if s.Op == OpInsert {
		sp.entering(s.entering(), each)
		return
	}
	each(sp.opaque)
	if s.idsKnown {
		for _, id := range s.ids {
			each(sp.byID[id])
		}
	} else {
		each(sp.finds)
	}
	if s.Op == OpDelete {
		each(sp.countish)
		return
	}
	if s.Op == OpReplace || s.u.All || (s.Upsert && !s.NotUpserted) {
		each(sp.deps) // any document may enter any entry
		return
	}
	for _, t := range s.u.Touched {
		f := strings.SplitN(t, ".", 2)[0]
		if t == "" {
			each(sp.deps)
			return
		}
		each(sp.readers[f])
		vals, ok := sp.eqOnly[f]
		if !ok {
			continue
		}
		if v, set := s.u.Set[t]; set && t == f {
			sp.eachValue(v, vals, each) // only the entries that equal the new value
			continue
		}
		if s.u.Unset[f] {
			continue // a missing field equals no value
		}
		for _, ds := range vals {
			each(ds)
		}
	}
}

// eachValue visits the entries of vals keyed by v, or by an element of v
// when it is an array.
func (sp *space) eachValue(v bson.RawValue, vals map[string]set, each func(set)) {
	if arr, ok := v.ArrayOK(); ok {
		els, err := arr.Values()
		if err != nil {
			for _, ds := range vals {
				each(ds)
			}
			return
		}
		for _, el := range els {
			sp.eachValue(el, vals, each)
		}
		return
	}
	if k, ok := valueKey(v, sp.simple.Load()); ok {
		each(vals[k])
		return
	}
	if _, isDoc := v.DocumentOK(); !isDoc && v.Type != bson.TypeNull {
		for _, ds := range vals { // a value the index does not key: all of them
			each(ds)
		}
	}
}

// entering visits the entries whose equality fields a document entering
// the collection holds (all of them when the document is not known).
func (sp *space) entering(doc bson.Raw, each func(set)) {
	if doc == nil {
		each(sp.deps)
		return
	}
	simple := sp.simple.Load()
	var buf [64]byte
	for _, g := range sp.groups {
		switch k, st := scalarTuple(buf[:0], doc, g.fields, simple); st {
		case tupleKey:
			each(g.byTuple[string(k)]) // the common case: no array, no allocation
			continue
		case tupleNone:
			continue
		}
		keys, ok := tuples(doc, g.fields, simple)
		if !ok {
			for _, ds := range g.byTuple {
				each(ds)
			}
			continue
		}
		for _, k := range keys {
			each(g.byTuple[k])
		}
	}
}

const maxTuples = 64

// scalarTuple appends the index key of doc in a group of fields when doc
// holds a keyable, non-array value in each (tupleKey); tupleNone when doc
// lacks one of the fields (it can match no entry of the group);
// tupleOther otherwise (tuples decides then).
func scalarTuple(b []byte, doc bson.Raw, fields []string, simple bool) ([]byte, int) {
	for i, f := range fields {
		v, err := doc.LookupErr(f)
		if err != nil {
			return b, tupleNone
		}
		if v.Type == bson.TypeArray {
			return b, tupleOther
		}
		if i > 0 {
			b = append(b, 0)
		}
		var ok bool
		if b, ok = appendValueKey(b, v, simple); !ok {
			return b, tupleOther
		}
	}
	return b, tupleKey
}

const (
	tupleKey = iota
	tupleNone
	tupleOther
)

// tuples returns the index keys doc can match in a group of fields: for
// each field its value, or each element of an array there. ok is false
// when there are too many combinations to list.
func tuples(doc bson.Raw, fields []string, simple bool) ([]string, bool) {
	keys := []string{""}
	for i, f := range fields {
		v, err := doc.LookupErr(f)
		if err != nil {
			return nil, true // a required field is missing: none match
		}
		var ks []string
		if arr, isArr := v.ArrayOK(); isArr {
			els, err := arr.Values()
			if err != nil {
				return nil, false
			}
			for _, el := range els {
				k, ok := valueKey(el, simple)
				if !ok {
					return nil, false // a value the index does not key: all of the group
				}
				ks = append(ks, k)
			}
		} else {
			k, ok := valueKey(v, simple)
			if !ok {
				return nil, false
			}
			ks = append(ks, k)
		}
		next := make([]string, 0, len(keys)*len(ks))
		for _, prefix := range keys {
			for _, k := range ks {
				if i > 0 {
					next = append(next, prefix+"\x00"+k)
				} else {
					next = append(next, k)
				}
			}
		}
		if len(next) > maxTuples {
			return nil, false
		}
		keys = next
	}
	return keys, true
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
func (c *Cache) invalidateWide(sp *space, drop bool) {
	sp.mu.Lock()
	sp.seq.Add(1)
	sp.forgetImages()
	if drop {
		sp.drops.Add(1)
		sp.simple.Store(false) // until its shape is asked again
	}
	sp.wide.Add(1)
	c.byWide.Add(uint64(len(sp.deps)))
	sp.reset()
	if sp.inflight > 0 {
		sp.keep(applied{seq: sp.seq.Load()})
	}
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
		sp.mu.Unlock()
	})
}

// unsettled is the change of a write whose outcome is unknown: it was sent
// and its reply is missing, so the server may have applied it, in part, and
// may still be applying it until deadline (its maxTimeMS). Until deadline
// plus the settle margin, no read of the collection is served from the
// cache or stored in it (each counted in Bypassed); then the collection is
// invalidated again, and published again to the other processes, whose
// caches may have been refilled in the window.
//
// A zero deadline is a write sent with no time limit (a raw write with no
// maxTimeMS): no clock bounds when the server may still apply it. The
// window is then the longest TTL any entry of the cache was stored with
// (DefaultTTL at least), counted in UnsettledNoDeadline: every entry that
// was valid when the reply was lost has expired by its end; a result
// stored after it that the write changes later still is served for at
// most its own TTL, the bound docs/caching.md states for such a write.
func (c *Cache) unsettled(db, coll string, deadline time.Time) {
	if deadline.IsZero() {
		c.unsettledNoDeadline.Add(1)
		deadline = time.Now().Add(max(c.defaultTTL, time.Duration(c.maxTTL.Load())))
	}
	until := deadline.Add(c.settleMargin).UnixNano()
	if coll == "" {
		raise(&c.settleAll, until) // every collection: one window for all
		c.invalidateAll()
	}
	sp := c.space(db, coll)
	// The window is set before the invalidation: a read that sees the
	// invalidation sees the window too.
	raise(&sp.settle, until)
	c.unsettledWrites.Add(1)
	c.invalidateWide(sp, false)
	c.settleLater(sp)
}

// settleLater invalidates sp again when its unsettled window ends.
func (c *Cache) settleLater(sp *space) {
	ns := namespace(sp.db, sp.coll)
	c.timersMu.Lock()
	defer c.timersMu.Unlock()
	if c.closed {
		return
	}
	wait := time.Until(time.Unix(0, sp.settle.Load()))
	if t, ok := c.timers[ns]; ok {
		t.Reset(wait)
		return
	}
	c.timers[ns] = time.AfterFunc(wait, func() {
		c.timersMu.Lock()
		if time.Now().UnixNano() < sp.settle.Load() { // extended meanwhile: its own Reset follows
			c.timersMu.Unlock()
			return
		}
		delete(c.timers, ns)
		closed := c.closed
		c.timersMu.Unlock()
		if !closed {
			c.Apply(Change{DB: sp.db, Coll: sp.coll, Wide: true})
		}
	})
}

// Generation returns the number of changes applied to db.coll plus the
// number of InvalidateAll calls: it grows with every invalidation that can
// reach the collection's entries (for tests).
func (c *Cache) Generation(db, coll string) uint64 {
	return c.space(db, coll).seq.Load() + c.epoch.Load()
}

// raise sets p to v unless it holds more already.
func raise(p *atomic.Int64, v int64) {
	for {
		old := p.Load()
		if old >= v || p.CompareAndSwap(old, v) {
			return
		}
	}
}
