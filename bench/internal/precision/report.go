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
	fmt.Fprintf(w, "Measured %s by `make bench-precision` (`-writes %d -raw %d`) with %s on %s/%s (%d CPUs); %d orders of %d tenants (Zipf), 4 goroutines, %d%% writes "+
		"(a quarter deletes; %d%% of them raw through the observer, the rest through odm; status and a sorted total changed by _id); "+
		"%d phases of %s per rule, interleaved, each from the same seeded collection and a new cache; TTL %s; %s in all.\n\n",
		time.Now().Format("2006-01-02"), cfg.WritePercent, cfg.RawPercent, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		cfg.Docs, cfg.Tenants, cfg.WritePercent, cfg.RawPercent, cfg.Rounds, cfg.Phase, cfg.TTL, elapsed.Round(time.Second))
	fmt.Fprintln(w, "| query | reads | ideal hit ratio | **precision, pre-images** | precision, rules alone | precision, collection-wide |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	row := func(name string, i, p, c Counts) {
		fmt.Fprintf(w, "| %s | %d | %.3f | **%.3f** | %.3f | %.3f |\n", name, i.Reads, i.IdealRatio(), i.Precision(), p.Precision(), c.Precision())
	}
	var ti, tp, tc Counts
	for _, s := range Shapes {
		i, p, c := deref(sum["pre-images"][s]), deref(sum["precise"][s]), deref(sum["collection-wide"][s])
		row(s, i, p, c)
		for _, x := range []struct {
			t *Counts
			c Counts
		}{{&ti, i}, {&tp, p}, {&tc, c}} {
			x.t.Reads, x.t.Hits, x.t.Ideal = x.t.Reads+x.c.Reads, x.t.Hits+x.c.Hits, x.t.Ideal+x.c.Ideal
		}
	}
	row("**overall**", ti, tp, tc)
	fmt.Fprintf(w, "\nOverall precision per phase: %.3f–%.3f with pre-images, %.3f–%.3f with the rules alone, %.3f–%.3f collection-wide. "+
		"Writes: %d, %d and %d. Precision is the hit ratio over a perfect invalidator's on the same reads; a hit is a read that "+
		"sent no query; an ideal hit is a read a perfect invalidator would have served (its key read within the TTL, its true "+
		"result unchanged since), computed from the benchmark's exact copy of the collection.\n\n",
		lo["pre-images"], hi["pre-images"], lo["precise"], hi["precise"], lo["collection-wide"], hi["collection-wide"],
		writes["pre-images"], writes["precise"], writes["collection-wide"])
	for _, rule := range []string{"pre-images", "precise"} {
		if s := stats[rule]; s != nil {
			fmt.Fprintf(w, "%s, the entries invalidated by each rule (`cache.Stats`): by _id %d, by match %d, by path %d, "+
				"collection-wide %d; kept through a write they were checked against: %d; loads discarded: %d; "+
				"held by a write with a pre-image %d, released %d; writes whose pre-image was used %d.\n\n",
				map[string]string{"pre-images": "With pre-images", "precise": "With the rules alone"}[rule],
				s.byID, s.byMatch, s.byPath, s.wide, s.kept, s.discarded, s.held, s.released, s.preImages)
		}
	}
}

func deref(c *Counts) Counts {
	if c == nil {
		return Counts{}
	}
	return *c
}

type statsSum struct {
	byID, byMatch, byPath, wide, kept, discarded uint64
	held, released, preImages                    uint64
}

func (s *statsSum) add(p Phase) {
	s.byID += p.Stats.InvalidatedByID
	s.byMatch += p.Stats.InvalidatedByMatch
	s.byPath += p.Stats.InvalidatedByPath
	s.wide += p.Stats.InvalidatedWide
	s.kept += p.Stats.Kept
	s.discarded += p.Stats.Discarded
	s.held += p.Stats.Held
	s.released += p.Stats.Released
	s.preImages += p.Stats.PreImages
}
