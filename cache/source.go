package cache

import "context"

// Source connects a Cache to the other processes that cache the same data:
// it tells them about this process's writes and reports theirs. New runs
// it; Close stops it. Package coherence has two; this interface is the
// integration point for others, and stable.
type Source interface {
	// Publish announces that this process wrote to collection coll of
	// database db. The cache calls it for every write; it must not block.
	Publish(db, coll string)
	// Run reports the other processes' writes to sink until ctx is done.
	// New calls it in a goroutine of its own; Close cancels ctx and waits
	// for it to return.
	Run(ctx context.Context, sink Sink)
}

// Sink is the Cache as its Source sees it.
type Sink interface {
	// Invalidate applies a write made by another process to db.coll.
	Invalidate(db, coll string)
	// Lost reports that the source may have missed writes (its cursor
	// died, its log wrapped, the server went away). The cache invalidates
	// everything and serves every read from the server, storing nothing,
	// until Synced.
	Lost(reason error)
	// Synced reports that the source follows the other processes' writes
	// again (also the first time: a cache with a Source caches nothing
	// before its first Synced).
	Synced()
}
