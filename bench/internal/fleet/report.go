package fleet

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/databridge-go/databridge/bench/internal/precision"
	"github.com/databridge-go/databridge/cache"
)

// summary is a configuration's phases summed.
type summary struct {
	shapes                map[string]*precision.Counts
	stale                 map[string]int
	racing, writes        int
	workers, phases       int
	lo, hi                float64 // overall precision's range over the phases
	remote, remotePrecise uint64
	counters              cache.Stats // the workers' counters, summed
	propagation           []time.Duration
	timeouts              int
	logErrors             int
	logError              string
}

func (s *summary) total() precision.Counts {
	var t precision.Counts
	for _, c := range s.shapes {
		t.Reads, t.Hits, t.Ideal = t.Reads+c.Reads, t.Hits+c.Hits, t.Ideal+c.Ideal
	}
	return t
}

func (s *summary) staleHits() int {
	n := 0
	for _, v := range s.stale {
		n += v
	}
	return n
}

func summarize(phases []Phase) map[string]*summary {
	out := map[string]*summary{}
	for _, c := range Configurations {
		out[c.Name] = &summary{shapes: map[string]*precision.Counts{}, stale: map[string]int{}, lo: math.Inf(1)}
	}
	for _, p := range phases {
		s := out[p.Config]
		if s == nil {
			continue
		}
		for name, c := range p.Shapes {
			t := s.shapes[name]
			if t == nil {
				t = &precision.Counts{}
				s.shapes[name] = t
			}
			t.Reads, t.Hits, t.Ideal = t.Reads+c.Reads, t.Hits+c.Hits, t.Ideal+c.Ideal
		}
		for name, n := range p.Stale {
			s.stale[name] += n
		}
		s.racing += p.Racing
		s.writes += p.Writes
		s.workers = p.Workers
		s.phases++
		pr := p.Total().Precision()
		s.lo, s.hi = min(s.lo, pr), max(s.hi, pr)
		for _, st := range p.Stats {
			s.remote += st.Remote
			s.remotePrecise += st.RemotePrecise
			c := &s.counters
			c.Loads += st.Loads
			c.Discarded += st.Discarded
			c.Resyncs += st.Resyncs
			c.Bypassed += st.Bypassed
			c.InvalidatedByID += st.InvalidatedByID
			c.InvalidatedByMatch += st.InvalidatedByMatch
			c.InvalidatedByPath += st.InvalidatedByPath
			c.InvalidatedWide += st.InvalidatedWide
			c.Kept += st.Kept
			c.Held += st.Held
			c.Released += st.Released
			c.PreImages += st.PreImages
		}
		s.propagation = append(s.propagation, p.Propagation...)
		s.timeouts += p.Timeouts
		s.logErrors += p.LogErrors
		s.logError = cmp.Or(s.logError, p.LogError)
	}
	return out
}

// Report writes the results of a run as markdown: per configuration, the
// reads, hit ratios, precision, stale hits, writes, remote invalidations
// and propagation; per query shape, each configuration's precision; and
// the gap between the fleet with descriptor events and one process.
func Report(w io.Writer, cfg Config, phases []Phase, elapsed time.Duration) {
	sum := summarize(phases)
	fmt.Fprintf(w, "Measured %s by `go run ./cmd/precision -fleet %d` (`-writes %d -raw %d`) with %s on %s/%s (%d CPUs); "+
		"%d orders of %d tenants (Zipf); a parent process holds the collection's exact copy and drives 4 goroutines, each sending "+
		"every operation to a worker process picked at random (%d in a fleet); %d%% writes, one at a time (a quarter deletes; %d%% of "+
		"them raw through the observer, the rest through odm); every worker has its own client, cache and handle with pre-images "+
		"(`odm.WithPreImages`), its cache following the phase's own `coherence.Log`; %d phases of %s per configuration, interleaved, "+
		"each from the same seeded collection and with new worker processes; TTL %s; %s in all.\n\n",
		time.Now().Format("2006-01-02"), cfg.Workers, cfg.WritePercent, cfg.RawPercent, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		cfg.Docs, cfg.Tenants, cfg.Workers, cfg.WritePercent, cfg.RawPercent, cfg.Rounds, cfg.Phase, cfg.TTL, elapsed.Round(time.Second))

	fmt.Fprintln(w, "| configuration | processes | reads | hit ratio | ideal hit ratio | **precision** | per phase | stale hits | writes | remote invalidations: by the rules / collection-wide | propagation p50 / p99 (probes) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range Configurations {
		s := sum[c.Name]
		t := s.total()
		remote, prop := "–", "–"
		if c.Fleet {
			remote = fmt.Sprintf("%d / %d", s.remotePrecise, s.remote-s.remotePrecise)
			prop = fmt.Sprintf("%s / %s (%d)", ms(percentile(s.propagation, 0.50), len(s.propagation)),
				ms(percentile(s.propagation, 0.99), len(s.propagation)), len(s.propagation))
			if s.timeouts > 0 {
				prop += fmt.Sprintf(", %d not seen within %s", s.timeouts, PollTimeout)
			}
		}
		span := "–"
		if s.phases > 0 {
			span = fmt.Sprintf("%.3f–%.3f", s.lo, s.hi)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.3f | %.3f | **%.3f** | %s | %d | %d | %s | %s |\n",
			c.Name, s.workers, t.Reads, t.HitRatio(), t.IdealRatio(), t.Precision(), span, s.staleHits(), s.writes, remote, prop)
	}

	one, ns, desc := sum[Configurations[0].Name], sum[Configurations[1].Name], sum[Configurations[2].Name]
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| query | reads, descriptor events | ideal hit ratio, descriptor events | precision, one process | precision, namespace events | **precision, descriptor events** |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	row := func(name string, o, n, d precision.Counts) {
		fmt.Fprintf(w, "| %s | %d | %.3f | %.3f | %.3f | **%.3f** |\n", name, d.Reads, d.IdealRatio(), o.Precision(), n.Precision(), d.Precision())
	}
	for _, shape := range precision.Shapes {
		row(shape, deref(one.shapes[shape]), deref(ns.shapes[shape]), deref(desc.shapes[shape]))
	}
	row("**overall**", one.total(), ns.total(), desc.total())

	fmt.Fprintf(w, "\nGap, fleet with descriptor events − one process: **%+.3f** precision (fleet with namespace events − one process: %+.3f).\n\n",
		desc.total().Precision()-one.total().Precision(), ns.total().Precision()-one.total().Precision())
	fmt.Fprintln(w, "Precision is hits over a perfect invalidator's hits on the same reads. A hit is a read whose worker's cache sent no "+
		"query; an ideal hit is a read the perfect invalidator of that worker would have served (the worker read its key within the TTL, "+
		"and its true result has not changed since), computed from the parent's exact copy of the collection. A stale hit is a hit whose "+
		"result matches none of the states the collection went through while the read ran (the write in flight included): it is "+
		"counted apart, not as a hit: in a fleet, the hits another process serves between a write and the arrival of its event "+
		"(the bounded staleness `coherence.Log` states); in one process, none should be. Remote invalidations are the workers' `cache.Stats` `RemotePrecise` and `Remote` − "+
		"`RemotePrecise`, summed. Propagation: every "+ProbeEvery.String()+" a write by _id is probed; before it, another worker "+
		"caches the order by _id (under a key of its own), and after it reads it until the result changes; the time is from the "+
		"write returning in the writer to the changed result returning in the reader, parent round trips included.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The workers' cache counters (`cache.Stats`), summed, per write of the configuration: where the invalidations came from.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| configuration | loads | discarded | resyncs | bypassed | by _id | by match | by path | wide | kept | held / released | pre-images |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range Configurations {
		s := sum[c.Name]
		k := s.counters
		per := func(v uint64) string { return fmt.Sprintf("%.2f", float64(v)/float64(max(s.writes, 1))) }
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n", c.Name, per(k.Loads), per(k.Discarded), k.Resyncs,
			per(k.Bypassed), per(k.InvalidatedByID), per(k.InvalidatedByMatch), per(k.InvalidatedByPath), per(k.InvalidatedWide),
			per(k.Kept), per(k.Held), per(k.Released), per(k.PreImages))
	}

	var notes []string
	for _, c := range Configurations {
		s := sum[c.Name]
		if n := s.staleHits(); n > 0 {
			var by []string
			for _, shape := range precision.Shapes {
				if s.stale[shape] > 0 {
					by = append(by, fmt.Sprintf("%s %d", shape, s.stale[shape]))
				}
			}
			notes = append(notes, fmt.Sprintf("%s: %d stale hits (%s)", c.Name, n, strings.Join(by, ", ")))
		}
		if s.logErrors > 0 {
			notes = append(notes, fmt.Sprintf("%s: the workers' logs recovered from %d errors (coherence.OnError), such as %q", c.Name, s.logErrors, s.logError))
		}
		if s.racing > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d misses whose result matched no state of the collection", c.Name, s.racing))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s.\n", strings.Join(notes, "; "))
	}
}

func deref(c *precision.Counts) precision.Counts {
	if c == nil {
		return precision.Counts{}
	}
	return *c
}

// percentile returns the nearest-rank q-quantile of ds (0 when empty).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ms formats d in milliseconds, or "–" when there were no samples.
func ms(d time.Duration, samples int) string {
	if samples == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
