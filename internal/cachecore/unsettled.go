package cachecore

import (
	"sync/atomic"
	"time"
)

// Writes of unknown outcome: sent, and their reply lost, so the server may
// still apply them until their deadline. Their collection neither hits nor
// fills until then (the unsettled window), and is invalidated again at its
// end.

// unsettledAll reports whether a write of unknown outcome may still be
// changing every collection.
func (c *Cache) unsettledAll() bool {
	s := c.settleAll.Load()
	return s != 0 && time.Now().UnixNano() < s
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
func (c *Cache) unsettled(db, coll string, deadline time.Time, t *tally) {
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
	c.invalidateWide(sp, false, t)
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

// raise sets p to v unless it holds more already.
func raise(p *atomic.Int64, v int64) {
	for {
		old := p.Load()
		if old >= v || p.CompareAndSwap(old, v) {
			return
		}
	}
}
