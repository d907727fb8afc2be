package cachecore

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Live queries: a Watch is woken when a write applied to one of its
// collections may have changed the result it tracks — the same decision
// that invalidates a cached entry (the rules of decide.go), read from the
// entry's dep — or, for a result that is not tracked (not stored: bypassed,
// refused, not observed), when any write is applied there. Its owner then
// reads again (through the cache's single flight) and compares. A Watch
// never patches a result.
//
// Woken means "may have changed": spurious wake-ups are allowed (a write
// the rules cannot decide, any write once the entry was evicted), missed
// ones are not. An entry leaving the cache wakes nothing by itself: the
// owner reads again when the entry expires (Handle.Expires). The owner calls Begin before each read, Track after it with the
// read's Handle; a write applied between the two is seen by Track.

// Watch is one live query's registration in its collections.
type Watch struct {
	c    *Cache
	wake chan struct{}

	regMu sync.Mutex
	sps   []*space // the collections it is registered in

	mu    sync.Mutex // under sp.mu when both are held
	d     *dep       // the tracked result's; nil: any write wakes
	seqs  []uint64   // each space's writes applied when the read began
	epoch uint64
	began bool
}

// Handle is what a read through FetchLive tracks: the dep of the entry
// it was served from or stored in, or nothing.
type Handle struct{ d *dep }

// Expires returns when the tracked result's entry expires (its TTL), or
// the zero time when no entry holds it. A live query reads again then:
// the TTL bounds how long it can miss a write that reaches no cache.
func (h Handle) Expires() time.Time {
	if h.d == nil {
		return time.Time{}
	}
	return h.d.expires
}

// Tracked reports whether the result is tracked by the rules: stored in
// the cache, in a shape they read. An untracked one is woken by any write
// of its collection (a stored result under the collection-wide rule is
// invalidated by any write; one not stored has no entry to decide).
func (h Handle) Tracked() bool { return h.d != nil && h.d.why == WideNone }

// Watch registers a live query of q's collections (and those q.Also
// names). Close it when done.
func (c *Cache) Watch(q Key) *Watch {
	w := &Watch{c: c, wake: make(chan struct{}, 1)}
	w.register(c.space(q.Database, q.Collection))
	for _, ns := range q.Also {
		w.register(c.spaceNS(ns))
	}
	return w
}

func (w *Watch) register(sp *space) {
	w.regMu.Lock()
	if slices.Contains(w.sps, sp) {
		w.regMu.Unlock()
		return
	}
	w.sps = append(w.sps, sp)
	w.regMu.Unlock()
	sp.mu.Lock()
	if sp.watchers == nil {
		sp.watchers = map[*Watch]struct{}{}
	}
	sp.watchers[w] = struct{}{}
	sp.mu.Unlock()
}

// C is woken (one buffered signal: bursts coalesce) when the tracked
// result may have changed.
func (w *Watch) C() <-chan struct{} { return w.wake }

// Begin is called before each read: until Track, any write applied to the
// collections wakes the watch when Track looks.
func (w *Watch) Begin() {
	w.regMu.Lock()
	sps := slices.Clone(w.sps)
	w.regMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d, w.began, w.epoch = nil, true, w.c.epoch.Load()
	w.seqs = w.seqs[:0]
	for _, sp := range sps {
		w.seqs = append(w.seqs, sp.seq.Load())
	}
}

// Track tracks the result of the read begun with Begin, and wakes the
// watch at once if a write applied since Begin may have changed it.
func (w *Watch) Track(h Handle) {
	if h.d != nil {
		for _, a := range h.d.also { // a view's collections, learnt by the read
			w.register(a.sp)
		}
	}
	w.mu.Lock()
	stale := w.staleLocked()
	w.d = h.d
	if h.d != nil {
		stale = stale || !h.d.valid(w.c)
	}
	w.began = false
	w.mu.Unlock()
	if stale {
		w.signal()
	}
}

// staleLocked reports whether a write was applied to the collections since
// Begin (under w.mu; seqs are of the spaces registered at Begin).
func (w *Watch) staleLocked() bool {
	if w.epoch != w.c.epoch.Load() {
		return true
	}
	w.regMu.Lock()
	defer w.regMu.Unlock()
	for i, s := range w.seqs {
		if i < len(w.sps) && w.sps[i].seq.Load() != s {
			return true
		}
	}
	return false
}

func (w *Watch) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close unregisters the watch.
func (w *Watch) Close() {
	w.regMu.Lock()
	sps := w.sps
	w.sps = nil
	w.regMu.Unlock()
	for _, sp := range sps {
		sp.mu.Lock()
		delete(sp.watchers, w)
		sp.mu.Unlock()
	}
}

// notify wakes the watchers of sp whose result a write just applied may
// have changed (under sp.mu, after the write's decisions).
func (sp *space) notify(c *Cache) {
	for w := range sp.watchers {
		w.mu.Lock()
		wake := w.began || w.d == nil || !w.d.valid(c)
		w.mu.Unlock()
		if wake {
			w.signal()
		}
	}
}

// wakeAll wakes every watcher: the Source follows again after it may have
// missed writes, which no later write would show.
func (c *Cache) wakeAll() {
	c.eachSpace(func(sp *space) {
		sp.mu.Lock()
		for w := range sp.watchers {
			w.signal()
		}
		sp.mu.Unlock()
	})
}

// DefaultTTL is the TTL of entries stored without one of their own.
func (c *Cache) DefaultTTL() time.Duration { return c.defaultTTL }

// FetchLive is FetchTraced that also returns what the result's validity
// can be tracked by (see Watch.Track).
func (c *Cache) FetchLive(ctx context.Context, q Key, ttl time.Duration, load LoadFunc, memo *Memo, tr *ReadTrace) (*Result, Handle, error) {
	if tr == nil {
		tr = &ReadTrace{}
	}
	res, err := c.FetchTraced(ctx, q, ttl, load, memo, tr)
	return res, Handle{tr.dep}, err
}
