// Package otel makes OpenTelemetry spans and metrics of what a databridge
// cache does. It is a module of its own, so that the library's go.mod has
// no OpenTelemetry dependency (as go-redis keeps extra/redisotel):
//
//	import dbotel "github.com/databridge-go/databridge/otel"
//
//	c, err := cache.New(cache.Config{Tracer: dbotel.NewTracer()})
//	reg, err := dbotel.RegisterMetrics(c)
//	defer reg.Unregister()
//
// Spans: each cached read (find, count, aggregate with query.Cached) is a
// span "cached {op} {collection}" of kind internal, with the semantic
// conventions' database attributes (db.system.name = mongodb,
// db.namespace, db.collection.name, db.operation.name) and databridge's
// own: databridge.cache.outcome (hit, miss, joined, bypassed),
// databridge.cache.reason (why bypassed or not stored),
// databridge.cache.stored, databridge.cache.rule (precise or
// collection_wide) and databridge.cache.wide_reason (the query shape that
// made it collection-wide), db.response.returned_rows,
// databridge.cache.bytes and databridge.decode.duration (seconds). A miss
// sends its driver commands in the span's context, so a command monitor
// that makes spans from it (otelmongo's) nests the driver's find under the
// read's span; a read that joined another's load (joined) holds a link to
// that read's span, which owns the driver's command. Each write applied
// to the cache is an event "databridge.cache.invalidate" on the writer's
// current span (the caller's, for odm writes and raw driver writes alike),
// with the entries it invalidated by rule, kept and held. Spans and events
// carry names and counts only: never filter values or documents; a failed
// read's span has status Error and error.type set to the error's class
// (cache.ReadEnd.ErrClass: the server's code name, "canceled", …), not its
// message, which a server may fill with the query's values.
//
// Metrics: RegisterMetrics observes cache.Stats as instruments named
// databridge.cache.* (see RegisterMetrics).
package otel
