package cache

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/cachecore"
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

// DescribingSource is a Source that carries, with each write of this
// process, what the write changed: its descriptor, which the other
// processes' caches judge with the invalidation rules (Sink.Described)
// instead of invalidating the whole collection. coherence.Log is one.
type DescribingSource interface {
	Source
	// PublishDescribed is Publish with the write's descriptor: its
	// statements and what the server's reply said of them, encoded by
	// the cache (a BSON document, at most MaxDescriptorSize bytes), which
	// the source delivers, unchanged, to the other processes' Sinks. A
	// write that cannot be described is published with Publish. The
	// source owns descriptor; it must not block.
	PublishDescribed(db, coll string, descriptor []byte)
}

// MaxDescriptorSize is the largest descriptor a cache hands its
// DescribingSource, in bytes; a write whose descriptor would be larger
// (an InsertMany of a few hundred small documents) is published with
// Publish, and counted in Stats.Undescribed.
const MaxDescriptorSize = cachecore.MaxDescriptor

// DelaySink is implemented by the Sink a Cache hands its Source: a Source
// whose events say when their writes were published (coherence.Log's do)
// reports, for each event it delivers, how long it took to arrive, by the
// publisher's clock and this process's (clock skew between hosts adds to
// it). The cache passes it to its SourceTracer (SourceEvent.Lag).
type DelaySink interface {
	Sink
	Delayed(d time.Duration)
}

// Sink is the Cache as its Source sees it.
type Sink interface {
	// Invalidate applies a write made by another process to db.coll.
	Invalidate(db, coll string)
	// Described applies a write made by another process to db.coll, as
	// its descriptor (from that process's DescribingSource) says: with
	// the rules, judged by what the descriptor carries only (the write's
	// statements, the server's reply, the pre-image the server returned),
	// never by documents this cache holds, since events may arrive in
	// another order than the server applied the writes. A descriptor
	// this version cannot read (another version, a field it does not
	// know) invalidates the collection. The cache keeps a copy.
	Described(db, coll string, descriptor []byte)
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
