package otel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/databridge-go/databridge/cache"
)

// RegisterMetrics observes c's counters (cache.Stats, read once per
// collection) as instruments of the meter of WithMeterProvider (default:
// the global one), until the registration is unregistered:
//
//   - databridge.cache.reads{outcome=hit|miss}, databridge.cache.loads,
//     databridge.cache.hit_ratio (gauge, 0..1);
//   - databridge.cache.usage (bytes held), databridge.cache.limit (bytes,
//     Config.MaxCost), databridge.cache.evictions;
//   - databridge.cache.applied (writes and events applied),
//     databridge.cache.invalidations{rule=id|match|path|wide},
//     databridge.cache.kept;
//   - databridge.cache.not_stored{reason=discarded|lagging|unobserved|rejected},
//     databridge.cache.bypassed, databridge.cache.unsettled (writes of
//     unknown outcome);
//   - databridge.cache.wide_loads{reason=…} (loads under the
//     collection-wide rule, by the query shape: cache.WideReason);
//   - databridge.cache.held, databridge.cache.released,
//     databridge.cache.pre_images;
//   - with a Source: databridge.cache.remote{precise=true|false},
//     databridge.cache.resyncs, databridge.cache.synced (gauge, 0 or 1),
//     databridge.cache.described{described=true|false}.
//
// Every measurement carries WithAttributes' attributes (name each cache
// when there are several).
func RegisterMetrics(c *cache.Cache, opts ...Option) (metric.Registration, error) {
	cfg := newConfig(opts)
	m := cfg.mp.Meter(ScopeName)
	var err error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		if err != nil {
			return nil
		}
		var in metric.Int64ObservableCounter
		in, err = m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return in
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		if err != nil {
			return nil
		}
		var in metric.Int64ObservableGauge
		in, err = m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return in
	}
	reads := counter("databridge.cache.reads", "{read}", "Cached reads, by outcome (hit: served from the cache; miss: from the server).")
	loads := counter("databridge.cache.loads", "{query}", "Queries sent to the server on misses.")
	usage := gauge("databridge.cache.usage", "By", "Bytes of results held.")
	limit := gauge("databridge.cache.limit", "By", "The cache's byte budget (Config.MaxCost).")
	evictions := counter("databridge.cache.evictions", "{entry}", "Entries evicted: to make room, or in the periodic sweep of expired entries.")
	applied := counter("databridge.cache.applied", "{change}", "Writes of this process, events of others, Invalidate and InvalidateAll calls applied.")
	invalidations := counter("databridge.cache.invalidations", "{entry}", "Entries invalidated, by rule.")
	kept := counter("databridge.cache.kept", "{entry}", "Entries a write was checked against and left valid.")
	notStored := counter("databridge.cache.not_stored", "{load}", "Loads returned to their caller and not stored, by reason.")
	bypassed := counter("databridge.cache.bypassed", "{read}", "Reads served from the server without storing (unsettled write, Source not following).")
	unsettled := counter("databridge.cache.unsettled", "{write}", "Writes whose reply was lost.")
	wideLoads := counter("databridge.cache.wide_loads", "{load}", "Loads under the collection-wide rule, by the query shape that put them there.")
	held := counter("databridge.cache.held", "{entry}", "Entries held by a write carrying a pre-image.")
	released := counter("databridge.cache.released", "{entry}", "Held entries its pre-image showed unchanged.")
	preImages := counter("databridge.cache.pre_images", "{write}", "Writes judged by the server's pre-image.")
	remote := counter("databridge.cache.remote", "{event}", "Other processes' writes applied, precise (by the rules) or not (by collection).")
	resyncs := counter("databridge.cache.resyncs", "{flush}", "Times the Source lost its place and the cache was flushed.")
	synced := gauge("databridge.cache.synced", "1", "1 while the Source follows the other processes' writes (or there is none).")
	described := counter("databridge.cache.described", "{write}", "Writes published to the Source with their descriptor, or by collection only.")
	var ratio metric.Float64ObservableGauge
	if err == nil {
		ratio, err = m.Float64ObservableGauge("databridge.cache.hit_ratio", metric.WithUnit("1"), metric.WithDescription("Hits/(hits+misses) since the cache was made."))
	}
	if err != nil {
		return nil, err
	}
	base := metric.WithAttributes(cfg.attrs...)
	with := func(kv ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributes(append(kv, cfg.attrs...)...)
	}
	outcomeHit, outcomeMiss := with(attribute.String("outcome", "hit")), with(attribute.String("outcome", "miss"))
	rules := [4]metric.ObserveOption{with(attribute.String("rule", "id")), with(attribute.String("rule", "match")),
		with(attribute.String("rule", "path")), with(attribute.String("rule", "wide"))}
	reasons := [4]metric.ObserveOption{with(attribute.String("reason", "discarded")), with(attribute.String("reason", "lagging")),
		with(attribute.String("reason", "unobserved")), with(attribute.String("reason", "rejected"))}
	var wide []metric.ObserveOption
	for w := cache.WideReason(1); w.String() != "unknown"; w++ {
		wide = append(wide, with(attribute.String("reason", w.String())))
	}
	precise, byName := with(attribute.Bool("precise", true)), with(attribute.Bool("precise", false))
	desc, undesc := with(attribute.Bool("described", true)), with(attribute.Bool("described", false))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := c.Stats()
		o.ObserveInt64(reads, int64(s.Hits), outcomeHit)
		o.ObserveInt64(reads, int64(s.Misses), outcomeMiss)
		o.ObserveFloat64(ratio, s.HitRatio(), base)
		o.ObserveInt64(loads, int64(s.Loads), base)
		o.ObserveInt64(usage, s.UsedBytes, base)
		o.ObserveInt64(limit, s.MaxBytes, base)
		o.ObserveInt64(evictions, int64(s.Evictions), base)
		o.ObserveInt64(applied, int64(s.Applied), base)
		for i, n := range [4]uint64{s.InvalidatedByID, s.InvalidatedByMatch, s.InvalidatedByPath, s.InvalidatedWide} {
			o.ObserveInt64(invalidations, int64(n), rules[i])
		}
		o.ObserveInt64(kept, int64(s.Kept), base)
		for i, n := range [4]uint64{s.Discarded, s.Lagging, s.Unobserved, s.Rejected} {
			o.ObserveInt64(notStored, int64(n), reasons[i])
		}
		o.ObserveInt64(bypassed, int64(s.Bypassed), base)
		o.ObserveInt64(unsettled, int64(s.Unsettled), base)
		for i, opt := range wide {
			o.ObserveInt64(wideLoads, int64(s.WideLoads[i+1]), opt)
		}
		o.ObserveInt64(held, int64(s.Held), base)
		o.ObserveInt64(released, int64(s.Released), base)
		o.ObserveInt64(preImages, int64(s.PreImages), base)
		o.ObserveInt64(remote, int64(s.RemotePrecise), precise)
		o.ObserveInt64(remote, int64(s.Remote-s.RemotePrecise), byName)
		o.ObserveInt64(resyncs, int64(s.Resyncs), base)
		up := int64(0)
		if s.Synced {
			up = 1
		}
		o.ObserveInt64(synced, up, base)
		o.ObserveInt64(described, int64(s.Described), desc)
		o.ObserveInt64(described, int64(s.Undescribed), undesc)
		return nil
	}, reads, ratio, loads, usage, limit, evictions, applied, invalidations, kept, notStored, bypassed, unsettled,
		wideLoads, held, released, preImages, remote, resyncs, synced, described)
}
