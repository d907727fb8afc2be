package cachecore

import (
	"slices"
	"sync"
)

// The invalidation bus is how a write made in this process reaches every
// cache that may hold what it changed. It is the one piece of process-wide
// state of the library, and it is deliberate:
//
//   - Every Cache joins the bus in New and leaves it in Close.
//   - Every write the process makes is put on the bus, whoever makes it:
//     an odm handle, with a cache or without one (Begin, End, Apply), and a
//     write of the raw driver or of a transaction, which the command monitor
//     of a cache sees (Cache.Monitor).
//   - Each cache on the bus applies each write to its own entries, with the
//     rules, and publishes it to its Source.
//
// Why every cache, and not only the cache of the handle that wrote: a
// cache cannot tell reliably which deployment a write went to (two clients
// may reach one deployment by different addresses), and a cache that
// misses a write of its namespace serves a stale read. A write therefore
// reaches every cache of the process, and is applied by namespace; the
// rules keep what it cannot have changed. (The Ruby driver's QueryCache is
// process-wide for the same reason.) The cost is a cache's rules run for
// writes to another deployment's collection of the same name.
//
// What a cache stores is as strict: a load is stored only when a command
// monitor of the bus saw its commands (see loadStore), so a client wired
// without one, whose raw writes and transactions the bus cannot see,
// reads through the cache without storing anything.
var bus sync.Map // *Cache → struct{}, between New and Close

func join(c *Cache)  { bus.Store(c, struct{}{}) }
func leave(c *Cache) { bus.Delete(c) }

// onBus calls f for every cache on the bus.
func onBus(f func(c *Cache)) {
	bus.Range(func(k, _ any) bool {
		f(k.(*Cache))
		return true
	})
}

// Apply applies a write's change to every cache on the bus: a write made
// through one handle invalidates the reads of every other, whatever cache
// they use, and each cache publishes it to its Source.
func Apply(ch Change) {
	shared := false
	onBus(func(c *Cache) { c.Apply(ch.own(&shared)) })
}

// Begin reports a write about to be sent, with what it may change (as in
// Apply; its reply is not known yet), to every cache on the bus. The
// caller must End it.
func Begin(ch Change) *Flight {
	f := &Flight{}
	onBus(func(c *Cache) { f.add(c, ch) })
	return f
}

// Watched reports whether a cache on the bus has entries of db.coll, or is
// loading one: when none has, a write need not say what it changed (a
// Change with Wide set is as good, and costs nothing to build).
func Watched(db, coll string) bool {
	watched := false
	bus.Range(func(k, _ any) bool {
		if colls, ok := k.(*Cache).spaces.Load(db); ok {
			if sp, ok := colls.(*sync.Map).Load(coll); ok && sp.(*space).watch.Load() > 0 {
				watched = true
			}
		}
		return !watched
	})
	return watched
}

// own returns ch for one cache: as it is for the first, with a copy of
// its statements for each other (shared is set after the first). Each
// cache derives its own statements: what the rules read from them depends
// on the collection's collation as that cache knows it, and its loads in
// flight read them later.
func (ch Change) own(shared *bool) Change {
	if *shared {
		ch.Stmts = slices.Clone(ch.Stmts)
		for i := range ch.Stmts {
			// What the first cache derived from its copy (in place, before
			// this clone) is by its knowledge of the collection, not this
			// one's.
			ch.Stmts[i].stmtState = stmtState{}
		}
	}
	*shared = true
	return ch
}
