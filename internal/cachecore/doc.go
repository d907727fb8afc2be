// Package cachecore is the implementation of package cache: the entries,
// their invalidation, the loads and the write observer. Package cache is
// its public face (Cache, Config, Stats, Observer, Source); odm uses the
// rest (Fetch, Key, Begin and End of its writes) from here, so none of it
// is public API.
//
// Two lifecycles meet in it, each under its collection's lock (space.mu):
//
// A load (fetch.go): a cached read misses; Fetch joins a load of the same
// key already running (flight.go's single flight) or starts one. beginLoad
// records the collection's sequence number and registers the load in
// flight; the load runs the driver's command with a context that the
// write observer recognises (observer.go: it marks the load observed,
// notes a lagging read concern, learns which client reads from which
// server); commit then stores the result only if no write applied or in
// flight since beginLoad can have changed it (decide, on the ring of
// writes applied meanwhile and on the writes in flight), the load was
// observed and does not lag. A stored entry (dep.go) records what its
// result depends on and is registered in its collection's indexes
// (space.go).
//
// A write, from Begin to End (bus.go, flight.go, apply.go): odm, or the
// observer for a raw write, reports it to every cache of the process (the
// invalidation bus) before it is sent (Begin: each cache takes its own
// copy of the statements, derives them once, and invalidates the entries
// they may change, as the index walk of walk.go names them and decide
// judges them) and after its reply (End: the statements refined by the
// reply's counts and upserted ids, applied again, and kept in the ring
// for the loads still in flight). A write whose reply is lost is
// unsettled (unsettled.go): its collection neither hits nor fills until
// its deadline. Every change a cache applies is published to its Source
// (another process's caches); what a Source reports comes back through
// the Sink (cache.go) as a Change of its own (change.go, event.go).
package cachecore
