package cache_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
)

// The differential fuzzer of the invalidation rules. Each round seeds a
// fresh collection with a few random documents made of the values that
// break matchers (1, int64(1) and 1.0; -0.0 and 0; null and missing;
// arrays of scalars and of documents, empty arrays, nested documents,
// mixed types, dates), caches random reads of every shape docs/caching.md
// calls precise, then makes random writes of every kind, half through odm
// and half raw on a client with the observer. After every write, every
// cached read is compared with the same read without the cache: the
// server's answer is the oracle. A difference is a stale read; the round
// is replayed with fewer reads, writes, documents and fields until the
// smallest case that still fails, which is printed.
//
// Where the dev server's answer differs from MongoDB's (docs/ferretdb.md),
// the cache, which decides as MongoDB answers, can be stale against it. On
// FerretDB only, the fuzzer does not generate four of those gaps, and
// excuses the fifth when the server is shown to answer that way on the
// documents of the moment: it is counted and logged as a dev-server gap,
// not failed (difffuzz_gaps_test.go). Every other stale read fails.
//
// The files: difffuzz_test.go, the test and its report;
// difffuzz_gen_test.go and difffuzz_write_test.go, the generation of a
// round's documents, reads and writes; difffuzz_play_test.go, playing a
// round against the server; difffuzz_minimise_test.go, minimisation;
// difffuzz_class_test.go, the classes of stale reads;
// difffuzz_gaps_test.go, the dev server's gaps.
//
// The seed is diffDefaultSeed, so that CI runs the same rounds on every
// commit; DATABRIDGE_DIFF_SEED=random picks one from the clock (`make
// soak` does), and DATABRIDGE_DIFF_SEED=n seed n; the seed is printed
// either way. DATABRIDGE_DIFF_STEPS is the number of writes (default
// diffDefaultSteps; `make soak` makes 20,000), DATABRIDGE_DIFF_ROUND
// replays one round of the seed.

const (
	diffDefaultSeed  = 1
	diffDefaultSteps = 600
	// How many stale rounds of one case are minimised (the rest counted).
	diffMinimisePerCase = 1
	// At most this many replays, and this long, to minimise one case.
	diffMaxReplays  = 400
	diffMinimiseFor = 30 * time.Second
)

// TestDifferentialRules is the differential fuzzer (see above): zero stale
// reads in $DATABRIDGE_DIFF_STEPS writes (default 600), each followed by a
// check of every cached read of its round against the server, but those a
// pinned gap of the dev server explains, and enough of those reads hits
// (the rules kept their entries through the write) that the check means
// something.
func TestDifferentialRules(t *testing.T) {
	if testing.Short() {
		t.Skip("a fuzzer against the server")
	}
	seed, how := diffSeed(t)
	steps := diffEnvInt(t, "DATABRIDGE_DIFF_STEPS", diffDefaultSteps)
	only := diffEnvInt(t, "DATABRIDGE_DIFF_ROUND", -1)
	ferret := testdb.IsFerretDB(t)
	server := "MongoDB"
	if ferret {
		server = "the dev server (FerretDB)"
	}
	t.Logf("seed %d (%s; DATABRIDGE_DIFF_SEED=%d to replay), %d steps, against %s", seed, how, seed, steps, server)
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	run := &diffRun{diffFuzzer: &diffFuzzer{t: t, db: testdb.DBOn(t, cl), ferret: ferret}, seed: seed,
		cases: map[string]*diffCaseStats{}, excused: map[string]*diffCaseStats{}}
	ctx := context.Background()
	var total diffTally
	refused := 0
	start := time.Now()
	for round := int64(0); int64(total.writes) < steps; round++ {
		cs := diffCaseOf(newDiffGen(seed*1_000_003+round, ferret))
		if only >= 0 && round != only {
			if round > only {
				break
			}
			continue
		}
		tl := run.play(ctx, cs, -1)
		total.add(tl)
		refused += len(tl.refused)
		if len(tl.stale) > 0 {
			run.stale(ctx, round, cs, tl)
		}
	}
	t.Logf("%d checked reads (%d after a write, %d of them hits: %.0f%%); %d writes (%d refused by the server); %d reads refused by the server and dropped, %d refused after a write; %s",
		total.checked, total.afterWrite, total.hitsAfterWrite, 100*float64(total.hitsAfterWrite)/float64(max(total.afterWrite, 1)),
		total.writes, total.writeErrs, refused, total.srvRefused, time.Since(start).Round(time.Second))
	cst := total.stats
	t.Logf("cache: hits %d, misses %d, bypassed %d, unsettled %d; invalidated by id %d, match %d, path %d, wide %d; kept %d; discarded %d",
		cst.Hits, cst.Misses, cst.Bypassed, cst.Unsettled, cst.InvalidatedByID, cst.InvalidatedByMatch, cst.InvalidatedByPath, cst.InvalidatedWide, cst.Kept, cst.Discarded)
	t.Logf("pre-images: %d writes carried one; %d entries held, %d released", cst.PreImages, cst.Held, cst.Released)
	for _, gap := range run.excusedOrder {
		st := run.excused[gap]
		t.Logf("excused: dev-server gap %s, docs/ferretdb.md: %d rounds, %d reads", gap, st.rounds, st.reads)
	}
	stale := 0
	for _, cls := range run.order {
		st := run.cases[cls]
		stale += st.reads
		t.Logf("stale: %s: %d rounds, %d reads", cls, st.rounds, st.reads)
	}
	assert.Zero(t, stale, "stale reads")
	if only < 0 {
		assert.Greater(t, float64(total.hitsAfterWrite), 0.25*float64(total.afterWrite), "cached reads after a write that were hits")
		assert.Positive(t, cst.PreImages, "writes with pre-images among the writes")
	}
}

// diffSeed is the run's seed, and where it comes from.
func diffSeed(t *testing.T) (int64, string) {
	switch s := os.Getenv("DATABRIDGE_DIFF_SEED"); s {
	case "":
		return diffDefaultSeed, "the default"
	case "random":
		return time.Now().UnixNano() % 1_000_000_007, "random"
	}
	return diffEnvInt(t, "DATABRIDGE_DIFF_SEED", 0), "DATABRIDGE_DIFF_SEED"
}

// diffEnvInt reads a numeric environment variable, or def.
func diffEnvInt(t *testing.T, name string, def int64) int64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, name)
	return n
}

// diffCaseStats is what the run saw of one class of stale reads.
type diffCaseStats struct {
	rounds, reads, minimised int
	last                     int64 // the last round counted
}

// count counts a stale read of round.
func (st *diffCaseStats) count(round int64) {
	if st.reads == 0 || st.last != round {
		st.rounds++
	}
	st.reads++
	st.last = round
}

// diffRun is a run of the fuzzer: its seed, the stale reads by class, and
// those excused by the dev server's gap that explains them.
type diffRun struct {
	*diffFuzzer
	seed         int64
	cases        map[string]*diffCaseStats
	order        []string
	excused      map[string]*diffCaseStats
	excusedOrder []string
}

// stale deals with the stale reads of a round, one per read: on FerretDB,
// one that a pinned gap explains is counted and logged; any other is
// counted by class, and minimised and reported as a failure unless
// diffMinimisePerCase of its class already were.
func (run *diffRun) stale(ctx context.Context, round int64, cs diffCase, tl diffTally) {
	// Refused reads are dropped from the case that is minimised.
	stale := slices.Clone(tl.stale)
	for _, i := range slices.Backward(tl.refused) {
		cs.reads = slices.Delete(cs.reads, i, i+1)
		for j := range stale {
			if i < stale[j].read {
				stale[j].read--
			}
		}
	}
	rep := run.replay(ctx, cs, stale)
	divs := rep.diverged
	for _, s := range stale {
		if r, gap := run.excuse(rep, cs, s); gap != "" {
			diffStatsOf(run.excused, &run.excusedOrder, gap).count(round)
			var why []string
			for _, d := range diffRelevant(divs, r) {
				why = append(why, d.String())
			}
			run.t.Logf("dev-server gap %s, docs/ferretdb.md (seed %d, round %d), not failed: read %d %s after write %d %s\n  served: %s\n  server: %s\n  %s",
				gap, run.seed, round, r.read+1, cs.reads[r.read], r.write+1, diffWriteAt(cs, r.write),
				diffResult(r.served, r.servedErr), diffResult(r.server, r.srvErr), strings.Join(why, "\n  "))
			continue
		}
		cls := diffClass(cs, s)
		if len(diffRelevant(divs, s)) > 0 {
			if cls == diffClassOther {
				cls = diffClassFilter
			} else {
				cls += " + " + diffClassFilter
			}
		}
		st := diffStatsOf(run.cases, &run.order, cls)
		st.count(round)
		if st.minimised >= diffMinimisePerCase {
			run.t.Logf("stale read (seed %d, round %d): %s", run.seed, round, cls)
			continue
		}
		st.minimised++
		m, ms, replays := run.minimise(ctx, cs, s)
		var notes []string
		for _, d := range diffRelevant(run.replay(ctx, m, []diffStale{ms}).diverged, ms) {
			notes = append(notes, d.String())
		}
		run.t.Errorf("stale read (seed %d, round %d: DATABRIDGE_DIFF_SEED=%d DATABRIDGE_DIFF_ROUND=%d): %s\nminimal case (%d replays):\n%s",
			run.seed, round, run.seed, round, cls, replays, m.report(ms, notes))
	}
}

// diffWriteAt is write i of cs, or "(none)" before any write.
func diffWriteAt(cs diffCase, i int) string {
	if i < 0 {
		return "(none)"
	}
	return cs.writes[i].String()
}

// diffStatsOf is m's entry for key, added (and its key to order) if new.
func diffStatsOf(m map[string]*diffCaseStats, order *[]string, key string) *diffCaseStats {
	st := m[key]
	if st == nil {
		st = &diffCaseStats{}
		m[key] = st
		*order = append(*order, key)
	}
	return st
}

// excuse returns, on FerretDB, the pinned gap of the dev server that
// explains stale read s, with the same stale read in rep, a replay of its
// round; or "". The replay must see it too, and diffExcuse explain it
// there: the divergences are the replay's, and a raw insert with no _id
// gets a new ObjectID in each replay.
func (run *diffRun) excuse(rep diffTally, cs diffCase, s diffStale) (diffStale, string) {
	i := slices.IndexFunc(rep.stale, func(r diffStale) bool { return r.read == s.read && r.write == s.write })
	if !run.ferret || i < 0 {
		return s, ""
	}
	return rep.stale[i], diffExcuse(rep.diverged, cs.reads[s.read], rep.stale[i])
}

// replay replays cs, annotated, up to the last write of stale: its stale
// reads, and where the server's answers to the filters of its reads and
// writes are not internal/match's, and on FerretDB which pinned gap
// explains each.
func (run *diffRun) replay(ctx context.Context, cs diffCase, stale []diffStale) diffTally {
	last := -1
	for _, s := range stale {
		last = max(last, s.write)
	}
	c := cs.clone()
	c.writes = c.writes[:last+1]
	run.annotate = true
	defer func() { run.annotate = false }()
	return run.play(ctx, c, -1)
}

// report is the minimal case, readable.
func (cs diffCase) report(s diffStale, notes []string) string {
	var b strings.Builder
	b.WriteString("  documents:")
	if len(cs.docs) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n")
	for _, d := range cs.docs {
		b.WriteString("    " + diffJSON(d) + "\n")
	}
	for i, rd := range cs.reads {
		mark := ""
		if i == s.read {
			mark = "  <- stale"
		}
		fmt.Fprintf(&b, "  read %d: %s%s\n", i+1, rd, mark)
	}
	for i, w := range cs.writes {
		fmt.Fprintf(&b, "  write %d: %s\n", i+1, w)
	}
	when := "before any write"
	if s.write >= 0 {
		when = "after write " + strconv.Itoa(s.write+1)
	}
	fmt.Fprintf(&b, "  %s, read %d (a cache hit: %v)\n", when, s.read+1, s.hit)
	fmt.Fprintf(&b, "  served: %s\n  server: %s\n", diffResult(s.served, s.servedErr), diffResult(s.server, s.srvErr))
	for _, n := range notes {
		b.WriteString("  note: " + n + "\n")
	}
	return b.String()
}

func diffResult(docs []bson.Raw, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	parts := make([]string, len(docs))
	for i, d := range docs {
		parts[i] = diffJSON(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (rd diffRead) String() string {
	d := bson.D{{Key: "op", Value: rd.op}, {Key: "filter", Value: rd.filter}}
	if rd.op == "aggregate" {
		d = bson.D{{Key: "op", Value: rd.op}, {Key: "pipeline", Value: append(bson.A{bson.D{{Key: "$match", Value: rd.filter}}}, rd.stages...)}}
	}
	for _, e := range []bson.E{{Key: "sort", Value: rd.sort}, {Key: "projection", Value: rd.proj}} {
		if e.Value.(bson.D) != nil {
			d = append(d, e)
		}
	}
	if rd.limit > 0 {
		d = append(d, bson.E{Key: "limit", Value: rd.limit})
	}
	return diffJSON(d)
}

func (w diffWrite) String() string {
	via := "odm"
	if w.raw {
		via = "raw"
	} else if w.pre {
		via = "odm with pre-images"
	}
	d := bson.D{{Key: "via", Value: via}, {Key: "op", Value: w.op}}
	add := func(k string, v any, ok bool) {
		if ok {
			d = append(d, bson.E{Key: k, Value: v})
		}
	}
	add("filter", w.filter, w.filter != nil)
	add("update", w.update, w.update != nil)
	add("doc", w.doc, w.doc != nil)
	add("docs", w.docs, w.docs != nil)
	add("sort", w.sort, w.sort != nil)
	add("upsert", true, w.upsert)
	add("returnAfter", true, w.after)
	add("ordered", false, w.unordered && (w.op == "insertMany" || w.op == "bulkWrite"))
	if w.models != nil {
		ms := bson.A{}
		for _, m := range w.models {
			md := bson.D{{Key: "op", Value: m.op}}
			if m.op != "insertOne" {
				md = append(md, bson.E{Key: "filter", Value: m.filter})
			}
			if m.update != nil {
				md = append(md, bson.E{Key: "update", Value: m.update})
			}
			if m.doc != nil {
				md = append(md, bson.E{Key: "doc", Value: m.doc})
			}
			if m.upsert && !w.upsert {
				md = append(md, bson.E{Key: "upsert", Value: true})
			}
			ms = append(ms, md)
		}
		d = append(d, bson.E{Key: "models", Value: ms})
	}
	return diffJSON(d)
}

// diffJSON is v as canonical extended JSON, which keeps every type.
func diffJSON(v any) string {
	b, err := bson.MarshalExtJSON(v, true, false)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
