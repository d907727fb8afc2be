package cache_test

import (
	"math"
	"math/rand"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The generation of the fuzzer's rounds: documents, filters and reads.

// The values documents, filters and updates are made of: few, so that
// they collide often, and chosen to break matchers.
var (
	diffDates   = []bson.DateTime{1_700_000_000_000, 1_700_086_400_000}
	diffScalars = []any{
		int32(1), int64(1), 1.0, int32(2), 2.5, int32(0), math.Copysign(0, -1), int64(0),
		nil, "x", "y", "", true, false, diffDates[0], diffDates[1],
	}
	diffNumbers = []any{int32(1), int64(2), 1.5, int32(-1), int32(0), math.Copysign(0, -1), 2.0}
	diffTypes   = []string{"number", "string", "array", "null", "object", "bool", "date", "int", "double", "long"}
)

// diffGen draws a round's documents, reads and writes. Each round favours
// a few paths and a few values (its focus), so that its filters, updates,
// projections and sorts collide often; a plain round (one in three) has
// mostly scalar fields, top-level paths and comparisons, where what a
// write does is easy to satisfy and to miss.
type diffGen struct {
	*rand.Rand
	plain   bool
	scalars []any
	paths   []string
	ids     []int // of the round's documents
	// pairs are the paths and values the round's reads compare with:
	// many $set of its writes set one, so that writes move documents
	// into and out of the results.
	pairs []bson.E
	reads []diffRead // the round's, for diffTogether
	// held are the paths and values the round's documents hold: many
	// writes select documents by one.
	held []bson.E
	// ferret: the server is FerretDB, and the round holds none of the
	// dev server's gaps that a generator can leave out
	// (difffuzz_gaps_test.go).
	ferret bool
}

func newDiffGen(seed int64, ferret bool) *diffGen {
	g := &diffGen{Rand: rand.New(rand.NewSource(seed)), ferret: ferret}
	g.plain = g.Intn(3) == 0
	for _, i := range g.Perm(len(diffScalars))[:2+g.Intn(4)] {
		g.scalars = append(g.scalars, diffScalars[i])
	}
	paths := diffFilterPaths
	if g.plain {
		paths = []string{"a", "b", "m", "n", "t"}
	}
	for _, i := range g.Perm(len(paths))[:2+g.Intn(2)] {
		p := paths[i]
		g.paths = append(g.paths, p, strings.Split(p, ".")[0])
	}
	return g
}

// path is one of from, most often one of the round's focus.
func (g *diffGen) path(from []string) string {
	if g.Intn(6) > 0 {
		var focus []string
		for _, p := range from {
			if slices.Contains(g.paths, p) {
				focus = append(focus, p)
			}
		}
		if len(focus) > 0 {
			return diffPick(g, focus)
		}
	}
	return diffPick(g, from)
}

func diffPick[E any](g *diffGen, s []E) E { return s[g.Intn(len(s))] }

// diffScalar is a scalar, most often one of the round's focus.
func diffScalar(g *diffGen) any {
	if g.Intn(6) > 0 {
		return diffPick(g, g.scalars)
	}
	return diffPick(g, diffScalars)
}

// diffValue is a value of a field at depth (0: top level): a scalar, an
// array (of scalars and, at the top, documents) or a document. Never an
// array directly in an array (the dev server refuses those).
func diffValue(g *diffGen, depth int) any {
	switch k := g.Intn(10); {
	case k < 5 || depth > 1 || g.plain && k < 9:
		return diffScalar(g)
	case k < 8:
		return diffArray(g, depth)
	default:
		return diffSubdoc(g, depth+1)
	}
}

func diffArray(g *diffGen, depth int) bson.A {
	a := bson.A{}
	for range g.Intn(4) {
		if depth == 0 && g.Intn(3) == 0 {
			a = append(a, diffSubdoc(g, depth+1))
		} else {
			a = append(a, diffScalar(g))
		}
	}
	return a
}

func diffSubdoc(g *diffGen, depth int) bson.D {
	d := bson.D{}
	for _, f := range []string{"n", "t", "0"} {
		if f == "0" && g.Intn(4) > 0 {
			continue
		}
		if g.Intn(5) < 3 {
			d = append(d, bson.E{Key: f, Value: diffValue(g, depth)})
		}
	}
	return d
}

// diffID is an _id of the domain (1 to 14), most often one of the round's
// documents', as an int32, or now and then the same number as an int64 or
// a double.
func diffID(g *diffGen) any {
	if len(g.ids) > 0 && g.Intn(5) > 0 {
		return diffNumber(g, diffPick(g, g.ids))
	}
	return diffNumber(g, 1+g.Intn(14))
}

// diffNewID is an _id for a new document: half the time one no document
// of the round has.
func diffNewID(g *diffGen) any {
	if g.Intn(2) == 0 {
		return diffID(g)
	}
	return diffNumber(g, 15+g.Intn(8))
}

func diffNumber(g *diffGen, n int) any {
	switch g.Intn(8) {
	case 0:
		return int64(n)
	case 1:
		return float64(n)
	}
	return int32(n)
}

// diffDocument is a random document with _id id: a is mostly an array, m
// mostly a document or an array of documents (in a plain round, both
// mostly scalars), and any field may be missing.
func diffDocument(g *diffGen, id any) bson.D {
	d := bson.D{}
	if id != nil {
		d = append(d, bson.E{Key: "_id", Value: id})
	}
	for _, f := range []string{"a", "b", "m", "n", "t"} {
		if g.Intn(4) == 0 {
			continue
		}
		var v any
		switch k := g.Intn(10); {
		case g.plain:
			v = diffValue(g, 0)
		case f == "m" && k < 3:
			v = bson.A{diffSubdoc(g, 1), diffSubdoc(g, 1)}
		case f == "a" && k < 6, k < 3:
			v = diffArray(g, 0)
		case k < 6 && f == "m":
			v = diffSubdoc(g, 1)
		default:
			v = diffValue(g, 0)
		}
		d = append(d, bson.E{Key: f, Value: v})
	}
	return d
}

var (
	diffFilterPaths = []string{"_id", "a", "b", "m", "n", "t", "m.n", "m.t", "a.n", "a.t", "a.0", "m.0"}
	diffSortPaths   = []string{"a", "b", "m", "n", "t", "m.n"}
	diffProjPaths   = []string{"a", "b", "m", "n", "t", "m.n", "m.t", "m.0", "a.0", "a.n"}
	diffUpdatePaths = []string{"a", "b", "m", "n", "t", "m.n", "m.t", "m.0", "a.0"}
)

// diffFilter is a random filter over the operator allow-list.
func diffFilter(g *diffGen, depth int) bson.D {
	switch k := g.Intn(12); {
	case depth < 2 && k < 3:
		op := []string{"$and", "$or", "$nor"}[k]
		var subs bson.A
		for range 1 + g.Intn(3) {
			subs = append(subs, diffFilter(g, depth+1))
		}
		return bson.D{{Key: op, Value: subs}}
	case k < 7:
		a, b := diffLeaf(g), diffLeaf(g)
		if a.Key == b.Key {
			return bson.D{a}
		}
		return bson.D{a, b}
	default:
		return bson.D{diffLeaf(g)}
	}
}

// diffLeaf is one condition on one path.
func diffLeaf(g *diffGen) bson.E {
	p := g.path(diffFilterPaths)
	val := func() any {
		if p == "_id" {
			return diffID(g)
		}
		if g.Intn(6) == 0 {
			return diffLiteral(g)
		}
		return diffScalar(g)
	}
	list := func() bson.A {
		a := bson.A{}
		for range 1 + g.Intn(3) {
			a = append(a, val())
		}
		return a
	}
	op := func(name string, v any) bson.E { return bson.E{Key: p, Value: bson.D{{Key: name, Value: v}}} }
	ops := 17
	if g.plain {
		ops = 11 // comparisons, $in, $nin, $exists
	}
	switch g.Intn(ops) {
	case 0, 1:
		return bson.E{Key: p, Value: val()}
	case 2:
		return op("$eq", val())
	case 3:
		return op("$ne", val())
	case 4:
		return op("$gt", val())
	case 5:
		return op("$gte", val())
	case 6:
		return op("$lt", val())
	case 7:
		return op("$lte", val())
	case 8:
		return op("$in", list())
	case 9:
		return op("$nin", list())
	case 10:
		return op("$exists", diffExists(g))
	case 11:
		return op("$size", g.Intn(3))
	case 12:
		return op("$all", list())
	case 13:
		return op("$type", diffPick(g, diffTypes))
	case 14:
		if g.Intn(2) == 0 {
			return op("$elemMatch", bson.D{{Key: diffPick(g, []string{"$gt", "$gte", "$lt", "$eq"}), Value: diffScalar(g)}})
		}
		// One field: with two, the dev server refuses the filter on some
		// documents ("unknown operator").
		sub := bson.D{{Key: g.path([]string{"n", "t", "0"}), Value: diffScalar(g)}}
		if g.Intn(2) == 0 {
			sub[0].Value = bson.D{{Key: "$gte", Value: diffScalar(g)}}
		}
		return op("$elemMatch", sub)
	case 15:
		inner := diffPick(g, []string{"$gt", "$lt", "$eq", "$in", "$exists", "$size"})
		var v any = val()
		switch inner {
		case "$in":
			v = list()
		case "$exists":
			v = diffExists(g)
		case "$size":
			v = g.Intn(3)
		}
		return op("$not", bson.D{{Key: inner, Value: v}})
	default:
		return bson.E{Key: p, Value: bson.D{{Key: "$gte", Value: val()}, {Key: "$lte", Value: val()}}}
	}
}

// diffLiteral is a value a filter compares with: a scalar, an array of
// scalars or a document, but on FerretDB never a document (gap (c), and
// $all of a document: difffuzz_gaps_test.go).
func diffLiteral(g *diffGen) any {
	v := diffValue(g, 1)
	if _, doc := v.(bson.D); doc && g.ferret {
		return diffScalar(g)
	}
	return v
}

// diffExists is the operand of an $exists: a boolean, or (one in four,
// not on FerretDB: gap (b)) the number 0 or 1, whose truth decides.
func diffExists(g *diffGen) any {
	if !g.ferret && g.Intn(4) == 0 {
		return int32(g.Intn(2))
	}
	return g.Intn(2) == 0
}

// diffConjunction is a condition on each of two paths.
func diffConjunction(g *diffGen) bson.D {
	leaf := func() bson.E {
		if g.Intn(2) == 0 {
			return bson.E{Key: g.path([]string{"a", "b", "m", "n", "t", "m.n", "a.0"}), Value: diffScalar(g)}
		}
		return diffLeaf(g)
	}
	a := leaf()
	for range 4 {
		if b := leaf(); b.Key != a.Key {
			return bson.D{a, b}
		}
	}
	return bson.D{a}
}

// diffIDFilter is a filter by _id: one, one among others, or with another
// condition.
func diffIDFilter(g *diffGen) bson.D {
	switch g.Intn(4) {
	case 0:
		return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{diffID(g), diffID(g)}}}}}
	case 1:
		return bson.D{{Key: "_id", Value: diffID(g)}, diffLeaf(g)}
	}
	return bson.D{{Key: "_id", Value: diffID(g)}}
}

// diffRead is one read of the fuzzer, run cached or not through the
// round's read handle.
type diffRead struct {
	op      string // find, findOne, count or aggregate
	filter  bson.D
	sort    bson.D
	limit   int64
	proj    bson.D
	stages  bson.A // aggregate: the stages after the first $match
	ordered bool   // the server's order is defined: compared in order
	loose   bool   // compared with numbers by value ($group keys and sums)
}

func diffSort(g *diffGen) bson.D {
	dir := func() int32 { return int32(1 - 2*g.Intn(2)) }
	s := bson.D{}
	if g.Intn(4) > 0 {
		s = append(s, bson.E{Key: g.path(diffSortPaths), Value: dir()})
	}
	return append(s, bson.E{Key: "_id", Value: dir()})
}

// diffProjection is an inclusion or an exclusion of paths none of which is
// a prefix of another, sometimes with _id left out.
func diffProjection(g *diffGen) bson.D {
	v := int32(g.Intn(2))
	p := bson.D{}
	if g.Intn(4) == 0 {
		p = append(p, bson.E{Key: diffPick(g, []string{"m.0", "a.0"}), Value: v})
	}
	for range 1 + g.Intn(2) {
		path := g.path(diffProjPaths)
		if !slices.ContainsFunc(p, func(e bson.E) bool {
			return e.Key == path || strings.HasPrefix(e.Key, path+".") || strings.HasPrefix(path, e.Key+".")
		}) {
			p = append(p, bson.E{Key: path, Value: v})
		}
	}
	if v == 1 && g.Intn(4) == 0 {
		p = append(p, bson.E{Key: "_id", Value: int32(0)})
	}
	return p
}

func diffReadOf(g *diffGen) diffRead {
	f := diffFilter(g, 0)
	if g.Intn(3) == 0 {
		// A conjunction of two paths: what two statements of one bulk
		// write may satisfy together.
		f = diffConjunction(g)
	}
	maybeProj := func() bson.D {
		if g.Intn(3) == 0 {
			return diffProjection(g)
		}
		return nil
	}
	switch k := g.Intn(13); {
	case k < 2:
		return diffRead{op: "find", filter: f, proj: maybeProj()}
	case k < 4:
		return diffRead{op: "find", filter: f, sort: diffSort(g), limit: 1 + int64(g.Intn(3)), proj: maybeProj(), ordered: true}
	case k < 5:
		return diffRead{op: "find", filter: f, sort: diffSort(g), proj: maybeProj(), ordered: true}
	case k < 6:
		return diffRead{op: "findOne", filter: bson.D{{Key: "_id", Value: diffID(g)}}, proj: maybeProj(), ordered: true}
	case k < 7:
		return diffRead{op: "find", filter: diffIDFilter(g), proj: maybeProj()}
	case k < 8:
		return diffRead{op: "findOne", filter: f, sort: diffSort(g), proj: maybeProj(), ordered: true}
	case k < 9:
		return diffRead{op: "count", filter: f, ordered: true}
	default:
		return diffAggregate(g, f)
	}
}

// diffAggregate is a $match-first aggregation with later stages of the
// precise list.
func diffAggregate(g *diffGen, f bson.D) diffRead {
	st := func(name string, v any) bson.D { return bson.D{{Key: name, Value: v}} }
	rd := diffRead{op: "aggregate", filter: f}
	switch g.Intn(7) {
	case 0:
		rd.stages, rd.ordered = bson.A{st("$sort", diffSort(g)), st("$limit", 1+g.Intn(3))}, true
	case 1:
		rd.stages = bson.A{st("$project", diffProjection(g))}
	case 2:
		key := "$" + g.path(diffSortPaths)
		rd.stages = bson.A{st("$group", bson.D{{Key: "_id", Value: key}, {Key: "c", Value: st("$sum", 1)}}), st("$sort", bson.D{{Key: "_id", Value: 1}})}
		rd.ordered, rd.loose = true, true
	case 3:
		rd.stages, rd.ordered = bson.A{st("$count", "c")}, true
	case 4:
		rd.stages = bson.A{st("$unwind", "$a"), st("$project", bson.D{{Key: "a", Value: 1}})}
	case 5:
		rd.stages, rd.ordered, rd.loose = bson.A{st("$group", bson.D{{Key: "_id", Value: nil}, {Key: "s", Value: st("$sum", "$n")}})}, true, true
	default:
		rd.stages, rd.ordered = bson.A{st("$sort", diffSort(g)), st("$limit", 1+g.Intn(3)), st("$project", diffProjection(g))}, true
	}
	return rd
}

// diffCase is one round: the documents it starts with, its cached reads,
// and its writes, in order.
type diffCase struct {
	docs   []bson.D
	reads  []diffRead
	writes []diffWrite
}

func diffCaseOf(g *diffGen) diffCase {
	var cs diffCase
	for _, id := range g.Perm(14)[:5+g.Intn(8)] {
		cs.docs = append(cs.docs, diffDocument(g, int32(1+id)))
		g.ids = append(g.ids, 1+id)
		g.held = diffHeld(cs.docs[len(cs.docs)-1], g.held)
	}
	for range 6 + g.Intn(5) {
		rd := diffReadOf(g)
		cs.reads = append(cs.reads, rd)
		g.pairs = diffPairs(rd.filter, g.pairs)
		g.reads = append(g.reads, rd)
	}
	for range 4 + g.Intn(7) {
		cs.writes = append(cs.writes, diffWriteOf(g))
	}
	return cs
}

// diffPairs appends the paths of f's conditions with the value each
// compares with (through $and, $or, $nor).
func diffPairs(f bson.D, out []bson.E) []bson.E {
	for _, e := range f {
		switch e.Key {
		case "$and", "$or", "$nor":
			for _, sub := range e.Value.(bson.A) {
				out = diffPairs(sub.(bson.D), out)
			}
			continue
		case "_id":
			continue
		}
		v := e.Value
		if d, ok := v.(bson.D); ok && len(d) > 0 && strings.HasPrefix(d[0].Key, "$") {
			switch v = d[0].Value; d[0].Key {
			case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
			case "$in", "$nin", "$all":
				v = diffFirst(v.(bson.A))
			default:
				continue
			}
		}
		out = append(out, bson.E{Key: e.Key, Value: v})
	}
	return out
}

func diffFirst(a bson.A) any {
	if len(a) == 0 {
		return nil
	}
	return a[0]
}

// diffHeld appends the paths and scalar values document d holds: its
// top-level scalars, the elements of its arrays (by the array's path and
// by ".0" for the first), and the scalars of its embedded documents.
func diffHeld(d bson.D, out []bson.E) []bson.E {
	for _, e := range d {
		switch v := e.Value.(type) {
		case bson.A:
			for i, el := range v {
				if _, doc := el.(bson.D); !doc {
					out = append(out, bson.E{Key: e.Key, Value: el})
					if i == 0 {
						out = append(out, bson.E{Key: e.Key + ".0", Value: el})
					}
				}
			}
		case bson.D:
			for _, sub := range v {
				if _, doc := sub.Value.(bson.D); !doc {
					out = append(out, bson.E{Key: e.Key + "." + sub.Key, Value: sub.Value})
				}
			}
		default:
			if e.Key != "_id" {
				out = append(out, e)
			}
		}
	}
	return out
}
