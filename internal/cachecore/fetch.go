package cachecore

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// LoadFunc runs a query on a miss and returns its documents. The cache
// copies them, so they may point into driver buffers.
type LoadFunc func(ctx context.Context) ([]bson.Raw, error)

// Fetch returns the cached result of q, or runs load and caches its result
// for ttl (the cache's DefaultTTL when ttl is 0), with memo's value when memo
// is not nil. Concurrent misses of the same query share one load. The
// result is shared with the cache and must not be modified.
//
// A hit is served only while its entry is valid: no write applied since
// its load began could change it (the rules of decide.go), and no
// collection-wide invalidation, InvalidateAll or unsettled write came
// between. A write applied while the load is in flight is decided against
// the loaded result before it is stored (see beginLoad and commit).
func (c *Cache) Fetch(ctx context.Context, q Key, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	return c.FetchTraced(ctx, q, ttl, load, memo, nil)
}

// FetchTraced is Fetch, recording in tr (when not nil) what the read did:
// its outcome, why it was bypassed or not stored, why its result is under
// the collection-wide rule, and its documents and bytes.
func (c *Cache) FetchTraced(ctx context.Context, q Key, ttl time.Duration, load LoadFunc, memo *Memo, tr *ReadTrace) (*Result, error) {
	if ttl <= 0 {
		ttl = c.defaultTTL
	}
	key, err := q.canonical()
	if err != nil {
		return nil, err
	}
	sp := c.space(q.Database, q.Collection)
	if c.unsettledFor(sp, q.Also) {
		// A write of unknown outcome may still be running: neither serve
		// nor store (see unsettled).
		c.misses.Add(1)
		c.bypassed.Add(1)
		return c.bypass(ctx, key, load, memo, tr, WhyUnsettled)
	}
	if e, ok := c.rc.Get(key); ok && e.key == key && e.dep.valid(c) {
		c.hits.Add(1)
		if tr != nil {
			tr.Outcome, tr.Wide, tr.dep = OutcomeHit, e.dep.why, e.dep
			tr.Docs, tr.Bytes = len(e.res.Docs), e.res.bytes
		}
		return e.res, nil
	}
	c.misses.Add(1)
	if c.source != nil && !c.synced.Load() {
		// Writes by other processes might go unseen: do not cache.
		c.bypassed.Add(1)
		return c.bypass(ctx, key, load, memo, tr, WhyNotSynced)
	}
	sh, err := c.shapeOf(ctx, sp, q)
	if err != nil {
		// What the collection is (a view of what?) is not known: the
		// rules cannot say which writes change the result.
		c.bypassed.Add(1)
		return c.bypass(ctx, key, load, memo, tr, WhyShape)
	}
	if sh.View {
		q.Also = append(slices.Clip(q.Also), sh.Reads...)
	}
	q.Simple = q.Simple && sh.Simple && !sh.View
	return c.loadShared(ctx, q, sp, key, ttl, load, memo, tr)
}

// bypass serves a read from the server, storing nothing.
func (c *Cache) bypass(ctx context.Context, key string, load LoadFunc, memo *Memo, tr *ReadTrace, why Why) (*Result, error) {
	res, err := c.build(ctx, key, load, memo)
	if tr != nil {
		tr.Outcome, tr.Why = OutcomeBypassed, why
		tr.setResult(res)
	}
	return res, err
}

func (tr *ReadTrace) setResult(res *Result) {
	if res != nil {
		tr.Docs, tr.Bytes = len(res.Docs), res.bytes
	}
}

// shapeOf returns what q's collection is: asked with q.Shape once, and
// again after each Drop change of the collection.
func (c *Cache) shapeOf(ctx context.Context, sp *space, q Key) (Shape, error) {
	if q.Shape == nil || c.wideOnly {
		return Shape{}, nil
	}
	drops := sp.drops.Load()
	if at := sp.shape.Load(); at != nil && at.drops == drops {
		return at.Shape, nil
	}
	sh, err := q.Shape(ctx)
	if err != nil {
		return Shape{}, err
	}
	sp.mu.Lock()
	if sp.drops.Load() == drops { // no drop, create or rename came between
		sp.shape.Store(&shapeAt{Shape: sh, drops: drops})
		sp.simple.Store(sh.Simple && !sh.View)
	}
	sp.mu.Unlock()
	return sh, nil
}

// unsettledFor reports whether a write of unknown outcome may still be
// running in sp or in one of the collections of also.
func (c *Cache) unsettledFor(sp *space, also []string) bool {
	if sp.unsettledNow() || c.unsettledAll() {
		return true
	}
	for _, ns := range also {
		if c.spaceNS(ns).unsettledNow() {
			return true
		}
	}
	return false
}

// flight is one load in progress, shared by concurrent misses of one key.
type flight struct {
	done chan struct{}
	res  *Result
	err  error
	// ok: the result was stored, and no write had invalidated it when the
	// load ended; a miss that joined the load may use it then only, and
	// only while dep, its entry's, is still valid.
	ok  bool
	dep *dep
	// ctx is the leader's context, when the cache has a tracer: a joined
	// read's trace links to it.
	ctx context.Context
}

func (c *Cache) loadShared(ctx context.Context, q Key, sp *space, key string, ttl time.Duration, load LoadFunc, memo *Memo, tr *ReadTrace) (*Result, error) {
	joined := false
	for {
		c.mu.Lock()
		if f, ok := c.flights[key]; ok {
			c.mu.Unlock()
			if c.joining != nil {
				c.joining()
			}
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			switch {
			case f.err != nil && isContextErr(f.err) && ctx.Err() == nil:
				continue // the leader's own cancellation is not ours: try again
			case f.err == nil && (!f.ok || !f.dep.valid(c)) && !joined:
				// A write came while the load ran, or after it ended and
				// before the flight was removed (TestJoinAfterAWrite), and
				// this miss may have started after it: load again. The next
				// flight began after this miss did (this one was removed
				// before it ended), so its result is current for it,
				// whatever comes.
				joined = true
				continue
			}
			if tr != nil {
				tr.Outcome, tr.Leader = OutcomeJoined, f.ctx
				tr.setResult(f.res)
				if f.dep != nil {
					tr.Wide = f.dep.why
					if f.ok {
						tr.dep = f.dep
					}
				}
			}
			return f.res, f.err
		}
		f := &flight{done: make(chan struct{})}
		if tr != nil {
			f.ctx = ctx
		}
		c.flights[key] = f
		c.mu.Unlock()

		f.res, f.dep, f.ok, f.err = c.loadStore(ctx, q, sp, key, ttl, load, memo, tr)
		if c.afterLoad != nil {
			c.afterLoad()
		}
		c.mu.Lock()
		delete(c.flights, key)
		c.mu.Unlock()
		close(f.done)
		return f.res, f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// loadStore runs load between beginLoad and commit, and stores the result when
// commit accepts it; ok reports whether it was stored, valid.
func (c *Cache) loadStore(ctx context.Context, q Key, sp *space, key string, ttl time.Duration, load LoadFunc, memo *Memo, tr *ReadTrace) (res *Result, d *dep, ok bool, err error) {
	why := WhyNone
	if tr != nil {
		defer func() {
			tr.Outcome, tr.Why, tr.Stored, tr.Wide = OutcomeMiss, why, ok, d.why
			tr.setResult(res)
			if ok {
				tr.dep = d
			}
		}()
	}
	d = c.beginLoad(q, sp, key)
	lctx, ld := loading(ctx, q.Client)
	res, err = c.build(lctx, key, load, memo)
	if err != nil {
		c.abandon(d)
		why = WhyError
		return nil, d, false, err
	}
	if !ld.observed.Load() {
		// No monitor of the bus saw its commands: the raw writes and the
		// transactions of its client never reach the bus, so nothing it
		// read may be stored (see bus.go).
		c.abandon(d)
		c.unobserved.Add(1)
		why = WhyUnobserved
		return res, d, false, nil
	}
	if ld.lagging.Load() {
		// Its read concern or preference may have read data older than
		// this process's last write: returned, never stored.
		c.abandon(d)
		c.lagging.Add(1)
		why = WhyLagging
		return res, d, false, nil
	}
	d.analyse(q, res.Docs, c.wideOnly)
	if d.why != WideNone {
		c.wideLoads[d.why].Add(1)
	}
	if !c.commit(d) {
		c.discarded.Add(1)
		why = WhyDiscarded
		return res, d, false, nil
	}
	cost := int64(len(key) + 64)
	for _, doc := range res.Docs {
		cost += int64(len(doc))
	}
	cost += res.memoCost
	// ristretto applies sets asynchronously; waiting here, on the miss
	// path, where a few µs are nothing next to the round trip, makes the
	// next read of the key a hit (unless its admission policy refuses it).
	raise(&c.maxTTL, int64(ttl)) // the longest an entry may live (see unsettled)
	d.expires = time.Now().Add(ttl)
	stored := false
	open := c.ristretto(func() {
		if stored = c.rc.SetWithTTL(key, &entry{key: key, res: res, dep: d}, cost, ttl); stored {
			c.rc.Wait()
		}
	})
	if !stored {
		if open {
			c.rejected.Add(1) // dropped from ristretto's full buffer
		}
		sp.mu.Lock()
		sp.unregister(d)
		sp.mu.Unlock()
		why = WhyRejected
		return res, d, false, nil
	}
	if ok = d.valid(c); !ok {
		why = WhyDiscarded
	}
	return res, d, ok, nil
}

// ristretto runs f, which sets, deletes or waits in ristretto, unless the
// cache is closed (reporting whether it ran): ristretto's Set, Del and
// Wait panic or block once it is closed, and a load or a write may end
// after Close (TestCloseWhileLoading).
func (c *Cache) ristretto(f func()) bool {
	c.rcMu.RLock()
	defer c.rcMu.RUnlock()
	if c.isShut.Load() {
		return false
	}
	f()
	return true
}

// beginLoad starts a load of the entry key: from here until commit, every write
// applied to its collection is kept for commit to decide on.
func (c *Cache) beginLoad(q Key, sp *space, key string) *dep {
	d := &dep{sp: sp, key: key, epoch: c.epoch.Load(), client: q.Client}
	for _, ns := range q.Also {
		a := c.spaceNS(ns)
		d.also = append(d.also, alsoDep{sp: a, seq: a.seq.Load()})
	}
	sp.mu.Lock()
	sp.inflight++
	sp.recount()
	d.seq0 = sp.seq.Load()
	d.wide = sp.wide.Load()
	sp.mu.Unlock()
	return d
}

// abandon ends a load that failed.
func (c *Cache) abandon(d *dep) {
	sp := d.sp
	sp.mu.Lock()
	sp.done()
	sp.mu.Unlock()
}

// commit ends a load: it accepts the result, and registers d in its
// collection's indexes, when no write applied since begin can have changed
// it (decided by the rules against the loaded result); it refuses it
// otherwise.
func (c *Cache) commit(d *dep) bool {
	sp := d.sp
	sp.mu.Lock()
	defer sp.mu.Unlock()
	ok := d.seq0 >= sp.floor && d.wide == sp.wide.Load() && d.epoch == c.epoch.Load()
	for i := len(sp.ring) - 1; ok && i >= 0 && sp.ring[i].seq > d.seq0; i-- {
		a := sp.ring[i]
		if a.ch == nil {
			ok = false
			break
		}
		for j := range a.ch.Stmts {
			s := &a.ch.Stmts[j]
			if decide(s, d) != keep {
				ok = false
				break
			}
		}
	}
	// A write in flight (sent, its reply not yet applied) may have run
	// before or after the load's read: the result is stored only if the
	// write cannot change it, or, for a write that will carry a
	// pre-image, held by it (as Begin holds an entry) for its End to
	// decide.
	var holders []*flying
	for _, w := range sp.flying {
		if !ok {
			break
		}
		if w.wide {
			ok = false
			break
		}
		for j := range w.stmts {
			switch r := decide(&w.stmts[j], d); {
			case r == keep:
			case w.hold && r != ruleID && d.filter != nil:
				holders = append(holders, w)
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
	}
	for _, a := range d.also {
		ok = ok && a.seq == a.sp.seq.Load() && !a.sp.writing()
	}
	sp.done()
	if ok {
		sp.register(d)
		for _, w := range holders {
			d.held.Add(1)
			w.held = append(w.held, d)
			c.held.Add(1)
		}
	}
	return ok
}

// done ends one load in flight (under mu); the ring is emptied when none
// is left.
func (sp *space) done() {
	sp.inflight--
	sp.recount()
	if sp.inflight == 0 {
		clear(sp.ring)
		sp.ring, sp.stmts = sp.ring[:0], 0
	}
}

// build runs load and copies its documents into one buffer: exact
// accounting, and an immutable home for zero-copy strings decoded from it.
func (c *Cache) build(ctx context.Context, key string, load LoadFunc, memo *Memo) (*Result, error) {
	c.loads.Add(1)
	docs, err := load(ctx)
	if err != nil {
		return nil, err
	}
	size := 0
	for _, d := range docs {
		size += len(d)
	}
	buf := make([]byte, 0, size)
	own := make([]bson.Raw, len(docs))
	for i, d := range docs {
		start := len(buf)
		buf = append(buf, d...)
		own[i] = bson.Raw(buf[start:len(buf):len(buf)])
	}
	res := &Result{Docs: own, bytes: size}
	if memo != nil {
		v, mcost, err := memo.Build(own)
		if err != nil {
			return nil, err
		}
		res.memoKey, res.memo, res.memoCost = memo.Key, v, mcost
	}
	return res, nil
}

// Wait blocks until the cache has applied the sets issued before it
// (ristretto buffers them); for tests and benchmarks.
func (c *Cache) Wait() { c.ristretto(c.rc.Wait) }
