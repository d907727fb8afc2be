package cache

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
// collection once (query.Register, query.From or odm.New at start-up) rather
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
