package cachecore

import (
	"runtime"
	"sync"
	"weak"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// scopes numbers the collection values the cache's handles read through
// (see ScopeOf): weak.Pointer[mongo.Collection] → uint64.
type scopes struct {
	m    sync.Map
	mu   sync.Mutex
	last uint64
}

// ScopeOf returns the Key.Scope of reads through coll in this cache: a
// number of its own for each *mongo.Collection value, for as long as that
// value lives.
//
// A collection value belongs to one client (so one deployment) and carries
// one read preference, read concern and registry, none of which the driver
// lets a caller read back. Scoping by the value is therefore the finest
// split that is always correct: two handles with this cache on the same
// collection value share entries; two values, even for the same namespace,
// do not. Bind each collection's handle once (odm.New at start-up) rather
// than calling db.Collection per request, or every request misses.
// Invalidation is unaffected: it is by namespace, across scopes and caches.
func (c *Cache) ScopeOf(coll *mongo.Collection) uint64 {
	s := &c.scopes
	wp := weak.Make(coll)
	if v, ok := s.m.Load(wp); ok {
		return v.(uint64)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m.Load(wp); ok {
		return v.(uint64)
	}
	s.last++
	s.m.Store(wp, s.last)
	// A new collection at the same address gets another weak pointer, so
	// a scope is never reused; the entry goes with its collection.
	runtime.AddCleanup(coll, func(wp weak.Pointer[mongo.Collection]) { s.m.Delete(wp) }, wp)
	return s.last
}
