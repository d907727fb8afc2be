package cachecore

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/match"
)

// TestIndexNamesEveryAffectedEntry is a randomized oracle of the
// invalidation indexes. The rule that says which entries a write can change
// lives in three places: decide (the rule itself), register (which indexes
// hold an entry) and candidates (which indexes a write looks in). A write
// looks only at the candidates, so an entry that decide would invalidate
// and the indexes never name is served stale; only a server test that
// happened to build that entry would notice. The property checked: for
// every statement, each live entry for which decide says anything but keep
// is visited by candidates.
//
// Each round builds one collection's entries through Fetch (so the
// analysis and registration are production's), with random finds (filters
// over a, b, c and n.x, _id equalities, sorts with limits full and not,
// projections), counts and $match-first aggregations, each with a random
// result drawn from a small set of documents whose values collide across
// types (int32, int64 and double; null and missing; arrays of scalars and
// of documents). Random statements (inserts, updates by _id and by filter
// with every update operator and pipelines, upserts, replacements,
// deletes, with and without reply facts and images) are interleaved with
// more loads; in half the rounds each statement is then applied through
// decideAll, so that the indexes are checked after entries leave them too.
//
// It bites: each of eleven faults planted in candidates, register and
// the value keys (a delete that skips the counts; the entries of unknown
// ids never visited; the equality-only entries skipped for a path below
// their field, or for any $unset; only an array's first element looked
// up; an inserted array taken as a missing field; numbers keyed by BSON
// type; aggregation outputs not indexed; an upsert of unknown outcome
// taken as none; only a write's first _id; a dotted $set taken as its
// field's) failed it within 700 rounds for each of eight seeds. The
// default runs 2,000.
//
// DATABRIDGE_ORACLE_ROUNDS sets the number of rounds (default
// oracleRounds); DATABRIDGE_ORACLE_SEED the seed of the first round
// (default: the clock). A failure names the seed that replays its round
// alone.
func TestIndexNamesEveryAffectedEntry(t *testing.T) {
	rounds := oracleEnvInt(t, "DATABRIDGE_ORACLE_ROUNDS", oracleRounds)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DATABRIDGE_ORACLE_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "DATABRIDGE_ORACLE_SEED")
	}
	c := newTestCache(t, Config{})
	var st oracleStats
	for round := range rounds {
		o := &oracle{t: t, c: c, seed: seed + uint64(round), stats: &st}
		o.run(fmt.Sprintf("r%d", round))
	}
	t.Logf("%d rounds from seed %d: %d statements checked against %d entries; decide invalidated %v (id, match, path, wide); "+
		"candidates left out %d (each one kept by decide)", rounds, seed, st.stmts, st.checked, st.rules[ruleID:], st.checked-st.visited)
	if rounds >= 100 {
		// Not vacuous: statements met entries that every rule invalidates.
		for r := ruleID; r <= ruleWide; r++ {
			assert.NotZero(t, st.rules[r], "no statement invalidated by %s", oracleRuleName(r))
		}
	}
}

// oracleRounds runs in about 4 s under -race on two busy cores (0.8 s
// without -race).
const oracleRounds = 2000

func oracleEnvInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, name)
	return n
}

type oracleStats struct {
	stmts, checked, visited int
	rules                   [ruleWide + 1]int
}

// oracle is one round: one collection, its entries and statements.
type oracle struct {
	t       *testing.T
	c       *Cache
	seed    uint64
	r       *rand.Rand
	stats   *oracleStats
	univ    []bson.D               // the documents results are drawn from; univ[i] has _id i+1
	univRaw []bson.Raw             // and encoded
	palette []any                  // the scalars the round draws most
	entries map[string]oracleEntry // by canonical key
}

// oracleEntry is a cached query as the round made it.
type oracleEntry struct {
	q    Key
	docs []bson.Raw
}

// run plays one round in collection coll.
func (o *oracle) run(coll string) {
	o.r = rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	o.entries = map[string]oracleEntry{}
	o.palette = make([]any, 4)
	for i := range o.palette {
		o.palette[i] = oracleScalars[o.r.IntN(len(oracleScalars))]
	}
	o.univ, o.univRaw = make([]bson.D, 6), make([]bson.Raw, 6)
	for i := range o.univ {
		o.univ[i] = o.doc(i + 1)
		o.univRaw[i] = o.raw(o.univ[i])
	}
	shape := simpleShape
	switch o.r.IntN(10) {
	case 0:
		shape = nil // a collection of unknown collation
	case 1:
		shape = func(context.Context) (Shape, error) { return Shape{}, nil } // a default collation
	}
	apply := o.r.IntN(2) == 0
	for range 3 + o.r.IntN(6) {
		o.fetch(coll, shape)
	}
	for range 8 + o.r.IntN(16) {
		if o.r.IntN(6) == 0 {
			o.fetch(coll, shape)
			continue
		}
		o.check(coll, o.stmt(), apply)
	}
}

// check runs the oracle for one statement in coll (failing the test on a
// miss), then applies it when apply is set.
func (o *oracle) check(coll string, s Stmt, apply bool) {
	if s.NoChange {
		return // decideAll passes over it: nothing to visit
	}
	orig := s // not derived: for the report
	sp := o.c.space("db", coll)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if misses := o.missed(sp, &s); len(misses) > 0 {
		o.report(coll, sp.simple.Load(), misses, orig)
	}
	if apply {
		o.c.decideAll(sp, []Stmt{s}, nil)
	}
}

// oracleMiss is an entry that decide invalidates (by rule) and candidates does
// not visit.
type oracleMiss struct {
	d *dep
	r rule
}

// missed returns the misses of statement s (under sp.mu).
func (o *oracle) missed(sp *space, s *Stmt) []oracleMiss {
	simple := sp.simple.Load()
	s.derive(simple) // as the cache does when it takes its copy of a write (space.derive)
	sp.stamp++
	seen := map[*dep]bool{}
	sp.candidates(s, func(d *dep) { seen[d] = true })
	o.stats.stmts++
	o.stats.visited += len(seen)
	var out []oracleMiss
	for d := range sp.deps {
		o.stats.checked++
		r := decide(s, d)
		o.stats.rules[r]++
		if r != keep && !seen[d] {
			out = append(out, oracleMiss{d, r})
		}
	}
	return out
}

// report fails the test with the smallest case it can make of a miss: the
// entry alone in a collection of its own, and the entry and the statement
// each cut down while the miss remains. simple is the collection's.
func (o *oracle) report(coll string, simple bool, misses []oracleMiss, s Stmt) {
	o.t.Helper()
	sh := &oracleShrinker{o: o, c: newTestCache(o.t, Config{NumCounters: 1000, MaxCost: 1 << 20}), simple: simple}
	sd := s
	sd.derive(simple)
	var best string
	for _, m := range misses[:min(len(misses), 4)] {
		e, ok := o.entries[m.d.key]
		require.True(o.t, ok, "an entry the round did not make")
		desc := fmt.Sprintf("  entry:     %s\n  analysed:  %s\n  statement: %s\n  derived:   %s\n  decide:    %s",
			oracleDescribeEntry(e), oracleDescribeDep(m.d), oracleDescribeStmt(s), oracleDescribeDerived(&sd), oracleRuleName(m.r))
		if _, ok := sh.missed(e, s); ok {
			e, s2 := sh.shrink(e, s)
			d, _ := sh.missed(e, s2)
			s2.derive(simple)
			desc += fmt.Sprintf("\n  alone, cut down (the result need not match the filter any more):\n"+
				"  entry:     %s\n  analysed:  %s\n  statement: %s\n  derived:   %s\n  decide:    %s",
				oracleDescribeEntry(e), oracleDescribeDep(d.d), oracleDescribeStmt(s2), oracleDescribeDerived(&s2), oracleRuleName(d.r))
		} else {
			desc += "\n  not missed with the entry alone"
		}
		if best == "" || len(desc) < len(best) {
			best = desc
		}
	}
	o.t.Fatalf("candidates never visit an entry that decide invalidates, a stale read (entries missed: %d)\n"+
		"  replay: DATABRIDGE_ORACLE_SEED=%d DATABRIDGE_ORACLE_ROUNDS=1 (collection %s)\n%s",
		len(misses), o.seed, coll, best)
}

// oracleShrinker cuts a miss down: each part of the entry and of the statement
// that it can drop while the miss remains.
type oracleShrinker struct {
	o      *oracle
	c      *Cache
	n      int
	simple bool
}

// missed reports whether entry e, alone in a fresh collection (whose
// collation is known as simple says), is missed by statement s.
func (sh *oracleShrinker) missed(e oracleEntry, s Stmt) (oracleMiss, bool) {
	sh.n++
	coll := fmt.Sprintf("alone%d", sh.n)
	fetchDocs(sh.o.t, sh.c, oracleColl(e.q, coll), e.docs...)
	sp := sh.c.space("db", coll)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.simple.Store(sh.simple)
	ms := (&oracle{stats: &oracleStats{}}).missed(sp, &s)
	if len(ms) == 0 {
		return oracleMiss{}, false
	}
	return ms[0], true
}

// shrink drops, one at a time and until none can go, the parts of e and s
// whose absence keeps the miss.
func (sh *oracleShrinker) shrink(e oracleEntry, s Stmt) (oracleEntry, Stmt) {
	for changed := true; changed; {
		changed = false
		for _, e2 := range sh.entryCuts(e) {
			if _, ok := sh.missed(e2, s); ok {
				e, changed = e2, true
				break
			}
		}
		for _, s2 := range sh.stmtCuts(s) {
			if _, ok := sh.missed(e, s2); ok {
				s, changed = s2, true
				break
			}
		}
	}
	return e, s
}

// entryCuts are e with one part less: a clause of its filter (its
// $match's), a later stage, its sort, projection or limit, a document.
func (sh *oracleShrinker) entryCuts(e oracleEntry) []oracleEntry {
	var out []oracleEntry
	with := func(f func(q *Key)) {
		e2 := e
		f(&e2.q)
		out = append(out, e2)
	}
	if f, ok := e.q.Filter.(bson.D); ok {
		for i := range f {
			with(func(q *Key) { q.Filter = slices.Delete(slices.Clone(f), i, i+1) })
		}
	}
	if p, ok := e.q.Filter.(bson.A); ok {
		if m, ok := p[0].(bson.D)[0].Value.(bson.D); ok {
			for i := range m {
				with(func(q *Key) {
					q.Filter = append(bson.A{bson.D{{Key: "$match", Value: slices.Delete(slices.Clone(m), i, i+1)}}}, p[1:]...)
				})
			}
		}
		for i := 1; i < len(p); i++ {
			with(func(q *Key) { q.Filter = slices.Delete(slices.Clone(p), i, i+1) })
		}
	}
	if e.q.Sort != nil {
		with(func(q *Key) { q.Sort = nil })
	}
	if e.q.Projection != nil {
		with(func(q *Key) { q.Projection = nil })
	}
	if e.q.Limit != 0 {
		with(func(q *Key) { q.Limit = 0 })
	}
	for i := range e.docs {
		e2 := e
		e2.docs = slices.Delete(slices.Clone(e.docs), i, i+1)
		out = append(out, e2)
	}
	return out
}

// stmtCuts are s with one part less: a clause of its filter, a field of an
// operator of its update or of its document, its image, upserted _id and
// flags.
func (sh *oracleShrinker) stmtCuts(s Stmt) []Stmt {
	var out []Stmt
	for _, f := range sh.docCuts(s.Filter) {
		s2 := s
		s2.Filter = f
		out = append(out, s2)
	}
	for _, d := range sh.docCuts(s.Doc) {
		s2 := s
		s2.Doc = d
		out = append(out, s2)
	}
	if u, ok := s.Update.DocumentOK(); ok {
		elems, _ := u.Elements()
		for i, op := range elems {
			fields, ok := op.Value().DocumentOK()
			if !ok {
				continue
			}
			var cuts []bson.Raw
			if n, _ := fields.Elements(); len(n) > 1 {
				cuts = sh.docCuts(fields) // a field of the operator
			}
			if len(elems) > 1 {
				cuts = append(cuts, nil) // the whole operator
			}
			for _, f := range cuts {
				d := bson.D{}
				for j, el := range elems {
					switch {
					case j != i:
						d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
					case f != nil:
						d = append(d, bson.E{Key: el.Key(), Value: f})
					}
				}
				s2 := s
				s2.Update = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: sh.o.raw(d)}
				out = append(out, s2)
			}
		}
	}
	for _, cut := range []func(s *Stmt) bool{
		func(s *Stmt) bool { ok := s.image != nil; s.image = nil; return ok },
		func(s *Stmt) bool { ok := s.UpsertedID.Type != 0; s.UpsertedID = bson.RawValue{}; return ok },
		func(s *Stmt) bool { ok := s.Multi; s.Multi = false; return ok },
		func(s *Stmt) bool { ok := s.Collation; s.Collation = false; return ok },
		func(s *Stmt) bool { ok := s.NotUpserted; s.NotUpserted = false; return ok },
	} {
		if s2 := s; cut(&s2) {
			out = append(out, s2)
		}
	}
	return out
}

// docCuts are doc with one top-level field less (none for a nil doc).
func (sh *oracleShrinker) docCuts(doc bson.Raw) []bson.Raw {
	elems, err := doc.Elements()
	if doc == nil || err != nil {
		return nil
	}
	var out []bson.Raw
	for i := range elems {
		d := bson.D{}
		for j, el := range elems {
			if j != i {
				d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
			}
		}
		out = append(out, sh.o.raw(d))
	}
	return out
}

func oracleColl(q Key, coll string) Key {
	q.Collection = coll
	return q
}

// --- entries ---

// fetch makes one random entry in coll through Fetch.
func (o *oracle) fetch(coll string, shape func(context.Context) (Shape, error)) {
	if o.r.IntN(12) == 0 {
		shape = nil // a read that does not ask: its collation is not known
	}
	q := Key{Database: "db", Collection: coll, Simple: o.r.IntN(8) > 0, Shape: shape}
	var docs []bson.Raw
	switch n := o.r.IntN(10); {
	case n < 6:
		q.Filter, q.Sort, q.Projection = o.filter(), o.sort(), o.projection()
		q.Limit = []int64{0, 0, 1, 2, 3}[o.r.IntN(5)]
		if q.Sort == nil && o.r.IntN(6) > 0 {
			q.Limit = 0 // a limit without a total sort is mostly unanalysable: now and then
		}
		switch o.r.IntN(30) {
		case 0:
			q.Limit = -1 // a single batch
		case 1:
			q.Skip = 1
		case 2:
			q.Hint = "a_1"
		}
		docs = o.findResult(q)
	case n < 8:
		q.Op, q.Filter = "count", o.filter()
		if o.r.IntN(20) == 0 {
			q.Limit = 5
		}
		docs = []bson.Raw{o.raw(bson.D{{Key: "n", Value: int64(o.r.IntN(4))}})}
	default:
		q.Op, q.Filter = "aggregate", o.pipeline()
		for range o.r.IntN(3) {
			docs = append(docs, o.raw(bson.D{{Key: "_id", Value: o.value()}, {Key: "n", Value: int32(o.r.IntN(3))}}))
		}
	}
	key, err := q.canonical()
	require.NoError(o.t, err)
	if fetchDocs(o.t, o.c, q, docs...) {
		return // the same query again: a hit
	}
	o.entries[key] = oracleEntry{q: q, docs: docs}
}

// findResult draws a find's result from the round's documents: those the
// filter may match (or, now and then, any), cut at the limit, projected.
func (o *oracle) findResult(q Key) []bson.Raw {
	var f *match.Filter
	if raw, err := q.encode(q.Filter); err == nil && raw != nil {
		f, _ = match.Compile(raw, match.Options{SimpleStrings: true})
	}
	var out []bson.Raw
	for i, raw := range o.univRaw {
		if o.r.IntN(8) > 0 && f != nil && f.Match(raw) == match.No {
			continue
		}
		if o.r.IntN(6) == 0 {
			continue
		}
		if q.Projection != nil {
			raw = o.raw(oracleProject(o.univ[i], q.Projection))
		}
		out = append(out, raw)
	}
	if q.Limit > 0 && int64(len(out)) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// oracleProject applies the projections o.projection makes (fields and n.x).
func oracleProject(d bson.D, spec any) bson.D {
	p, _ := spec.(bson.D)
	if p == nil {
		return d
	}
	include, keepID := false, true
	paths := map[string]bool{}
	for _, e := range p {
		if e.Key == "_id" {
			keepID = e.Value.(int32) == 1
			continue
		}
		include = e.Value.(int32) == 1
		paths[e.Key] = true
	}
	out := bson.D{}
	for _, e := range d {
		switch {
		case e.Key == "_id":
			if keepID {
				out = append(out, e)
			}
		case e.Key == "n" && paths["n.x"]:
			if v, ok := oracleProjectX(e.Value, include); ok {
				out = append(out, bson.E{Key: "n", Value: v})
			}
		case paths[e.Key] == include:
			out = append(out, e)
		}
	}
	return out
}

// oracleProjectX keeps (include) or drops the field x of n's documents.
func oracleProjectX(n any, include bool) (any, bool) {
	switch v := n.(type) {
	case bson.D:
		out := bson.D{}
		for _, e := range v {
			if (e.Key == "x") == include {
				out = append(out, e)
			}
		}
		return out, true
	case bson.A:
		out := bson.A{}
		for _, el := range v {
			if x, ok := oracleProjectX(el, include); ok {
				out = append(out, x)
			}
		}
		return out, true
	}
	return n, !include // a scalar n: no x in it
}

func (o *oracle) sort() any {
	return []any{nil, nil, bson.D{{Key: "_id", Value: 1}},
		bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 1}},
		bson.D{{Key: "b", Value: -1}, {Key: "_id", Value: -1}},
		bson.D{{Key: "n.x", Value: 1}, {Key: "_id", Value: 1}},
		bson.D{{Key: "a", Value: 1}}, // not total: a full result is unanalysable
	}[o.r.IntN(7)]
}

func (o *oracle) projection() any {
	one, zero := int32(1), int32(0)
	return []any{nil, nil, nil,
		bson.D{{Key: "a", Value: one}},
		bson.D{{Key: "a", Value: zero}},
		bson.D{{Key: "n.x", Value: one}},
		bson.D{{Key: "n.x", Value: zero}},
		bson.D{{Key: "_id", Value: zero}},
		bson.D{{Key: "a", Value: one}, {Key: "_id", Value: zero}},
		bson.D{{Key: "b", Value: one}, {Key: "n.x", Value: one}},
	}[o.r.IntN(10)]
}

// pipeline is a $match-first aggregation, with later stages that read
// some paths, all of them, or are unanalysable.
func (o *oracle) pipeline() bson.A {
	p := bson.A{bson.D{{Key: "$match", Value: o.filter()}}}
	tails := []bson.A{
		nil, // the documents themselves
		{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$a"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}},
		{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "s", Value: bson.D{{Key: "$sum", Value: "$n.x"}}}}}}},
		{bson.D{{Key: "$project", Value: bson.D{{Key: "b", Value: 1}}}}},
		{bson.D{{Key: "$project", Value: bson.D{{Key: "a", Value: 0}}}}},
		{bson.D{{Key: "$project", Value: bson.D{{Key: "n", Value: bson.D{{Key: "x", Value: 0}}}}}}},
		{bson.D{{Key: "$sort", Value: bson.D{{Key: "c", Value: 1}}}}, bson.D{{Key: "$limit", Value: 2}},
			bson.D{{Key: "$project", Value: bson.D{{Key: "c", Value: 1}}}}},
		{bson.D{{Key: "$unwind", Value: "$a"}}, bson.D{{Key: "$count", Value: "k"}}},
		{bson.D{{Key: "$count", Value: "k"}}},
		{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "other"}, {Key: "localField", Value: "a"},
			{Key: "foreignField", Value: "a"}, {Key: "as", Value: "o"}}}}},
	}
	return append(p, tails[o.r.IntN(len(tails))]...)
}

// --- values, documents, filters ---

var oracleDecimalOne, _ = bson.ParseDecimal128("1")

// oracleScalars collide across types: 1 as int32, int64 and double (and
// Decimal128, which the indexes cannot key); 0 and -0; 2^53 and 2^53+1;
// null; strings, booleans, a date.
var oracleScalars = []any{
	int32(1), int64(1), 1.0, int32(2), int64(2), 2.5, int32(0), math.Copysign(0, -1),
	int64(1<<53 + 1), float64(1 << 53), "x", "y", true, false, nil,
	bson.DateTime(1), oracleDecimalOne, bson.Undefined{},
}

// scalar is mostly one of the round's palette, so that the values of
// filters, documents and updates meet often.
func (o *oracle) scalar() any {
	if o.r.IntN(5) > 0 {
		return o.palette[o.r.IntN(len(o.palette))]
	}
	return oracleScalars[o.r.IntN(len(oracleScalars))]
}

// value is a scalar, or an array of scalars or of documents, a document,
// or an array in an array.
func (o *oracle) value() any {
	switch n := o.r.IntN(20); {
	case n < 13:
		return o.scalar()
	case n < 16:
		a := bson.A{}
		for range o.r.IntN(4) {
			a = append(a, o.scalar())
		}
		return a
	case n < 18:
		return bson.A{bson.D{{Key: "x", Value: o.scalar()}}, bson.D{{Key: "y", Value: o.scalar()}}}
	case n < 19:
		return bson.D{{Key: "x", Value: o.scalar()}}
	}
	return bson.A{bson.A{o.scalar()}}
}

// id is the _id of the round's document i (1-based) in a random type: equal
// _ids of different types must meet in the indexes. 0 is an _id no
// document has; -1 one the index cannot key.
func (o *oracle) id(i int) any {
	switch i {
	case 0:
		return "none"
	case -1:
		return bson.D{{Key: "k", Value: 1}}
	case 5:
		return "k5" // a string: keyed only under the simple collation
	case 6:
		return bson.ObjectID{6}
	}
	switch o.r.IntN(3) {
	case 0:
		return int32(i)
	case 1:
		return int64(i)
	}
	return float64(i)
}

// anyID picks the _id of a document of the round, now and then another.
func (o *oracle) anyID() (any, int) {
	i := o.r.IntN(len(o.univ)+2) - 1
	return o.id(i), i
}

// doc is a random document; id > 0 gives it that document's _id, 0 none.
func (o *oracle) doc(id int) bson.D {
	d := bson.D{}
	if id != 0 {
		d = append(d, bson.E{Key: "_id", Value: o.id(id)})
	}
	for _, f := range []string{"a", "b", "c"} {
		if o.r.IntN(4) > 0 {
			d = append(d, bson.E{Key: f, Value: o.value()})
		}
	}
	switch o.r.IntN(4) {
	case 0:
		d = append(d, bson.E{Key: "n", Value: bson.D{{Key: "x", Value: o.value()}}})
	case 1:
		d = append(d, bson.E{Key: "n", Value: bson.A{bson.D{{Key: "x", Value: o.scalar()}}, bson.D{{Key: "x", Value: o.scalar()}}}})
	case 2:
		d = append(d, bson.E{Key: "n", Value: o.scalar()})
	}
	return d
}

var oracleFields = []string{"a", "a", "b", "c", "n.x", "n"}

// clause is one condition: on a field, or an $and / $or of two.
func (o *oracle) clause(depth int) bson.E {
	if depth < 2 && o.r.IntN(6) == 0 {
		op := []string{"$and", "$or"}[o.r.IntN(2)]
		return bson.E{Key: op, Value: bson.A{bson.D{o.clause(depth + 1)}, bson.D{o.clause(depth + 1)}}}
	}
	f := oracleFields[o.r.IntN(len(oracleFields))]
	var v any
	switch o.r.IntN(8) {
	case 0, 1, 2:
		v = o.value()
	case 3:
		v = bson.D{{Key: "$eq", Value: o.value()}}
	case 4:
		v = bson.D{{Key: "$in", Value: bson.A{o.value(), o.value()}}}
	case 5:
		v = bson.D{{Key: "$gt", Value: o.scalar()}}
	case 6:
		v = bson.D{{Key: "$exists", Value: o.r.IntN(2) == 0}}
	default:
		v = bson.D{{Key: "$ne", Value: o.value()}}
	}
	return bson.E{Key: f, Value: v}
}

// filter is a conjunction of up to three clauses, now and then with an _id
// equality or $in, or an operator the rules do not read.
func (o *oracle) filter() bson.D {
	d := bson.D{}
	switch o.r.IntN(8) {
	case 0:
		id, _ := o.anyID()
		d = append(d, bson.E{Key: "_id", Value: id})
	case 1:
		a, _ := o.anyID()
		b, _ := o.anyID()
		d = append(d, bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{a, b}}}})
	}
	for range o.r.IntN(4) {
		if e := o.clause(0); !slices.ContainsFunc(d, func(x bson.E) bool { return x.Key == e.Key }) {
			d = append(d, e)
		}
	}
	if o.r.IntN(40) == 0 {
		d = append(d, bson.E{Key: "c", Value: bson.D{{Key: "$regex", Value: "x"}}}) // unanalysable
	}
	return d
}

// --- statements ---

// stmt is a random statement, with the reply's facts now and then.
func (o *oracle) stmt() Stmt {
	s := Stmt{Collation: o.r.IntN(10) == 0}
	switch n := o.r.IntN(20); {
	case n < 5:
		s.Op = OpInsert
		if o.r.IntN(20) > 0 {
			id := 0
			if o.r.IntN(8) > 0 {
				id = o.r.IntN(len(o.univ)) + 1
			}
			s.Doc = o.raw(o.doc(id))
		}
		return s // an insert is never NoChange: it inserted
	case n < 12:
		s.Op, s.Update = OpUpdate, o.update()
	case n < 14:
		s.Op = OpReplace
		s.Doc = o.raw(o.doc(0))
		if o.r.IntN(3) == 0 {
			s.Doc = o.raw(o.doc(o.r.IntN(len(o.univ)) + 1))
		}
	default:
		s.Op = OpDelete
	}
	var one int // the round's document the filter names alone, or 0
	s.Filter, one = o.writeFilter()
	s.Multi = o.r.IntN(2) == 0
	if s.Op != OpDelete && o.r.IntN(5) == 0 {
		s.Upsert = true // it may insert: every entry is a candidate, unless the reply says it did not
		switch o.r.IntN(4) {
		case 0:
			s.Upserted = true
			if o.r.IntN(2) == 0 {
				id, _ := o.anyID()
				typ, data, err := bson.MarshalValue(id)
				require.NoError(o.t, err)
				s.UpsertedID = bson.RawValue{Type: typ, Value: data}
			}
		case 1, 2:
			s.NotUpserted = true
		}
	} else if o.r.IntN(3) == 0 {
		s.NotUpserted = true // a reply says so of every statement that did not upsert
	}
	s.NoChange = !s.Upserted && o.r.IntN(12) == 0
	if one > 0 && o.r.IntN(3) == 0 {
		s.image = o.univRaw[one-1] // the document as it was, held whole by an entry
	}
	return s
}

// writeFilter selects by _id, by $in of _ids, by _id and a condition, by
// a random filter, or everything; one is the document it names alone.
func (o *oracle) writeFilter() (bson.Raw, int) {
	switch n := o.r.IntN(20); {
	case n < 7:
		id, i := o.anyID()
		return o.raw(bson.D{{Key: "_id", Value: id}}), max(i, 0)
	case n < 9:
		a, _ := o.anyID()
		b, _ := o.anyID()
		return o.raw(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{a, b}}}}}), 0
	case n < 11:
		id, i := o.anyID()
		return o.raw(bson.D{{Key: "_id", Value: id}, o.clause(0)}), max(i, 0)
	case n < 18:
		return o.raw(o.filter()), 0
	case n < 19:
		return o.raw(bson.D{}), 0
	}
	return nil, 0
}

// oracleOps are update operators with the paths and values they take; a
// nil value stands for a random one, oracleArray for an array of scalars
// (an equality matches each of its elements).
var oracleOps = []struct {
	op, path string
	val      any
}{
	{"$set", "a", nil}, {"$set", "a", nil}, {"$set", "b", nil}, {"$set", "c", nil},
	{"$set", "a", oracleArray}, {"$set", "b", oracleArray}, {"$set", "c", oracleArray}, {"$set", "n", oracleArray},
	{"$set", "n.x", nil}, {"$set", "n", nil}, {"$set", "a.0", nil}, {"$set", "a.$", nil}, {"$set", "n.$[].x", nil},
	{"$unset", "a", ""}, {"$unset", "b", ""}, {"$unset", "n.x", ""}, {"$unset", "n", ""},
	{"$inc", "c", int32(1)}, {"$inc", "n.x", 1.5}, {"$mul", "a", int32(2)}, {"$min", "b", int32(0)}, {"$max", "c", int64(2)},
	{"$push", "a", nil}, {"$addToSet", "b", nil}, {"$pull", "a", nil}, {"$pullAll", "b", oracleArray}, {"$pop", "n", int32(1)},
	{"$bit", "c", bson.D{{Key: "and", Value: int32(1)}}},
	{"$rename", "b", "a"}, {"$rename", "a", "c"}, {"$rename", "n.x", "b"}, {"$rename", "c", "n.x"},
	{"$setOnInsert", "a", nil}, {"$setOnInsert", "b", nil},
	{"$currentDate", "c", true},
}

const oracleArray = "array"

// update is an update document of one to three operators on paths that do
// not conflict (the server refuses those), or a pipeline.
func (o *oracle) update() bson.RawValue {
	if o.r.IntN(16) == 0 {
		p := bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: "$b"}}}}}
		t, data, err := bson.MarshalValue(p)
		require.NoError(o.t, err)
		return bson.RawValue{Type: t, Value: data}
	}
	u := bson.D{}
	var used []string
	for range 1 + o.r.IntN(3) {
		op := oracleOps[o.r.IntN(len(oracleOps))]
		paths := []string{op.path}
		if op.op == "$rename" {
			paths = append(paths, op.val.(string))
		}
		conflict := false
		for _, p := range paths {
			for _, q := range used {
				conflict = conflict || match.Overlaps(oracleCut(p), oracleCut(q))
			}
		}
		if conflict {
			continue
		}
		used = append(used, paths...)
		v := op.val
		switch v {
		case nil:
			v = o.value()
		case oracleArray:
			v = bson.A{o.scalar(), o.scalar(), o.scalar()}[:2+o.r.IntN(2)]
		}
		i := slices.IndexFunc(u, func(e bson.E) bool { return e.Key == op.op })
		if i < 0 {
			u = append(u, bson.E{Key: op.op, Value: bson.D{}})
			i = len(u) - 1
		}
		u[i].Value = append(u[i].Value.(bson.D), bson.E{Key: op.path, Value: v})
	}
	if o.r.IntN(40) == 0 {
		u = append(u, bson.E{Key: "$unknown", Value: bson.D{{Key: "a", Value: 1}}})
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: o.raw(u)}
}

// oracleCut is a path up to its first positional or numeric segment.
func oracleCut(p string) string {
	segs := strings.Split(p, ".")
	for i, s := range segs {
		if strings.HasPrefix(s, "$") || strings.Trim(s, "0123456789") == "" {
			return strings.Join(segs[:i], ".")
		}
	}
	return p
}

func (o *oracle) raw(v any) bson.Raw { return mustRaw(o.t, v) }

// --- reports ---

func oracleRuleName(r rule) string {
	return [...]string{"keep", "ruleID", "ruleMatch", "rulePath", "ruleWide"}[r]
}

func oracleDescribeEntry(e oracleEntry) string {
	q := e.q
	var b strings.Builder
	switch q.Op {
	case "":
		fmt.Fprintf(&b, "find %s", oracleShow(q.Filter))
		if q.Sort != nil {
			fmt.Fprintf(&b, " sort %s", oracleShow(q.Sort))
		}
		if q.Projection != nil {
			fmt.Fprintf(&b, " projection %s", oracleShow(q.Projection))
		}
	case "count":
		fmt.Fprintf(&b, "count %s", oracleShow(q.Filter))
	default:
		fmt.Fprintf(&b, "aggregate %s", oracleShow(q.Filter))
	}
	if q.Limit != 0 {
		fmt.Fprintf(&b, " limit %d", q.Limit)
	}
	if q.Skip != 0 {
		fmt.Fprintf(&b, " skip %d", q.Skip)
	}
	if q.Hint != nil {
		fmt.Fprintf(&b, " hint %s", oracleShow(q.Hint))
	}
	fmt.Fprintf(&b, " simple=%v; result [", q.Simple)
	for i, d := range e.docs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(oracleShowRaw(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}))
	}
	b.WriteString("]")
	return b.String()
}

func oracleDescribeDep(d *dep) string {
	eq := make([]string, 0, len(d.eq))
	for f, v := range d.eq {
		eq = append(eq, f+"="+oracleShowRaw(v))
	}
	slices.Sort(eq)
	return fmt.Sprintf("%s, ids known %v (%d), full %v, fpaths %v, spaths %v, outPaths %v, outAll %v, eq %v, group %q",
		[...]string{"find", "count", "aggregate"}[d.kind], d.ids != nil, len(d.ids), d.full, d.fpaths, d.spaths, d.outPaths, d.outAll, eq, strings.ReplaceAll(d.groupKey, "\x00", ","))
}

func oracleDescribeStmt(s Stmt) string {
	var b strings.Builder
	b.WriteString([...]string{"?", "insert", "update", "replace", "delete"}[s.Op])
	if s.Filter != nil {
		fmt.Fprintf(&b, " filter %s", oracleShowRaw(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: s.Filter}))
	}
	if s.Update.Type != 0 {
		fmt.Fprintf(&b, " update %s", oracleShowRaw(s.Update))
	}
	switch {
	case s.Doc != nil:
		fmt.Fprintf(&b, " doc %s", oracleShowRaw(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: s.Doc}))
	case s.Op == OpInsert || s.Op == OpReplace:
		b.WriteString(" doc unknown")
	}
	for _, f := range []struct {
		name string
		on   bool
	}{{"multi", s.Multi}, {"upsert", s.Upsert}, {"collation", s.Collation}, {"upserted", s.Upserted}, {"notUpserted", s.NotUpserted}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if s.UpsertedID.Type != 0 {
		fmt.Fprintf(&b, " upsertedID %s", oracleShowRaw(s.UpsertedID))
	}
	if s.image != nil {
		fmt.Fprintf(&b, " image %s", oracleShowRaw(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: s.image}))
	}
	return b.String()
}

func oracleDescribeDerived(s *Stmt) string {
	if s.derivation == nil {
		return "none (an insert)"
	}
	set := make([]string, 0, len(s.u.Set))
	for p, v := range s.u.Set {
		set = append(set, p+"="+oracleShowRaw(v))
	}
	slices.Sort(set)
	unset := slices.Sorted(maps.Keys(s.u.Unset))
	return fmt.Sprintf("ids known %v (%d), filter analysed %v, all %v, touched %q, set %v, unset %q",
		s.idsKnown, len(s.ids), s.w != nil, s.u.All, s.u.Touched, set, unset)
}

// oracleShow writes a query part compactly, with its BSON types: 1 is an int32,
// 1L an int64, 1.0 a double.
func oracleShow(v any) string {
	if v == nil {
		return "none"
	}
	raw, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		return fmt.Sprint(v)
	}
	return oracleShowRaw(bson.Raw(raw).Lookup("v"))
}

func oracleShowRaw(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeInt32:
		return strconv.Itoa(int(v.Int32()))
	case bson.TypeInt64:
		return strconv.FormatInt(v.Int64(), 10) + "L"
	case bson.TypeDouble:
		f := v.Double()
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0"
		}
		return s
	case bson.TypeString:
		return strconv.Quote(v.StringValue())
	case bson.TypeNull:
		return "null"
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		elems, err := bson.Raw(v.Value).Elements()
		if err != nil {
			return v.String()
		}
		parts := make([]string, len(elems))
		for i, el := range elems {
			parts[i] = oracleShowRaw(el.Value())
			if v.Type == bson.TypeEmbeddedDocument {
				parts[i] = el.Key() + ": " + parts[i]
			}
		}
		if v.Type == bson.TypeArray {
			return "[" + strings.Join(parts, ", ") + "]"
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return v.String()
}
