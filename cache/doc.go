// Package cache is databridge's in-process query-result cache, on
// github.com/dgraph-io/ristretto/v2, invalidated by every write made through
// databridge.
//
// # Recommended use
//
// Install [Observer] on the client at connect, create one Cache per
// process, give it to the handles of the collections it caches, and opt in
// per read:
//
//	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(cache.Observer(nil)))
//	c, err := cache.New(cache.Config{MaxCost: 256 << 20}) // 256 MiB of results
//	users, err := odm.New[User](client.Database("app").Collection("users"), odm.WithCache(c))
//
//	team, err := users.FindMany(ctx, query.Eq("team", t), query.Cached(30*time.Second))
//
// Reads without query.Cached never touch the cache. The observer is
// required: a cache stores nothing loaded through a client without it
// (Stats.Unobserved counts those loads), since that client's raw writes
// and transactions could not reach it. Call [Cache.Invalidate] for writes
// made by a path no observer sees (another program).
//
// # The invalidation bus
//
// Every write the process makes reaches every Cache of the process: a
// write through any odm handle (with a cache, or without one) and any
// write the observer sees on any client. Each cache applies it to its own
// entries by namespace, with the rules, and publishes it to its Source.
// This is the one process-wide mechanism of the library, and deliberate: a
// cache cannot tell reliably which deployment a write went to, and a cache
// that missed a write to a collection it holds would serve a stale read.
// A handle reads only through the cache it was given (odm.WithCache).
//
// # Guarantee
//
// After a write through databridge returns (successfully or not, including
// an unordered InsertMany that failed partway), every cached read that
// begins afterwards in the same process sees that write. There is no window:
// the guarantee does not depend on TTLs or on ristretto applying a set or a
// delete in time. The same holds for every write the process's clients
// send, raw driver writes and transactions included (the observer is on
// every client whose loads a cache stores). Writes by other processes are seen when a Source from package
// coherence reports them (Config.Source); writes of other programs that no
// Source or Invalidate call reports, when the entry's TTL runs out.
//
// One exception, with its own bound: a write whose outcome is unknown (it
// was sent, and its reply was lost to a timeout, a cancelled context or a
// network error) may still be running on the server after it returned. odm
// (and the observer) report such a write as unsettled, with the write's
// deadline (odm
// sends every write with one, the caller's or odm.WriteTimeout's, and the
// driver sends it as maxTimeMS, so the server stops the write by then).
// Until that deadline plus Config.SettleMargin (1 s by default), reads of
// the collection neither hit nor fill the cache; then the collection is
// invalidated again, also in other processes through the Source. The bound
// rests on the server enforcing maxTimeMS on writes: MongoDB does; FerretDB
// v1.24 does not, so there set SettleMargin to the longest write you run.
// TestUnsettledWindow and odm's TestUnknownOutcomeWriteLeavesNoStaleEntry
// (an UpdateMany of 1,500 documents with a 100 ms deadline) test it. A raw
// write sent with no time limit has no deadline: its collection neither
// hits nor fills for the longest TTL any entry was stored with, and a
// result stored after that, which the write changes later still, is served
// for at most its own TTL (TestUnsettledNoDeadline, Stats.UnsettledNoDeadline).
//
// A cached load whose command asks for a
// majority or snapshot read concern, or a read preference that may pick a
// secondary, is returned and not stored (Stats.Lagging): it can return data
// older than this process's own last write.
//
// How: a cached entry records what its result depends on (the _ids of
// its documents, the paths its filter, sort and output read, its filter
// compiled by a matcher of MongoDB's semantics) and is registered in its
// collection's indexes. Every write reports, after the server answers, what
// it may have changed (its statements and the reply's counts); the
// invalidation rules mark invalid the entries whose result it can change,
// and only those (docs/caching.md lists the precise queries and the rules;
// whatever they cannot decide is invalidated). A hit checks its entry's
// flag and two counters, so nothing waits on ristretto. A read that started
// before a write and finishes after it (the "stale refill" that defeats
// invalidate-then-delete caches) is decided too: the writes applied while
// it ran are checked against its result before it is stored, and a result
// one of them may have changed is returned but not stored.
// Config.CollectionWideOnly turns the rules off: every write then
// invalidates every cached read of its collection.
//
// Named tests back each part: TestNoStaleReads (the stale-read checker:
// 8 goroutines, every kind of read and write, every quiescent read checked
// against an in-memory copy), TestInvalidationRules (for every rule, a
// write it must survive and one that must drop it),
// TestConcurrentReadsSeeCompletedWrites, TestNoStaleRefill
// (the slow-read interleaving, forced), TestSingleflight (16 identical
// concurrent misses send one find, counted with the command monitor),
// TestChurnStaysWithinMaxCost, TestCallersMayMutateResults and TestTTL.
//
// # Keys
//
// A key is the msgpack encoding of the scope, database, collection,
// filter, sort, projection, collation, hint, skip and limit. The scope
// is one number per *mongo.Collection value: it keeps apart two deployments
// with the same names, and collections with different read preferences or
// read concerns, which the driver gives no way to read back (so the value
// itself is the finest split that is always correct). Make each
// collection's handle once; handles on one collection value share entries.
// Maps are encoded with
// sorted keys, so bson.M filters with the same content share a key whatever
// their iteration order; bson.D keeps its order (it is part of the query);
// every other value is encoded as the exact BSON the driver sends, type byte
// included. So two queries share a key exactly when the server receives the
// same query: int32(1) and int64(1) are different keys (a miss, never a
// wrong hit), as are 1 and 1.0. Ristretto hashes keys to 128 bits (two
// 64-bit hashes); on top of that every hit compares the stored canonical key
// with the requested one, so a hash collision can cost a miss, never return
// another query's result. The Go result type is not part of the key: entries
// hold raw BSON, decoded into the caller's type on each hit.
//
// # Values and their cost
//
// An entry holds the result's documents as raw BSON in one buffer that is
// never written again; its cost is that buffer's size (IgnoreInternalCost is
// set, so MaxCost is bytes of results). A hit decodes the documents with
// package decode into values the caller owns, with zero-copy strings that
// point into the immutable buffer: strings cannot be mutated, and every
// slice, map and pointer is fresh, so callers may modify what they get
// without affecting the cache. For result types holding no slices, maps or
// pointers, the decoded slice is also memoized with the entry (its size
// added to the cost) and a hit is a copy of it.
//
// BenchmarkHit measured the options for 100 small documents (see
// docs/caching.md for the table): raw BSON decoded with zero-copy strings
// about 11 µs, with copied strings 15 µs, msgpack bytes unmarshaled 47 µs,
// a copy of a decoded slice 3 µs (correct only for flat types). Hence raw
// BSON plus decode by default, and the copy for flat types.
//
// # Concurrency
//
// A Cache is safe for concurrent use. N concurrent identical misses share one
// query to the server (singleflight, keyed by the full key). A miss that
// joined a load during which a write came that may change its result loads
// again, so a read that starts after a write never takes the result of a
// load that started before it. A waiter whose own context is done returns at
// once; a waiter whose leader was cancelled retries with its own context.
//
// # Tracing
//
// Config.Tracer sees every cached read (its outcome: hit, miss, joined,
// bypassed; why it was not cached, or runs under the collection-wide rule;
// documents, bytes, decode time), and, if it implements WriteTracer and
// SourceTracer, every write applied with what it invalidated by rule, and
// the Source's state. LogTracer writes them to a log/slog logger; the
// module github.com/databridge-go/databridge/otel makes OpenTelemetry
// spans and metrics of them. Stats counts the same, without names.
package cache
