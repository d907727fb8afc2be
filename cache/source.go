package cache

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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
	// ChangeEvent applies a change-stream event of a write to documents
	// (insert, update, replace, delete: the server's event document as
	// the driver returns it) with the rules this process's own writes
	// go through: entries the write cannot have changed are kept. An
	// event the rules cannot read invalidates its collection, or, without
	// a namespace, everything. The cache keeps a copy: the caller may reuse
	// event's bytes when it returns.
	ChangeEvent(event bson.Raw)
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
