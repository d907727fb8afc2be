package cachecore

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

var (
	scopes    sync.Map // weak.Pointer[mongo.Collection] → uint64
	lastScope atomic.Uint64
)

// ScopeOf returns the Key.Scope of reads through coll: a number of its
// own for each *mongo.Collection value, for as long as that value lives.
//
// A collection value belongs to one client (so one deployment) and carries
// one read preference, read concern and registry, none of which the driver
// lets a caller read back. Scoping by the value is therefore the finest
// split that is always correct: two handles on the same collection value
// share entries; two values, even for the same namespace, do not. Bind each
// collection's handle once (odm.New at start-up) rather
// than calling db.Collection per request, or every request misses.
// Invalidation is unaffected: it is by namespace, across scopes.
func ScopeOf(coll *mongo.Collection) uint64 {
	wp := weak.Make(coll)
	if v, ok := scopes.Load(wp); ok {
		return v.(uint64)
	}
	v, loaded := scopes.LoadOrStore(wp, lastScope.Add(1))
	if !loaded {
		// A new collection at the same address gets another weak pointer,
		// so a scope is never reused; the entry goes with its collection.
		runtime.AddCleanup(coll, func(wp weak.Pointer[mongo.Collection]) { scopes.Delete(wp) }, wp)
	}
	return v.(uint64)
}

var attached sync.Map // weak.Pointer[mongo.Collection] → *Cache

// Attach makes c the cache of every handle on coll, and returns it: a
// cache is attached once per collection value, so that its readers and
// writers cannot disagree. When another cache is attached to coll already,
// Attach returns that one and false.
// A closed cache counts as none.
func Attach(coll *mongo.Collection, c *Cache) (*Cache, bool) {
	wp := weak.Make(coll)
	for {
		v, loaded := attached.LoadOrStore(wp, c)
		if !loaded {
			runtime.AddCleanup(coll, func(wp weak.Pointer[mongo.Collection]) { attached.Delete(wp) }, wp)
			return c, true
		}
		prev := v.(*Cache)
		if !prev.isClosed() || attached.CompareAndSwap(wp, prev, c) {
			if prev.isClosed() {
				return c, true
			}
			return prev, prev == c
		}
	}
}

// Attached returns the cache attached to coll, or nil (also when it was
// closed).
func Attached(coll *mongo.Collection) *Cache {
	if v, ok := attached.Load(weak.Make(coll)); ok && !v.(*Cache).isClosed() {
		return v.(*Cache)
	}
	return nil
}
