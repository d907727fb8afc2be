package cachecore

import (
	"context"
	"errors"
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
// The generation of q's collection is read before load runs, so a result
// loaded while a write was in flight is stored under the old generation,
// which no read that starts after the write can see.
func (c *Cache) Fetch(ctx context.Context, q Key, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	if ttl <= 0 {
		ttl = c.defaultTTL
	}
	st := c.ns(namespace(q.Database, q.Collection))
	var key string
	var err error
	var bbuf [8]uint32 // a point read of up to 8 ids allocates no buckets
	if buckets, ok := pointBuckets(q.Filter, bbuf[:0]); ok && !c.noPointReads {
		// A point read: it depends on the wide writes and on its ids.
		var gbuf [9]uint64
		gens := gbuf[:0]
		gens = append(gens, st.wide.Load()+c.epoch.Load())
		for _, b := range buckets {
			gens = append(gens, st.ids[b].Load())
		}
		key, err = q.canonical(gens...)
	} else if len(q.Also) > 0 {
		// It depends on other collections too: their generations are in
		// its key, and their unsettled writes keep it out of the cache.
		gens := make([]uint64, 1+len(q.Also))
		gens[0] = st.gen.Load() + c.epoch.Load()
		for i, ns := range q.Also {
			dep := c.ns(ns)
			gens[1+i] = dep.gen.Load() + c.epoch.Load()
			if dep.unsettledNow() {
				st = dep // bypass below
			}
		}
		key, err = q.canonical(gens...)
	} else {
		key, err = q.canonical(st.gen.Load() + c.epoch.Load())
	}
	if err != nil {
		return nil, err
	}
	if st.unsettledNow() || c.unsettledAll() {
		// A write of unknown outcome may still be running: neither serve
		// nor store (see Unsettled).
		c.misses.Add(1)
		c.bypassed.Add(1)
		return c.load(ctx, key, 0, load, memo)
	}
	if e, ok := c.rc.Get(key); ok && e.key == key {
		c.hits.Add(1)
		return e.res, nil
	}
	c.misses.Add(1)
	if c.source != nil && !c.synced.Load() {
		// Writes by other processes might go unseen: do not cache.
		c.bypassed.Add(1)
		return c.load(ctx, key, 0, load, memo)
	}
	return c.loadShared(ctx, key, ttl, load, memo)
}

// flight is one load in progress, shared by concurrent misses of one key.
type flight struct {
	done chan struct{}
	res  *Result
	err  error
}

func (c *Cache) loadShared(ctx context.Context, key string, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	for {
		c.mu.Lock()
		if f, ok := c.flights[key]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The leader's own cancellation is not ours: try again.
			if f.err != nil && isContextErr(f.err) && ctx.Err() == nil {
				continue
			}
			return f.res, f.err
		}
		f := &flight{done: make(chan struct{})}
		c.flights[key] = f
		c.mu.Unlock()

		f.res, f.err = c.load(ctx, key, ttl, load, memo)
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

// load runs load and stores its result for ttl; with ttl 0 it only builds
// the result.
func (c *Cache) load(ctx context.Context, key string, ttl time.Duration, load LoadFunc, memo *Memo) (*Result, error) {
	c.loads.Add(1)
	docs, err := load(ctx)
	if err != nil {
		return nil, err
	}
	// One buffer for the whole result: exact accounting, and an immutable
	// home for zero-copy strings decoded from it.
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
	res := &Result{Docs: own}
	cost := int64(size + len(key) + 64)
	if memo != nil {
		v, mcost, err := memo.Build(own)
		if err != nil {
			return nil, err
		}
		res.memoKey, res.memo = memo.Key, v
		cost += mcost
	}
	if ttl > 0 {
		if c.rc.SetWithTTL(key, &entry{key: key, res: res}, cost, ttl) {
			// ristretto applies sets asynchronously; waiting here, on the
			// miss path, where a few µs are nothing next to the round trip,
			// makes the next read of the key a hit (unless it was rejected
			// or evicted for its cost).
			c.rc.Wait()
		} else {
			c.rejected.Add(1)
		}
	}
	return res, nil
}

// Wait blocks until the cache has applied the sets issued before it
// (ristretto buffers them); for tests and benchmarks.
func (c *Cache) Wait() { c.rc.Wait() }
