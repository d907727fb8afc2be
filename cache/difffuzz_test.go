package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/match"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// The differential fuzzer of the invalidation rules. Each round seeds a
// fresh collection with a few random documents made of the values that
// break matchers (1, int64(1) and 1.0; -0.0 and 0; null and missing;
// arrays of scalars and of documents, empty arrays, nested documents,
// mixed types, dates), caches random reads of every shape docs/caching.md
// calls precise, then makes random writes of every kind, half through odm
// and half raw on a client with the observer. After every write, every
// cached read is compared with the same read without the cache: the
// server's answer is the oracle, also where the dev server's answer
// differs from MongoDB's (docs/ferretdb.md). A difference is a stale read;
// the round is replayed with fewer reads, writes, documents and fields
// until the smallest case that still fails, which is printed.
//
// DATABRIDGE_DIFF_SEED chooses the seed (default: from the clock, printed),
// DATABRIDGE_DIFF_STEPS the number of writes (default diffDefaultSteps;
// `make soak` makes 20,000), DATABRIDGE_DIFF_ROUND replays one round of the
// seed.

const (
	diffDefaultSteps = 600
	// How many stale rounds of one case are minimised (the rest counted).
	diffMinimisePerCase = 1
	// At most this many replays, and this long, to minimise one case.
	diffMaxReplays  = 400
	diffMinimiseFor = 30 * time.Second
)

// diffDoc is a document as odm writes it: every field a raw value, so that
// numbers keep their type, a null stays null and a missing field is left
// out.
type diffDoc struct {
	ID bson.RawValue `bson:"_id,omitempty"`
	A  bson.RawValue `bson:"a,omitempty"`
	B  bson.RawValue `bson:"b,omitempty"`
	M  bson.RawValue `bson:"m,omitempty"`
	N  bson.RawValue `bson:"n,omitempty"`
	T  bson.RawValue `bson:"t,omitempty"`
}

// diffDocOf is d (fields _id, a, b, m, n, t) as a diffDoc.
func diffDocOf(d bson.D) diffDoc {
	raw, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	var out diffDoc
	for _, f := range []struct {
		name string
		dst  *bson.RawValue
	}{{"_id", &out.ID}, {"a", &out.A}, {"b", &out.B}, {"m", &out.M}, {"n", &out.N}, {"t", &out.T}} {
		if v, err := bson.Raw(raw).LookupErr(f.name); err == nil {
			*f.dst = v
		}
	}
	return out
}

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
}

func newDiffGen(seed int64) *diffGen {
	g := &diffGen{Rand: rand.New(rand.NewSource(seed))}
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
			return diffValue(g, 1)
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
		return op("$exists", g.Intn(2) == 0)
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
			v = g.Intn(2) == 0
		case "$size":
			v = g.Intn(3)
		}
		return op("$not", bson.D{{Key: inner, Value: v}})
	default:
		return bson.E{Key: p, Value: bson.D{{Key: "$gte", Value: val()}, {Key: "$lte", Value: val()}}}
	}
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

// run makes the read, cached or not; a count is one document {n: count}.
func (rd diffRead) run(ctx context.Context, h *odm.Collection[bson.Raw], cached bool) ([]bson.Raw, error) {
	var o []query.Option
	if cached {
		o = append(o, query.Cached(time.Hour))
	}
	if rd.sort != nil {
		o = append(o, query.Sort(rd.sort))
	}
	if rd.limit > 0 {
		o = append(o, query.Limit(rd.limit))
	}
	if rd.proj != nil {
		o = append(o, query.Projection(rd.proj))
	}
	switch rd.op {
	case "findOne":
		d, err := h.FindOne(ctx, rd.filter, o...)
		if errors.Is(err, query.ErrNotFound) {
			return nil, nil
		}
		return []bson.Raw{d}, err
	case "count":
		n, err := h.Count(ctx, rd.filter, o...)
		if err != nil {
			return nil, err
		}
		d, err := bson.Marshal(bson.D{{Key: "n", Value: n}})
		return []bson.Raw{d}, err
	case "aggregate":
		p := append(bson.A{bson.D{{Key: "$match", Value: rd.filter}}}, rd.stages...)
		return odm.Aggregate[bson.Raw](ctx, h, p, o...)
	}
	return h.FindMany(ctx, rd.filter, o...)
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

// same reports whether two answers of rd are the same result: in order
// when the order is defined, by value for numbers when rd is loose.
func (rd diffRead) same(a, b []bson.Raw) bool {
	ka, kb := diffKeys(a, rd.loose), diffKeys(b, rd.loose)
	if !rd.ordered {
		slices.Sort(ka)
		slices.Sort(kb)
	}
	return slices.Equal(ka, kb)
}

func diffKeys(docs []bson.Raw, loose bool) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		if loose {
			out[i] = diffLoose(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d})
		} else {
			out[i] = string(d)
		}
	}
	return out
}

// diffLoose renders v with every number as a float64 (and -0 as 0).
func diffLoose(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		f, _ := v.AsFloat64OK()
		if f == 0 {
			f = 0
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		els, _ := bson.Raw(v.Value).Elements()
		var b strings.Builder
		b.WriteString("{")
		for _, e := range els {
			b.WriteString(e.Key() + ":" + diffLoose(e.Value()) + ",")
		}
		return b.String() + "}"
	}
	return v.String()
}

// diffModel is one statement of a bulk write.
type diffModel struct {
	op     string // insertOne, updateOne, updateMany, replaceOne, deleteOne or deleteMany
	filter bson.D
	update bson.D
	doc    bson.D
	upsert bool
}

// diffWrite is one write of the fuzzer, through odm or raw.
type diffWrite struct {
	raw       bool
	op        string
	filter    bson.D
	update    bson.D
	doc       bson.D   // insertOne, replaceOne, findOneAndReplace
	docs      []bson.D // insertMany
	sort      bson.D   // findOneAnd*
	upsert    bool
	after     bool // findOneAnd*: return the document after
	unordered bool // insertMany, bulkWrite
	models    []diffModel
}

// diffUpdate is a random update of one or two operators whose paths do
// not overlap (overlaps are refused by the server). keep names paths the
// update must not touch.
func diffUpdate(g *diffGen, setOnInsert []string) bson.D {
	used := []string{}
	free := func(p string) bool {
		return !slices.ContainsFunc(used, func(u string) bool {
			return u == p || strings.HasPrefix(u, p+".") || strings.HasPrefix(p, u+".")
		})
	}
	path := func(from []string) string {
		for range 8 {
			if p := g.path(from); free(p) {
				used = append(used, p)
				return p
			}
		}
		return ""
	}
	u := bson.D{}
	add := func(op string, e bson.E) {
		if e.Key == "" {
			return
		}
		for i := range u {
			if u[i].Key == op {
				u[i].Value = append(u[i].Value.(bson.D), e)
				return
			}
		}
		u = append(u, bson.E{Key: op, Value: bson.D{e}})
	}
	for _, p := range setOnInsert {
		if free(p) {
			used = append(used, p)
			add("$setOnInsert", bson.E{Key: p, Value: diffValue(g, 1)})
		}
	}
	for range 1 + g.Intn(2) {
		diffOperator(g, path, add)
	}
	if len(u) == 0 {
		u = bson.D{{Key: "$set", Value: bson.D{{Key: "z", Value: int32(1)}}}}
	}
	return u
}

// diffOperator adds one update operator on a free path.
func diffOperator(g *diffGen, path func([]string) string, add func(string, bson.E)) {
	arrays := []string{"a", "m", "b"}
	elem := func() any {
		if g.Intn(4) == 0 {
			return diffSubdoc(g, 1)
		}
		return diffScalar(g)
	}
	switch g.Intn(14) {
	case 0, 1:
		var v any = diffScalar(g)
		if g.Intn(3) == 0 {
			v = diffValue(g, 1)
		}
		if len(g.pairs) > 0 && g.Intn(2) == 0 {
			e := diffPick(g, g.pairs)
			add("$set", bson.E{Key: path([]string{e.Key}), Value: e.Value})
			return
		}
		add("$set", bson.E{Key: path(diffUpdatePaths), Value: v})
	case 2:
		add("$unset", bson.E{Key: path(diffUpdatePaths), Value: ""})
	case 3:
		add("$inc", bson.E{Key: path([]string{"n", "m.n", "b", "a.0"}), Value: diffPick(g, diffNumbers)})
	case 4:
		add("$mul", bson.E{Key: path([]string{"n", "m.n", "b"}), Value: diffPick(g, diffNumbers)})
	case 5:
		add("$min", bson.E{Key: path(diffUpdatePaths), Value: diffScalar(g)})
	case 6:
		add("$max", bson.E{Key: path(diffUpdatePaths), Value: diffScalar(g)})
	case 7:
		from := path([]string{"a", "b", "m", "n", "t", "m.n"})
		to := path([]string{"a", "b", "m", "n", "t"})
		if from != "" && to != "" {
			add("$rename", bson.E{Key: from, Value: to})
		}
	case 8:
		if g.Intn(2) == 0 {
			add("$push", bson.E{Key: path(arrays), Value: elem()})
		} else {
			add("$push", bson.E{Key: path(arrays), Value: bson.D{{Key: "$each", Value: bson.A{elem(), elem()}}}})
		}
	case 9:
		var v any = diffScalar(g)
		switch g.Intn(3) {
		case 0:
			v = bson.D{{Key: "$gte", Value: diffScalar(g)}}
		case 1:
			v = bson.D{{Key: "n", Value: diffScalar(g)}}
		}
		add("$pull", bson.E{Key: path(arrays), Value: v})
	case 10:
		add("$addToSet", bson.E{Key: path(arrays), Value: elem()})
	case 11:
		add("$pop", bson.E{Key: path(arrays), Value: int32(1 - 2*g.Intn(2))})
	case 12:
		var v any = true
		if g.Intn(2) == 0 {
			v = bson.D{{Key: "$type", Value: "date"}}
		}
		add("$currentDate", bson.E{Key: path([]string{"t", "b", "m.t", "n"}), Value: v})
	default:
		add("$setOnInsert", bson.E{Key: path(diffUpdatePaths), Value: diffValue(g, 1)})
	}
}

// diffUpsertFilter is a filter of equalities (what an upsert copies into
// its new document), with the paths it sets.
func diffUpsertFilter(g *diffGen) (bson.D, []string) {
	eq := func() bson.E {
		p := g.path([]string{"a", "b", "n", "t", "m.n", "m.t", "m.0", "a.0"})
		if g.Intn(4) == 0 {
			return bson.E{Key: p, Value: bson.D{{Key: "$eq", Value: diffScalar(g)}}}
		}
		return bson.E{Key: p, Value: diffScalar(g)}
	}
	f := bson.D{}
	if g.Intn(2) == 0 {
		f = append(f, bson.E{Key: "_id", Value: diffNewID(g)})
	}
	for range 1 + g.Intn(2) {
		e := eq()
		if !slices.ContainsFunc(f, func(x bson.E) bool {
			return x.Key == e.Key || strings.HasPrefix(x.Key, e.Key+".") || strings.HasPrefix(e.Key, x.Key+".")
		}) {
			f = append(f, e)
		}
	}
	if g.Intn(4) == 0 {
		f = bson.D{{Key: "$and", Value: bson.A{f, bson.D{diffLeaf(g)}}}}
	}
	var paths []string
	for _, e := range f {
		if e.Key != "_id" && e.Key != "$and" && g.Intn(3) > 0 {
			paths = append(paths, e.Key)
		}
	}
	return f, paths
}

// diffWriteFilter is the filter of a write: by _id, by a value one of
// the round's documents holds, or any filter.
func diffWriteFilter(g *diffGen) bson.D {
	switch k := g.Intn(10); {
	case k < 4:
		return diffIDFilter(g)
	case k < 6 && len(g.held) > 0:
		var paths []string
		for _, e := range g.held {
			if !slices.Contains(paths, e.Key) {
				paths = append(paths, e.Key)
			}
		}
		p := g.path(paths)
		var held []bson.E
		for _, e := range g.held {
			if e.Key == p {
				held = append(held, e)
			}
		}
		e := diffPick(g, held)
		if g.Intn(3) == 0 {
			e.Value = bson.D{{Key: diffPick(g, []string{"$gte", "$lte", "$in"}), Value: e.Value}}
			if d := e.Value.(bson.D); d[0].Key == "$in" {
				d[0].Value = bson.A{d[0].Value, diffScalar(g)}
			}
		}
		return bson.D{e}
	}
	return diffFilter(g, 0)
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

func diffWriteOf(g *diffGen) diffWrite {
	w := diffWrite{raw: g.Intn(2) == 0}
	upsert := func() (bson.D, bson.D) {
		f, paths := diffUpsertFilter(g)
		w.upsert = true
		return f, diffUpdate(g, paths)
	}
	switch k := g.Intn(20); {
	case k < 2:
		w.op, w.doc = "insertOne", diffDocument(g, diffNewID(g))
		if w.raw && g.Intn(4) == 0 {
			w.doc = diffDocument(g, nil) // the driver gives it an ObjectID
		}
	case k < 3:
		w.op, w.unordered = "insertMany", g.Intn(2) == 0
		for range 1 + g.Intn(3) {
			w.docs = append(w.docs, diffDocument(g, diffNewID(g)))
		}
	case k < 6:
		w.op, w.filter, w.update = "updateOne", diffWriteFilter(g), diffUpdate(g, nil)
	case k < 8:
		w.op, w.filter, w.update = "updateMany", diffWriteFilter(g), diffUpdate(g, nil)
	case k < 10:
		w.op = diffPick(g, []string{"updateOne", "updateMany", "findOneAndUpdate"})
		w.filter, w.update = upsert()
		w.after = w.op == "findOneAndUpdate" && g.Intn(2) == 0
	case k < 11:
		w.op, w.upsert = "replaceOne", g.Intn(3) == 0
		w.filter, w.doc = diffReplacement(g, w.raw)
	case k < 12:
		w.op, w.filter, w.update, w.after = "findOneAndUpdate", diffWriteFilter(g), diffUpdate(g, nil), g.Intn(2) == 0
		if g.Intn(2) == 0 {
			w.sort = diffSort(g)
		}
	case k < 13:
		w.op, w.upsert, w.after = "findOneAndReplace", g.Intn(3) == 0, g.Intn(2) == 0
		w.filter, w.doc = diffReplacement(g, w.raw)
	case k < 14:
		w.op, w.filter = "findOneAndDelete", diffWriteFilter(g)
		if g.Intn(2) == 0 {
			w.sort = diffSort(g)
		}
	case k < 15:
		w.op, w.filter = "deleteOne", diffWriteFilter(g)
	case k < 16:
		w.op, w.filter = "deleteMany", diffWriteFilter(g)
	default:
		w.op, w.unordered = "bulkWrite", g.Intn(2) == 0
		w.models = diffModels(g, w.raw, &w.upsert)
	}
	return w
}

// diffReplacement is the filter and document of a replacement: by _id
// (the document keeps it), or raw, by any filter with no _id in the
// document.
func diffReplacement(g *diffGen, raw bool) (bson.D, bson.D) {
	if raw && g.Intn(2) == 0 {
		return diffWriteFilter(g), diffDocument(g, nil)
	}
	id := diffID(g)
	f := bson.D{{Key: "_id", Value: id}}
	if g.Intn(3) == 0 {
		f = append(f, diffLeaf(g))
	}
	return f, diffDocument(g, id)
}

// diffModels are the statements of a bulk write, most of them on one _id,
// so that several change the same document. Through odm, upsert applies
// to every update and replacement (it is one option of the call).
func diffModels(g *diffGen, raw bool, upsert *bool) []diffModel {
	x := diffID(g)
	*upsert = !raw && g.Intn(3) == 0
	var ms []diffModel
	if len(g.reads) > 0 && g.Intn(3) == 0 {
		ms = diffTogether(g, x)
	}
	for range 2 + g.Intn(3) - len(ms) {
		f := bson.D{{Key: "_id", Value: x}}
		switch g.Intn(7) {
		case 0:
			f = diffWriteFilter(g)
		case 1:
			f = append(f, diffLeaf(g))
		}
		m := diffModel{filter: f, upsert: *upsert || (raw && g.Intn(4) == 0)}
		switch k := g.Intn(10); {
		case k < 1:
			m = diffModel{op: "insertOne", doc: diffDocument(g, x)}
		case k < 4:
			m.op, m.update = "updateOne", diffSmallUpdate(g)
		case k < 6:
			m.op, m.update = "updateMany", diffSmallUpdate(g)
		case k < 8:
			m.op, m.filter, m.doc = "replaceOne", bson.D{{Key: "_id", Value: x}}, diffDocument(g, x)
		case k < 9:
			m.op, m.upsert = "deleteOne", false
		default:
			m.op, m.upsert = "deleteMany", false
		}
		ms = append(ms, m)
	}
	return ms
}

// diffTogether are statements on _id x that together, and only together,
// can make its document enter a read of the round: each sets one of the
// values the read's filter compares with, or a replacement holds them all
// and a later statement changes what the read sorts by.
func diffTogether(g *diffGen, x any) []diffModel {
	rd := diffPick(g, g.reads)
	pairs := diffPairs(rd.filter, nil)
	if len(pairs) == 0 {
		return nil
	}
	id := bson.D{{Key: "_id", Value: x}}
	if g.Intn(2) == 0 || len(rd.sort) < 2 {
		var ms []diffModel
		for _, e := range pairs {
			ms = append(ms, diffModel{op: "updateOne", filter: id, update: bson.D{{Key: "$set", Value: bson.D{e}}}})
		}
		return ms
	}
	doc := bson.D{{Key: "_id", Value: x}}
	for _, e := range pairs {
		if !strings.Contains(e.Key, ".") && !slices.ContainsFunc(doc, func(d bson.E) bool { return d.Key == e.Key }) {
			doc = append(doc, e)
		}
	}
	u := bson.D{{Key: "$currentDate", Value: bson.D{{Key: rd.sort[0].Key, Value: true}}}}
	if g.Intn(2) == 0 {
		u = bson.D{{Key: "$set", Value: bson.D{{Key: rd.sort[0].Key, Value: diffScalar(g)}}}}
	}
	return []diffModel{{op: "replaceOne", filter: id, doc: doc}, {op: "updateOne", filter: id, update: u}}
}

// diffSmallUpdate is, half the time, one $set, $unset, $inc or
// $currentDate of one path (what the statements of a bulk write on one
// _id combine), else any update.
func diffSmallUpdate(g *diffGen) bson.D {
	p := g.path(diffUpdatePaths)
	switch g.Intn(8) {
	case 0, 1:
		if len(g.pairs) > 0 && g.Intn(2) == 0 {
			return bson.D{{Key: "$set", Value: bson.D{diffPick(g, g.pairs)}}}
		}
		return bson.D{{Key: "$set", Value: bson.D{{Key: p, Value: diffScalar(g)}}}}
	case 2:
		return bson.D{{Key: "$unset", Value: bson.D{{Key: p, Value: ""}}}}
	case 3:
		return bson.D{{Key: "$currentDate", Value: bson.D{{Key: p, Value: true}}}}
	}
	return diffUpdate(g, nil)
}

// diffEnv is a round's collection: a cache, the handles reading and
// writing through it, and the raw collection on the same client, which
// has the observer.
type diffEnv struct {
	c   *cache.Cache
	rd  *odm.Collection[bson.Raw]
	h   *odm.Collection[diffDoc]
	raw *mongo.Collection
}

// apply makes w; its error is the write's outcome, not the test's.
func (w diffWrite) apply(ctx context.Context, e diffEnv) error {
	if w.raw {
		return w.applyRaw(ctx, e.raw)
	}
	var o []query.Option
	if w.upsert {
		o = append(o, odm.Upsert())
	}
	if w.after {
		o = append(o, odm.ReturnAfter())
	}
	if w.unordered {
		o = append(o, odm.Unordered())
	}
	if w.sort != nil {
		o = append(o, query.Sort(w.sort))
	}
	h := e.h
	var err error
	switch w.op {
	case "insertOne":
		d := diffDocOf(w.doc)
		err = h.Insert(ctx, &d)
	case "insertMany":
		docs := make([]diffDoc, len(w.docs))
		for i, d := range w.docs {
			docs[i] = diffDocOf(d)
		}
		err = h.InsertMany(ctx, docs, o...)
	case "updateOne":
		_, err = h.UpdateOne(ctx, w.filter, w.update, o...)
	case "updateMany":
		_, err = h.UpdateMany(ctx, w.filter, w.update, o...)
	case "replaceOne":
		d := diffDocOf(w.doc)
		if w.upsert {
			err = h.Save(ctx, &d)
		} else {
			err = h.Replace(ctx, &d)
		}
	case "findOneAndUpdate":
		_, err = h.FindOneAndUpdate(ctx, w.filter, w.update, o...)
	case "findOneAndReplace":
		d := diffDocOf(w.doc)
		_, err = h.FindOneAndReplace(ctx, w.filter, &d, o...)
	case "findOneAndDelete":
		_, err = h.FindOneAndDelete(ctx, w.filter, o...)
	case "deleteOne":
		_, err = h.DeleteOne(ctx, w.filter)
	case "deleteMany":
		_, err = h.DeleteMany(ctx, w.filter)
	case "bulkWrite":
		ms := make([]odm.WriteModel, len(w.models))
		for i, m := range w.models {
			ms[i] = m.odm()
		}
		_, err = h.BulkWrite(ctx, ms, o...)
	}
	return err
}

func (m diffModel) odm() odm.WriteModel {
	switch m.op {
	case "insertOne":
		d := diffDocOf(m.doc)
		return odm.InsertModel(&d)
	case "replaceOne":
		d := diffDocOf(m.doc)
		return odm.ReplaceModel(&d)
	case "updateOne":
		return odm.UpdateOneModel(m.filter, m.update)
	case "updateMany":
		return odm.UpdateManyModel(m.filter, m.update)
	case "deleteOne":
		return odm.DeleteOneModel(m.filter)
	}
	return odm.DeleteManyModel(m.filter)
}

func (m diffModel) driver() mongo.WriteModel {
	switch m.op {
	case "insertOne":
		return mongo.NewInsertOneModel().SetDocument(m.doc)
	case "replaceOne":
		return mongo.NewReplaceOneModel().SetFilter(m.filter).SetReplacement(m.doc).SetUpsert(m.upsert)
	case "updateOne":
		return mongo.NewUpdateOneModel().SetFilter(m.filter).SetUpdate(m.update).SetUpsert(m.upsert)
	case "updateMany":
		return mongo.NewUpdateManyModel().SetFilter(m.filter).SetUpdate(m.update).SetUpsert(m.upsert)
	case "deleteOne":
		return mongo.NewDeleteOneModel().SetFilter(m.filter)
	}
	return mongo.NewDeleteManyModel().SetFilter(m.filter)
}

func (w diffWrite) applyRaw(ctx context.Context, c *mongo.Collection) error {
	var err error
	switch w.op {
	case "insertOne":
		_, err = c.InsertOne(ctx, w.doc)
	case "insertMany":
		docs := make([]any, len(w.docs))
		for i, d := range w.docs {
			docs[i] = d
		}
		_, err = c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(!w.unordered))
	case "updateOne":
		_, err = c.UpdateOne(ctx, w.filter, w.update, options.UpdateOne().SetUpsert(w.upsert))
	case "updateMany":
		_, err = c.UpdateMany(ctx, w.filter, w.update, options.UpdateMany().SetUpsert(w.upsert))
	case "replaceOne":
		_, err = c.ReplaceOne(ctx, w.filter, w.doc, options.Replace().SetUpsert(w.upsert))
	case "findOneAndUpdate":
		o := options.FindOneAndUpdate().SetUpsert(w.upsert)
		if w.after {
			o.SetReturnDocument(options.After)
		}
		if w.sort != nil {
			o.SetSort(w.sort)
		}
		err = c.FindOneAndUpdate(ctx, w.filter, w.update, o).Err()
	case "findOneAndReplace":
		o := options.FindOneAndReplace().SetUpsert(w.upsert)
		if w.after {
			o.SetReturnDocument(options.After)
		}
		err = c.FindOneAndReplace(ctx, w.filter, w.doc, o).Err()
	case "findOneAndDelete":
		o := options.FindOneAndDelete()
		if w.sort != nil {
			o.SetSort(w.sort)
		}
		err = c.FindOneAndDelete(ctx, w.filter, o).Err()
	case "deleteOne":
		_, err = c.DeleteOne(ctx, w.filter)
	case "deleteMany":
		_, err = c.DeleteMany(ctx, w.filter)
	case "bulkWrite":
		ms := make([]mongo.WriteModel, len(w.models))
		for i, m := range w.models {
			ms[i] = m.driver()
		}
		_, err = c.BulkWrite(ctx, ms, options.BulkWrite().SetOrdered(!w.unordered))
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	return err
}

func (w diffWrite) String() string {
	via := "odm"
	if w.raw {
		via = "raw"
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

// diffStale is a stale read: read (an index into the case's reads) after
// write (an index into its writes; -1 before any write).
type diffStale struct {
	read, write       int
	hit               bool
	served, server    []bson.Raw
	servedErr, srvErr error
}

// diffTally is what a round checked.
type diffTally struct {
	checked, afterWrite, hitsAfterWrite int
	writes, writeErrs, srvRefused       int
	refused                             []int // reads the server refuses: dropped
	stale                               []diffStale
	stats                               cache.Stats
	notes                               []string // with annotate: where the server's answers diverge
}

func (t *diffTally) add(o diffTally) {
	t.checked += o.checked
	t.afterWrite += o.afterWrite
	t.hitsAfterWrite += o.hitsAfterWrite
	t.writes += o.writes
	t.writeErrs += o.writeErrs
	t.srvRefused += o.srvRefused
	s, o2 := &t.stats, o.stats
	s.Hits, s.Misses, s.Bypassed, s.Unsettled = s.Hits+o2.Hits, s.Misses+o2.Misses, s.Bypassed+o2.Bypassed, s.Unsettled+o2.Unsettled
	s.InvalidatedByID, s.InvalidatedByMatch = s.InvalidatedByID+o2.InvalidatedByID, s.InvalidatedByMatch+o2.InvalidatedByMatch
	s.InvalidatedByPath, s.InvalidatedWide = s.InvalidatedByPath+o2.InvalidatedByPath, s.InvalidatedWide+o2.InvalidatedWide
	s.Kept, s.Discarded = s.Kept+o2.Kept, s.Discarded+o2.Discarded
}

// diffFuzzer plays cases against the server.
type diffFuzzer struct {
	t      *testing.T
	db     *mongo.Database
	rounds int
	// annotate notes the filters of writes and of stale reads whose answer
	// from the server is not MongoDB's (internal/match's semantics).
	annotate bool
}

// play runs cs on a fresh collection with a fresh cache: every read cached
// twice and checked, then after each write every read checked again. With
// stop, it returns at the first stale read of read stop (-1: none).
func (f *diffFuzzer) play(ctx context.Context, cs diffCase, stop int) (tl diffTally) {
	f.rounds++
	name := "diff" + strconv.Itoa(f.rounds)
	raw := f.db.Collection(name)
	coll := f.db.Collection(name)
	c, err := cache.New(cache.Config{MaxCost: 8 << 20})
	require.NoError(f.t, err)
	defer c.Close()
	defer func() { _ = raw.Drop(context.WithoutCancel(ctx)) }()
	e := diffEnv{c: c, rd: handle[bson.Raw](f.t, coll, odm.WithCache(c)), h: handle[diffDoc](f.t, coll, odm.WithCache(c)), raw: raw}
	if len(cs.docs) > 0 {
		docs := make([]any, len(cs.docs))
		for i, d := range cs.docs {
			docs[i] = d
		}
		_, err := raw.InsertMany(ctx, docs)
		require.NoError(f.t, err, "seed the round")
	}
	defer func() { tl.stats = c.Stats() }()
	live := make([]bool, len(cs.reads))
	for i, rd := range cs.reads {
		_, err := rd.run(ctx, e.rd, false)
		if live[i] = err == nil; !live[i] {
			tl.refused = append(tl.refused, i)
		}
	}
	check := func(write int) bool {
		for i, rd := range cs.reads {
			if !live[i] {
				continue
			}
			s := f.check(ctx, e, rd, &tl, write)
			if s != nil {
				s.read = i
				if f.annotate {
					tl.note(fmt.Sprintf("read %d's filter", i+1), diffDiverges(ctx, raw, rd.filter))
				}
				tl.stale = append(tl.stale, *s)
				if i == stop {
					return false
				}
			}
		}
		return true
	}
	for range 2 { // the first fills each entry, the second is a hit
		if !check(-1) {
			return tl
		}
	}
	for i, w := range cs.writes {
		if f.annotate {
			for _, m := range append([]diffModel{{filter: w.filter}}, w.models...) {
				tl.note(fmt.Sprintf("write %d's filter %s", i+1, diffJSON(m.filter)), diffDiverges(ctx, raw, m.filter))
			}
		}
		tl.writes++
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := w.apply(wctx, e); err != nil {
			tl.writeErrs++
		}
		cancel()
		if !check(i) {
			return tl
		}
	}
	return tl
}

func (t *diffTally) note(what, diverges string) {
	if diverges != "" {
		t.notes = append(t.notes, what+": "+diverges)
	}
}

// diffDiverges says where the server's answer to filter, on the documents
// now in c, is not MongoDB's as internal/match reproduces it (one of the
// dev server's wrong answers, docs/ferretdb.md), or "".
func diffDiverges(ctx context.Context, c *mongo.Collection, filter bson.D) string {
	raw, err := bson.Marshal(filter)
	if err != nil || filter == nil {
		return ""
	}
	m, err := match.Compile(raw, match.Options{SimpleStrings: true})
	if err != nil {
		return ""
	}
	ids := func(f bson.D) []bson.Raw {
		cur, err := c.Find(ctx, f)
		if err != nil {
			return nil
		}
		var out []bson.Raw
		for cur.Next(ctx) {
			out = append(out, slices.Clone(cur.Current))
		}
		_ = cur.Close(ctx)
		return out
	}
	matched := map[string]bool{}
	for _, d := range ids(filter) {
		matched[d.Lookup("_id").String()] = true
	}
	var onlyServer, onlyMongo []string
	for _, d := range ids(bson.D{}) {
		id := d.Lookup("_id").String()
		switch t := m.Match(d); {
		case t == match.Yes && !matched[id]:
			onlyMongo = append(onlyMongo, id)
		case t == match.No && matched[id]:
			onlyServer = append(onlyServer, id)
		}
	}
	if len(onlyServer)+len(onlyMongo) == 0 {
		return ""
	}
	return fmt.Sprintf("the dev server's answer is not MongoDB's (internal/match): _ids it matches and MongoDB would not %v, and the converse %v",
		onlyServer, onlyMongo)
}

// check makes rd cached, then uncached, and returns the stale read if they
// differ.
func (f *diffFuzzer) check(ctx context.Context, e diffEnv, rd diffRead, tl *diffTally, write int) *diffStale {
	h0 := e.c.Stats().Hits
	got, gerr := rd.run(ctx, e.rd, true)
	hit := e.c.Stats().Hits > h0
	cache.Core(e.c).Wait()
	want, werr := rd.run(ctx, e.rd, false)
	tl.checked++
	if write >= 0 {
		tl.afterWrite++
		if hit {
			tl.hitsAfterWrite++
		}
	}
	switch {
	case werr != nil:
		// The dev server refuses some filters on some documents: a
		// cached answer to a read the server refuses is not compared.
		tl.srvRefused++
		return nil
	case gerr == nil && rd.same(got, want):
		return nil
	}
	return &diffStale{write: write, hit: hit, served: got, server: want, servedErr: gerr, srvErr: werr}
}

// reproduces reports whether cs still has a stale read of the read tagged
// target (its index in cs.reads), and that stale read.
func (f *diffFuzzer) reproduces(ctx context.Context, cs diffCase, target int) (diffStale, bool) {
	tl := f.play(ctx, cs, target)
	for _, s := range tl.stale {
		if s.read == target {
			return s, true
		}
	}
	return diffStale{}, false
}

// minimise removes reads, writes, statements, documents and fields from cs
// while the target read stays stale (greedy, to a fixpoint), and returns
// the smallest case found with its stale read and the replays it took.
func (f *diffFuzzer) minimise(ctx context.Context, cs diffCase, s diffStale) (diffCase, diffStale, int) {
	cs.writes = cs.writes[:s.write+1]
	deadline := time.Now().Add(diffMinimiseFor)
	replays := 0
	target := s.read
	cls := diffClass(cs, s)
	try := func(c diffCase, tgt int) bool {
		if replays >= diffMaxReplays || time.Now().After(deadline) {
			return false
		}
		replays++
		if got, ok := f.reproduces(ctx, c, tgt); ok && diffClass(c, got) == cls {
			cs, target, s = c, tgt, got
			return true
		}
		return false
	}
	for progress := true; progress; {
		progress = false
		// Other reads: all at once, then one by one.
		if len(cs.reads) > 1 {
			c := cs
			c.reads = []diffRead{cs.reads[target]}
			progress = try(c, 0) || progress
		}
		for i := len(cs.reads) - 1; i >= 0 && len(cs.reads) > 1; i-- {
			if i == target {
				continue
			}
			c := cs
			c.reads = slices.Delete(slices.Clone(cs.reads), i, i+1)
			tgt := target
			if i < target {
				tgt--
			}
			progress = try(c, tgt) || progress
		}
		for i := len(cs.writes) - 1; i >= 0; i-- {
			if i < len(cs.writes) {
				c := cs
				c.writes = slices.Delete(slices.Clone(cs.writes), i, i+1)
				progress = try(c, target) || progress
			}
		}
		progress = f.minimiseParts(&cs, target, try) || progress
	}
	return cs, s, replays
}

// minimiseParts removes the statements of bulk writes, the documents of
// inserts and of the round, their fields, and the clauses of the target
// read's filter and of updates, one at a time.
func (f *diffFuzzer) minimiseParts(cs *diffCase, target int, try func(diffCase, int) bool) bool {
	progress := false
	for wi := range cs.writes {
		for i := len(cs.writes[wi].models) - 1; i >= 0 && len(cs.writes[wi].models) > 1; i-- {
			c := cs.clone()
			c.writes[wi].models = slices.Delete(c.writes[wi].models, i, i+1)
			progress = try(c, target) || progress
		}
		for i := len(cs.writes[wi].docs) - 1; i >= 0 && len(cs.writes[wi].docs) > 1; i-- {
			c := cs.clone()
			c.writes[wi].docs = slices.Delete(c.writes[wi].docs, i, i+1)
			progress = try(c, target) || progress
		}
		for _, u := range diffShrinkUpdate(cs.writes[wi].update) {
			c := cs.clone()
			c.writes[wi].update = u
			progress = try(c, target) || progress
		}
	}
	for i := len(cs.docs) - 1; i >= 0; i-- {
		c := cs.clone()
		c.docs = slices.Delete(c.docs, i, i+1)
		progress = try(c, target) || progress
	}
	for di := range cs.docs {
		for i := len(cs.docs[di]) - 1; i >= 1; i-- {
			c := cs.clone()
			c.docs[di] = slices.Delete(slices.Clone(c.docs[di]), i, i+1)
			progress = try(c, target) || progress
		}
	}
	for wi := range cs.writes {
		progress = diffShrinkDoc(cs, func(c *diffCase) *bson.D { return &c.writes[wi].doc }, target, try) || progress
		for mi := range cs.writes[wi].models {
			progress = diffShrinkDoc(cs, func(c *diffCase) *bson.D { return &c.writes[wi].models[mi].doc }, target, try) || progress
		}
	}
	for i := len(cs.reads[target].filter) - 1; i >= 0 && len(cs.reads[target].filter) > 1; i-- {
		c := cs.clone()
		c.reads[target].filter = slices.Delete(slices.Clone(c.reads[target].filter), i, i+1)
		progress = try(c, target) || progress
	}
	for _, rd := range diffShrinkRead(cs.reads[target]) {
		c := cs.clone()
		c.reads[target] = rd
		progress = try(c, target) || progress
	}
	return progress
}

// diffShrinkDoc removes the fields but _id of the document at(cs), one at
// a time, while the case still fails.
func diffShrinkDoc(cs *diffCase, at func(*diffCase) *bson.D, target int, try func(diffCase, int) bool) bool {
	progress := false
	for i := len(*at(cs)) - 1; i >= 0; i-- {
		if (*at(cs))[i].Key == "_id" {
			continue
		}
		c := cs.clone()
		*at(&c) = slices.Delete(slices.Clone(*at(&c)), i, i+1)
		progress = try(c, target) || progress
	}
	return progress
}

// diffShrinkRead are simpler forms of rd: without its projection or one
// of its paths, its limit, its sort (when it has no limit), or its last
// stage when that is a $project or a $limit.
func diffShrinkRead(rd diffRead) []diffRead {
	var out []diffRead
	if rd.proj != nil {
		r := rd
		r.proj = nil
		out = append(out, r)
		for i := range rd.proj {
			if len(rd.proj) > 1 {
				r := rd
				r.proj = slices.Delete(slices.Clone(rd.proj), i, i+1)
				out = append(out, r)
			}
		}
	}
	if rd.limit > 0 {
		r := rd
		r.limit = 0
		out = append(out, r)
	}
	if rd.op == "find" && rd.sort != nil && rd.limit == 0 {
		r := rd
		r.sort, r.ordered = nil, false
		out = append(out, r)
	}
	if n := len(rd.stages); n > 0 {
		if k := rd.stages[n-1].(bson.D)[0].Key; k == "$project" || k == "$limit" {
			r := rd
			r.stages = rd.stages[: n-1 : n-1]
			out = append(out, r)
		}
	}
	return out
}

// diffShrinkUpdate is u without one of its operators' paths, each way.
func diffShrinkUpdate(u bson.D) []bson.D {
	var out []bson.D
	for i, op := range u {
		fields, _ := op.Value.(bson.D)
		for j := range fields {
			if len(fields) == 1 && len(u) == 1 {
				continue
			}
			v := slices.Clone(u)
			if len(fields) == 1 {
				v = slices.Delete(v, i, i+1)
			} else {
				v[i].Value = slices.Delete(slices.Clone(fields), j, j+1)
			}
			out = append(out, v)
		}
	}
	return out
}

func (cs diffCase) clone() diffCase {
	c := diffCase{docs: slices.Clone(cs.docs), reads: slices.Clone(cs.reads), writes: slices.Clone(cs.writes)}
	for i := range c.writes {
		c.writes[i].models = slices.Clone(c.writes[i].models)
		c.writes[i].docs = slices.Clone(c.writes[i].docs)
	}
	return c
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

// The known cases of stale reads (the issue's), which diffClass names.
const (
	diffClassProjection = "projection with a numeric path segment"
	diffClassBulk       = "bulk write, several statements on one _id"
	diffClassUpsert     = "upsert whose update writes a path its filter sets by equality"
	diffClassSibling    = "inclusion projection of a dotted path, a write to a sibling path"
	diffClassOther      = "other"
	// Stale against the dev server only: MongoDB answers as the rules
	// expect.
	diffClassDevUpsert = "dev server: an upsert's new document lacks the equalities under $and"
	diffClassDevFilter = "dev server: a wrong answer to a filter (docs/ferretdb.md)"
	diffClassDevNull   = "dev server: an upsert's $setOnInsert of null is not applied"
)

// diffClass names the known cases that a stale read's read and the write
// after which it was first seen show, or "other".
func diffClass(cs diffCase, s diffStale) string {
	var cls []string
	rd := cs.reads[s.read]
	var proj []bson.E
	proj = append(proj, rd.proj...)
	for _, st := range rd.stages {
		if e := st.(bson.D)[0]; e.Key == "$project" {
			proj = append(proj, e.Value.(bson.D)...)
		}
	}
	if s.write >= 0 && s.write < len(cs.writes) {
		w := cs.writes[s.write]
		var filtered, touched []string
		filtered, touched = diffPathsOf(w.filter, filtered), diffTouchedOf(w.update, touched)
		for _, m := range w.models {
			filtered, touched = diffPathsOf(m.filter, filtered), diffTouchedOf(m.update, touched)
		}
		if slices.ContainsFunc(proj, func(e bson.E) bool {
			return e.Value != int32(0) && diffNumericSegment(e.Key) && slices.ContainsFunc(filtered, func(f string) bool { return diffOverlap(f, e.Key) })
		}) {
			cls = append(cls, diffClassProjection)
		}
		if slices.ContainsFunc(proj, func(e bson.E) bool {
			parent, _, dotted := diffCut(e.Key)
			return dotted && e.Value != int32(0) && slices.ContainsFunc(touched, func(q string) bool {
				return !diffOverlap(q, e.Key) && strings.HasPrefix(q, parent+".")
			})
		}) {
			cls = append(cls, diffClassSibling)
		}
		if w.op == "bulkWrite" && diffSameID(w.models) {
			cls = append(cls, diffClassBulk)
		}
		upserts := w.upsert && diffUpsertOverlaps(w.filter, w.update)
		for _, m := range w.models {
			upserts = upserts || (m.upsert || w.upsert) && m.update != nil && diffUpsertOverlaps(m.filter, m.update)
		}
		if upserts {
			cls = append(cls, diffClassUpsert)
		}
		if diffUpsertAnd(w) {
			cls = append(cls, diffClassDevUpsert)
		}
		nulls := w.upsert && diffSetsNullOnInsert(w.update)
		for _, m := range w.models {
			nulls = nulls || (m.upsert || w.upsert) && diffSetsNullOnInsert(m.update)
		}
		if nulls {
			cls = append(cls, diffClassDevNull)
		}
	}
	if len(cls) == 0 {
		return diffClassOther
	}
	return strings.Join(cls, " + ")
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

// diffPathsOf appends the paths filter f reads (through $and, $or, $nor).
func diffPathsOf(f bson.D, out []string) []string {
	for _, e := range f {
		switch e.Key {
		case "$and", "$or", "$nor":
			for _, sub := range e.Value.(bson.A) {
				out = diffPathsOf(sub.(bson.D), out)
			}
		default:
			out = append(out, e.Key)
		}
	}
	return out
}

// diffTouchedOf appends the paths update u writes ($rename: both).
func diffTouchedOf(u bson.D, out []string) []string {
	for _, op := range u {
		fields, _ := op.Value.(bson.D)
		for _, e := range fields {
			out = append(out, e.Key)
			if to, ok := e.Value.(string); ok && op.Key == "$rename" {
				out = append(out, to)
			}
		}
	}
	return out
}

func diffOverlap(p, q string) bool {
	return p == q || strings.HasPrefix(p, q+".") || strings.HasPrefix(q, p+".")
}

// diffCut splits a path at its last dot.
func diffCut(path string) (parent, last string, dotted bool) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "", path, false
	}
	return path[:i], path[i+1:], true
}

func diffNumericSegment(path string) bool {
	for seg := range strings.SplitSeq(path, ".") {
		if _, err := strconv.Atoi(seg); err == nil {
			return true
		}
	}
	return false
}

// diffSameID reports whether two statements name the same _id.
func diffSameID(ms []diffModel) bool {
	seen := map[string]bool{}
	for _, m := range ms {
		f := m.filter
		if m.op == "insertOne" {
			f = m.doc
		}
		for _, e := range f {
			if e.Key == "_id" {
				k := diffLoose(diffRawValue(e.Value))
				if seen[k] {
					return true
				}
				seen[k] = true
			}
		}
	}
	return false
}

func diffRawValue(v any) bson.RawValue {
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		return bson.RawValue{}
	}
	return bson.RawValue{Type: t, Value: b}
}

// diffUpsertOverlaps reports whether an upsert's update writes a path its
// filter sets by equality (through $and too).
func diffUpsertOverlaps(filter, update bson.D) bool {
	var eq []string
	var walk func(f bson.D)
	walk = func(f bson.D) {
		for _, e := range f {
			if e.Key == "$and" {
				for _, sub := range e.Value.(bson.A) {
					walk(sub.(bson.D))
				}
			} else if !strings.HasPrefix(e.Key, "$") && diffIsEquality(e.Value) {
				eq = append(eq, e.Key)
			}
		}
	}
	walk(filter)
	return slices.ContainsFunc(diffTouchedOf(update, nil), func(q string) bool {
		return slices.ContainsFunc(eq, func(p string) bool { return diffOverlap(p, q) })
	})
}

// diffIsEquality reports whether a filter's condition on a path is an
// equality: a value, or {$eq: value}.
func diffIsEquality(v any) bool {
	d, ok := v.(bson.D)
	if !ok || len(d) == 0 || !strings.HasPrefix(d[0].Key, "$") {
		return true
	}
	return len(d) == 1 && d[0].Key == "$eq"
}

// diffUpsertAnd reports whether w upserts by a filter with an equality
// under $and: the dev server leaves those out of the new document, which
// MongoDB does not.
func diffUpsertAnd(w diffWrite) bool {
	and := func(f bson.D) bool {
		for _, e := range f {
			if e.Key == "$and" {
				for _, sub := range e.Value.(bson.A) {
					if slices.ContainsFunc(sub.(bson.D), func(c bson.E) bool { return !strings.HasPrefix(c.Key, "$") && diffIsEquality(c.Value) }) {
						return true
					}
				}
			}
		}
		return false
	}
	if w.upsert && w.op != "bulkWrite" && and(w.filter) {
		return true
	}
	return slices.ContainsFunc(w.models, func(m diffModel) bool {
		return (m.upsert || w.upsert) && m.op != "deleteOne" && m.op != "deleteMany" && and(m.filter)
	})
}

// diffSetsNullOnInsert reports whether update u's $setOnInsert sets a path
// to null, which the dev server leaves out of the new document.
func diffSetsNullOnInsert(u bson.D) bool {
	return slices.ContainsFunc(u, func(op bson.E) bool {
		fields, _ := op.Value.(bson.D)
		return op.Key == "$setOnInsert" && slices.ContainsFunc(fields, func(e bson.E) bool { return e.Value == nil })
	})
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
}

// diffRun is a run of the fuzzer: its seed, and the stale reads by class.
type diffRun struct {
	*diffFuzzer
	seed  int64
	cases map[string]*diffCaseStats
	order []string
}

// stale classifies the first stale read of a round, and minimises it and
// reports it unless diffMinimisePerCase of its class already were.
func (run *diffRun) stale(ctx context.Context, round int64, cs diffCase, tl diffTally) {
	// Refused reads are dropped from the case that is minimised.
	s := tl.stale[0]
	for _, i := range slices.Backward(tl.refused) {
		cs.reads = slices.Delete(cs.reads, i, i+1)
		if i < s.read {
			s.read--
		}
	}
	cls := run.classify(ctx, cs, s)
	st := run.cases[cls]
	if st == nil {
		st = &diffCaseStats{}
		run.cases[cls] = st
		run.order = append(run.order, cls)
	}
	st.rounds++
	st.reads += len(tl.stale)
	if st.minimised >= diffMinimisePerCase {
		run.t.Logf("stale read (seed %d, round %d): %s", run.seed, round, cls)
		return
	}
	st.minimised++
	m, ms, replays := run.minimise(ctx, cs, s)
	run.annotate = true
	notes := run.play(ctx, m, ms.read).notes
	run.annotate = false
	run.t.Errorf("stale read (seed %d, round %d: DATABRIDGE_DIFF_SEED=%d DATABRIDGE_DIFF_ROUND=%d): %s\nminimal case (%d replays):\n%s",
		run.seed, round, run.seed, round, cls, replays, m.report(ms, notes))
}

// classify is diffClass, with the dev server's wrong answers to the
// filters of the read and of the writes (a replay, annotated).
func (run *diffRun) classify(ctx context.Context, cs diffCase, s diffStale) string {
	cls := diffClass(cs, s)
	c := cs.clone()
	c.writes = c.writes[:s.write+1]
	run.annotate = true
	notes := run.play(ctx, c, s.read).notes
	run.annotate = false
	if len(notes) == 0 {
		return cls
	}
	if cls == diffClassOther {
		return diffClassDevFilter
	}
	return cls + " + " + diffClassDevFilter
}

// TestDifferentialRules is the differential fuzzer (see above): zero stale
// reads in $DATABRIDGE_DIFF_STEPS writes (default 600), each followed by a
// check of every cached read of its round against the server, and enough
// of those reads hits (the rules kept their entries through the write)
// that the check means something.
func TestDifferentialRules(t *testing.T) {
	if testing.Short() {
		t.Skip("a fuzzer against the server")
	}
	seed := diffEnvInt(t, "DATABRIDGE_DIFF_SEED", time.Now().UnixNano()%1_000_000_007)
	steps := diffEnvInt(t, "DATABRIDGE_DIFF_STEPS", diffDefaultSteps)
	only := diffEnvInt(t, "DATABRIDGE_DIFF_ROUND", -1)
	t.Logf("seed %d (DATABRIDGE_DIFF_SEED=%d to replay), %d steps", seed, seed, steps)
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	run := &diffRun{diffFuzzer: &diffFuzzer{t: t, db: testdb.DBOn(t, cl)}, seed: seed, cases: map[string]*diffCaseStats{}}
	ctx := context.Background()
	var total diffTally
	refused := 0
	start := time.Now()
	for round := int64(0); int64(total.writes) < steps; round++ {
		cs := diffCaseOf(newDiffGen(seed*1_000_003 + round))
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
	stale := 0
	for _, cls := range run.order {
		st := run.cases[cls]
		stale += st.reads
		t.Logf("stale: %s: %d rounds, %d reads", cls, st.rounds, st.reads)
	}
	assert.Zero(t, stale, "stale reads")
	if only < 0 {
		assert.Greater(t, float64(total.hitsAfterWrite), 0.25*float64(total.afterWrite), "cached reads after a write that were hits")
	}
}
