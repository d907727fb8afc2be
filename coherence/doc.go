// Package coherence keeps the query caches of many processes coherent, by
// sharing invalidations through the MongoDB deployment they already use.
//
// A cache.Cache is coherent within its process: a write through databridge
// invalidates it before the write returns. Services run many replicas, and
// each one's cache must also learn about the others' writes. Give each
// process's cache a Source:
//
//	c, err := cache.New(cache.Config{Source: coherence.NewLog(client.Database("app"))})
//
// Two sources are here:
//
//   - Log (every deployment, standalone servers included): each write
//     through databridge appends a small event to a capped collection, and
//     every process follows it (a tailable, awaitData cursor on MongoDB;
//     polling on FerretDB, whose tailable cursors lose events). It sees
//     writes made through databridge (or announced with Cache.Invalidate)
//     by any process using the same log.
//   - ChangeStream (replica sets and sharded clusters): each process watches
//     a change stream, so writes by any client invalidate, databridge or not.
//
// Both say what each write changed, and the other processes' caches judge
// it with the invalidation rules a local write goes through: a Log event
// carries each write's descriptor (its statements and what the server's
// reply said of them; NamespaceEvents turns that off), a change event the
// inserted or replacing document, the updated fields, and with PreImages
// the document as it was. A remote write is judged only by what its event
// carries, never by the receiver's cached copies of documents, because
// events do not arrive in the order the server applied the writes.
//
// # Guarantee
//
// Bounded staleness across processes: a write made in one process is seen
// by cached reads in the others once its invalidation has arrived, measured
// on loopback at a p99 well under 100 ms for the Log (see docs/caching.md
// for the figures and TestPropagationAcrossProcesses for the measurement).
// There is no silent staleness: when a source may have missed
// invalidations (its cursor was killed, the server restarted, the capped
// collection wrapped past events it had not read, seen as a publisher's
// sequence number that skips to events no longer in the log), the cache is
// flushed before it is used again, counted in cache.Stats.Resyncs, and
// while the source is not following, reads go to the server and nothing is
// cached.
//
// A server that dies or stops answering counts as missed invalidations
// too, within a stated bound: every read of the Log must complete within
// Liveness (1 s by default; a tailing getMore within MaxAwait plus
// Liveness), or the Log reports the loss and the cache flushes and bypasses
// until the Log follows again. So a partitioned process serves hits for at
// most Liveness plus one poll interval after its last read of the log
// (TestReaderNoticesLostServer: blackhole and SIGKILL, each noticed after
// about 1.0 s, with the driver's default 30 s server selection).
//
// A write whose reply was lost (see cache.Cache.Unsettled) is published
// twice: at once, and when the server has surely finished it, so that
// other processes that refilled their caches in between drop those
// entries. Their bound is the write's deadline plus the cache's
// SettleMargin plus the propagation delay.
//
// What it does not cover: with the Log, a process that dies between a write
// and the append of its event (appends are asynchronous: within the 5 ms
// coalescing window of the write, plus the insert itself) leaves the others
// to see that write when their entries' TTL ends; writes that bypass
// databridge are seen by the ChangeStream only.
package coherence
