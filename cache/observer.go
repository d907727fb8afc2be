package cache

import (
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/databridge-go/databridge/internal/cachecore"
)

// Observer returns the command monitor to install on every client whose
// reads a Cache caches, once, at connect:
//
//	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(cache.Observer(nil)))
//
// It is required: a cache stores only results loaded through a client with
// this monitor, because without it a write made with the raw driver (or by
// code that never heard of databridge), or inside a transaction, could
// leave a cached result out of date. A load through a client without it is
// served from the server and not stored (counted in Stats.Unobserved).
// With it, such a write invalidates the cached reads of what it may have
// changed in every cache of the process (the invalidation bus:
// docs/caching.md) and, through each cache's Source, in the other
// processes. It belongs to no cache (one client may serve several, and a
// cache's Source, such as coherence.Log, may need the client first).
//
// next, if not nil, is a monitor you already have: every event is passed on
// to it.
//
// From each command the driver sends, the monitor takes what a write may
// change: insert, update, delete, findAndModify, the client-level bulkWrite
// (its nsInfo), aggregate ending in $out or $merge (its target), drop,
// renameCollection (both names), create and collMod (views), and, as every
// namespace, dropDatabase and applyOps. It invalidates when the command
// succeeds and when it fails; when the reply is lost (a network error, a
// timeout), the write may still be running, and its collection bypasses the
// cache until its maxTimeMS has passed (with no maxTimeMS, for the longest
// TTL of the cache's entries). A failure the server answered (ok: 0) is a
// known outcome. It also watches the commands of cached loads: a load at a
// majority or snapshot read concern, or on a secondary, is not stored, and
// the servers a client loads from tell which cached documents a raw write
// may be judged by (see docs/caching.md, "Images").
//
// Writes inside a transaction (a command with lsid, txnNumber and
// autocommit false) are invalidated when commitTransaction succeeds, not
// before: a read between the write and the commit sees the committed state
// and stays valid until the commit invalidates it. A commit that fails or
// loses its reply is an unknown outcome; abortTransaction drops them.
//
// Reads cost a map lookup of the command name. Writes made through odm are
// put on the bus by odm itself (whether the handle has a cache or not), and
// the monitor leaves them to it, so Stats counts each write once.
func Observer(next *event.CommandMonitor) *event.CommandMonitor { return cachecore.Observer(next) }
