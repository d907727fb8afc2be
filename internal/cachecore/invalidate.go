package cachecore

import (
	"sync/atomic"
	"time"
)

// MaxCost returns the byte budget of the cache.
func (c *Cache) MaxCost() int64 { return c.rc.MaxCost() }

// Used returns the bytes of results the cache holds now (admitted entries;
// ristretto applies sets asynchronously).
func (c *Cache) Used() int64 { return c.rc.MaxCost() - c.rc.RemainingCost() }

func namespace(db, coll string) string { return db + "." + coll }

// nsState is what the cache knows of one collection.
type nsState struct {
	gen    atomic.Uint64 // invalidations so far, of every kind
	wide   atomic.Uint64 // invalidations not confined to known ids (see point.go)
	settle atomic.Int64  // unix nanoseconds until which an unsettled write may still run; 0 if none
	ids    [idBuckets]atomic.Uint64
}

func (c *Cache) ns(ns string) *nsState {
	if g, ok := c.gens.Load(ns); ok {
		return g.(*nsState)
	}
	g, _ := c.gens.LoadOrStore(ns, new(nsState))
	return g.(*nsState)
}

// unsettledAll reports whether a write of unknown outcome may still be
// changing every collection.
func (c *Cache) unsettledAll() bool {
	s := c.settleAll.Load()
	return s != 0 && time.Now().UnixNano() < s
}

// unsettledNow reports whether a write of unknown outcome may still be
// running in the collection.
func (st *nsState) unsettledNow() bool {
	s := st.settle.Load()
	return s != 0 && time.Now().UnixNano() < s
}

// Generation returns the current generation of a collection: the number of
// invalidations it has had plus the number of InvalidateAll calls (both only
// grow, so any of them makes every earlier generation unreachable). Cached
// results are stored under the generation read when their query started.
func (c *Cache) Generation(db, coll string) uint64 {
	return c.ns(namespace(db, coll)).gen.Load() + c.epoch.Load()
}

// Invalidate makes every cached result of the collection unreachable: it
// bumps the collection's generation, which is part of every key. It is the
// entry point every write calls after the server answers (also when the
// write failed, or failed partway), and the one a cross-process source calls
// for writes made elsewhere. It does not depend on ristretto applying
// anything in time.
//
// An empty coll stands for every collection of db, and an empty db and
// coll for every collection (dropDatabase, applyOps): Invalidate then acts
// as InvalidateAll, and is published as such.
//
// With a Source, Invalidate also publishes the write to the other processes.
func (c *Cache) Invalidate(db, coll string) {
	c.invalidate(db, coll)
	if c.source != nil {
		c.source.Publish(db, coll)
	}
}

func (c *Cache) invalidate(db, coll string) {
	if coll == "" { // a whole database, or (db "" too) everything
		c.epoch.Add(1)
	} else {
		st := c.ns(namespace(db, coll))
		st.wide.Add(1)
		st.gen.Add(1)
	}
	c.invalidations.Add(1)
}

// InvalidateIDs is Invalidate for a write confined to the documents with
// the given _ids (a write by _id, or an insert of documents with these
// ids): cached reads that select by _id only those of other ids stay valid;
// every other cached read of the collection is invalidated, as by
// Invalidate. Ids that take no part in point reads (strings, documents)
// make it an Invalidate. It is published to other processes as Invalidate.
func (c *Cache) InvalidateIDs(db, coll string, ids ...any) {
	buckets := make([]uint32, 0, len(ids))
	for _, id := range ids {
		b, ok := bucketOf(id)
		if !ok {
			c.Invalidate(db, coll)
			return
		}
		buckets = append(buckets, b)
	}
	c.invalidateBuckets(db, coll, buckets)
	if c.source != nil {
		c.source.Publish(db, coll)
	}
}

// InvalidateMatching is Invalidate for a write with filter: when the filter
// confines it to known _ids, as InvalidateIDs; otherwise as Invalidate.
func (c *Cache) InvalidateMatching(db, coll string, filter any) {
	buckets, ok := pointBuckets(filter, nil)
	if !ok {
		c.Invalidate(db, coll)
		return
	}
	c.invalidateBuckets(db, coll, buckets)
	if c.source != nil {
		c.source.Publish(db, coll)
	}
}

func (c *Cache) invalidateBuckets(db, coll string, buckets []uint32) {
	st := c.ns(namespace(db, coll))
	for _, b := range buckets {
		st.ids[b].Add(1)
	}
	st.gen.Add(1) // after the ids: a read that sees the new gen sees them
	c.invalidations.Add(1)
}

// Unsettled is Invalidate for a write whose outcome is unknown: it was sent
// and its reply is missing (a timeout, a cancelled context, a network
// error), so the server may have applied it, in part, and may still be
// applying it. deadline is when the server stops it at the latest: the
// write's context deadline, which the driver sends as maxTimeMS.
//
// Until deadline plus Config.SettleMargin, no read of the collection is
// served from the cache or stored in it (each is counted in
// Stats().Bypassed): a result loaded meanwhile could predate the write's
// completion. Then the collection is invalidated again, and published again
// to the other processes, whose caches may have been refilled in the window.
// A zero deadline (a write with no time limit) waits DefaultTTL.
func (c *Cache) Unsettled(db, coll string, deadline time.Time) {
	if deadline.IsZero() {
		deadline = time.Now().Add(c.defaultTTL)
	}
	until := deadline.Add(c.settleMargin)
	ns := namespace(db, coll)
	st := c.ns(ns)
	if coll == "" { // every collection: one window for all
		for {
			old := c.settleAll.Load()
			if old >= until.UnixNano() || c.settleAll.CompareAndSwap(old, until.UnixNano()) {
				break
			}
		}
	}
	// The window is set before the generation moves: a read that sees the
	// new generation sees the window too.
	for {
		old := st.settle.Load()
		if old >= until.UnixNano() || st.settle.CompareAndSwap(old, until.UnixNano()) {
			break
		}
	}
	c.unsettled.Add(1)
	c.Invalidate(db, coll)

	c.timersMu.Lock()
	defer c.timersMu.Unlock()
	if c.closed {
		return
	}
	wait := time.Until(time.Unix(0, st.settle.Load()))
	if t, ok := c.timers[ns]; ok {
		t.Reset(wait)
		return
	}
	c.timers[ns] = time.AfterFunc(wait, func() {
		c.timersMu.Lock()
		if time.Now().UnixNano() < st.settle.Load() { // extended meanwhile: its own Reset follows
			c.timersMu.Unlock()
			return
		}
		delete(c.timers, ns)
		closed := c.closed
		c.timersMu.Unlock()
		if !closed {
			c.Invalidate(db, coll)
		}
	})
}

// InvalidateAll invalidates every collection the cache has seen, for code
// that lost track of which ones changed. It is not published to other
// processes.
//
// It is one atomic add to a counter that is part of every collection's
// generation, so it also covers collections whose first read is racing
// with it.
func (c *Cache) InvalidateAll() {
	c.epoch.Add(1)
	c.invalidations.Add(1)
}

// Change is what one write may have changed in one collection, as odm and
// the write observer report it.
type Change struct {
	DB, Coll string
	// IDs confines the write to the documents with these _ids (a write by
	// _id, an insert); nil when it is not confined to known ids.
	IDs []any
	// Filter confines the write to the documents it matches, when IDs is
	// nil; nil with IDs nil means anything in the collection.
	Filter any
	// Unknown: the write was sent and its reply is missing; it may still
	// be running until Deadline (zero: no deadline).
	Unknown  bool
	Deadline time.Time
}

// Apply applies a write's change to every live cache of the process (of
// the writer's domain, see SetDomain): a write made through one handle
// invalidates the reads of every other, whatever cache they use. writer is
// the cache attached to the writer's collection, or nil.
func Apply(writer *Cache, ch Change) {
	var domain uint64
	if writer != nil {
		domain = writer.domain
	}
	live.Range(func(k, _ any) bool {
		if c := k.(*Cache); c.domain == domain {
			c.apply(ch)
		}
		return true
	})
}

// SetDomain puts c in domain d: writes through handles whose cache is in
// another domain do not reach it. Every cache is in domain 0 unless set;
// the write observer reaches every cache whatever its domain. It exists for
// tests that run several "processes", each with its own cache, in one test
// binary, so that they meet only through a coherence Source, as real
// processes do.
func (c *Cache) SetDomain(d uint64) { c.domain = d }

func (c *Cache) apply(ch Change) {
	switch {
	case ch.Unknown:
		c.Unsettled(ch.DB, ch.Coll, ch.Deadline)
	case ch.IDs != nil:
		c.InvalidateIDs(ch.DB, ch.Coll, ch.IDs...)
	case ch.Filter != nil:
		c.InvalidateMatching(ch.DB, ch.Coll, ch.Filter)
	default:
		c.Invalidate(ch.DB, ch.Coll)
	}
}
