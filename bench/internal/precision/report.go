package precision

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// Report writes the results of a run as markdown: per query shape and
// overall, the hit ratio, the ideal hit ratio and the precision of each
// rule, summed over its phases, with the overall precision's range over the
// phases; then what the precise rule's counters say.
func Report(w io.Writer, cfg Config, phases []Phase, elapsed time.Duration) {
	sum := map[string]map[string]*Counts{}
	stats := map[string]*statsSum{}
	writes := map[string]int{}
	lo, hi := map[string]float64{}, map[string]float64{}
	for _, p := range phases {
		if sum[p.Rule] == nil {
			sum[p.Rule] = map[string]*Counts{}
			stats[p.Rule] = &statsSum{}
			lo[p.Rule], hi[p.Rule] = 1e9, 0
		}
		for s, c := range p.Shapes {
			t := sum[p.Rule][s]
			if t == nil {
				t = &Counts{}
				sum[p.Rule][s] = t
			}
			t.Reads += c.Reads
			t.Hits += c.Hits
			t.Ideal += c.Ideal
		}
		pr := p.Total().Precision()
		lo[p.Rule], hi[p.Rule] = min(lo[p.Rule], pr), max(hi[p.Rule], pr)
		writes[p.Rule] += p.Writes
		stats[p.Rule].add(p)
	}
	fmt.Fprintf(w, "Measured %s by `make bench-precision` (`-writes %d`) with %s on %s/%s (%d CPUs); %d orders of %d tenants (Zipf), 4 goroutines, %d%% writes "+
		"(a quarter deletes, half raw through the observer; status and a sorted total changed by _id); "+
		"%d phases of %s per rule, interleaved, each from the same seeded collection and a new cache; TTL %s; %s in all.\n\n",
		time.Now().Format("2006-01-02"), cfg.WritePercent, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		cfg.Docs, cfg.Tenants, cfg.WritePercent, cfg.Rounds, cfg.Phase, cfg.TTL, elapsed.Round(time.Second))
	fmt.Fprintln(w, "| query | reads | hit ratio | ideal hit ratio | **precision** | collection-wide: hit ratio | ideal | precision |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	row := func(name string, p, c Counts) {
		fmt.Fprintf(w, "| %s | %d | %.3f | %.3f | **%.3f** | %.3f | %.3f | %.3f |\n", name, p.Reads,
			p.HitRatio(), p.IdealRatio(), p.Precision(), c.HitRatio(), c.IdealRatio(), c.Precision())
	}
	var tp, tc Counts
	for _, s := range Shapes {
		p, c := deref(sum["precise"][s]), deref(sum["collection-wide"][s])
		row(s, p, c)
		tp.Reads, tp.Hits, tp.Ideal = tp.Reads+p.Reads, tp.Hits+p.Hits, tp.Ideal+p.Ideal
		tc.Reads, tc.Hits, tc.Ideal = tc.Reads+c.Reads, tc.Hits+c.Hits, tc.Ideal+c.Ideal
	}
	row("**overall**", tp, tc)
	fmt.Fprintf(w, "\nOverall precision per phase: %.3f–%.3f with the rules, %.3f–%.3f collection-wide. Writes: %d and %d. "+
		"A hit is a read that sent no query; an ideal hit is a read a perfect invalidator would have served (its key read "+
		"within the TTL, its true result unchanged since), computed from the benchmark's exact copy of the collection.\n\n",
		lo["precise"], hi["precise"], lo["collection-wide"], hi["collection-wide"], writes["precise"], writes["collection-wide"])
	if s := stats["precise"]; s != nil {
		fmt.Fprintf(w, "With the rules, the entries invalidated by each rule (`cache.Stats`): by _id %d, by match %d, by path %d, "+
			"collection-wide %d; kept through a write they were checked against: %d; loads discarded: %d.\n",
			s.byID, s.byMatch, s.byPath, s.wide, s.kept, s.discarded)
	}
}

func deref(c *Counts) Counts {
	if c == nil {
		return Counts{}
	}
	return *c
}

type statsSum struct{ byID, byMatch, byPath, wide, kept, discarded uint64 }

func (s *statsSum) add(p Phase) {
	s.byID += p.Stats.InvalidatedByID
	s.byMatch += p.Stats.InvalidatedByMatch
	s.byPath += p.Stats.InvalidatedByPath
	s.wide += p.Stats.InvalidatedWide
	s.kept += p.Stats.Kept
	s.discarded += p.Stats.Discarded
}
