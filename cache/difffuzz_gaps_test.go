package cache_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/match"
	"github.com/databridge-go/databridge/internal/testdb"
)

// The server's answers that are not MongoDB's, and the dev server's pinned
// gaps. The cache decides by internal/match, which reproduces MongoDB's
// semantics; the dev server (FerretDB) answers some filters and upserts
// otherwise (docs/ferretdb.md, each pinned by testdb.TestFerretDBGaps), and
// a stale read follows. On FerretDB only, the fuzzer deals with six of
// those gaps:
//
//	(a) a negation ($ne, $nin, $not, $nor) over a dotted path through an
//	    array of documents;
//	(b) $exists of a value that is not a boolean;
//	(c) equality, $eq or $in of a literal document against an array of
//	    documents;
//	(d) an upsert whose filter has equalities under $and (not copied into
//	    the new document);
//	(e) an upsert's $setOnInsert of null (the field left out);
//	(f) an upsert's $setOnInsert of an empty array (the field left out,
//	    the filter's value kept).
//
// It does not generate (b) to (f) (diffExists, diffLiteral, which makes
// no literal document at all, so no $all of a document either,
// diffUpsertFilter, diffOnInsert and the guards of diffWriteOf and
// diffModels). (a) depends on the documents a round's writes make, and
// is excused instead, only when all of these hold (diffExcuse): the
// server's answer to the stale read's filter or to its write's filter
// differs from internal/match's on the documents of that moment
// (diffDiverges); each part of that filter ($and and $or split) whose
// answer differs is a negation over a dotted path, and each document it
// differs on holds an array of documents on that path (diffExplain); and
// the stale answer differs from the server's in those documents. Any
// other stale read fails, a divergence that no gap explains included
// (diffClassFilter), and on MongoDB nothing is excused: there every shape
// is generated.

// diffGapNegation is gap (a), the one the fuzzer excuses.
const diffGapNegation = "(a) a negation over a dotted path through an array of documents"

// diffDivergence is where the server's answer to a filter, on the
// documents then in the collection, is not MongoDB's as internal/match
// reproduces it.
type diffDivergence struct {
	// read is the read whose filter it is, at the check after write (-1:
	// before any write); with read -1, the filter of write, just before
	// it is made.
	read, write int
	filter      bson.D
	// The _ids (extended JSON) the server matches and MongoDB would not,
	// and the converse.
	onlyServer, onlyMongo []string
	// gap is the pinned gap of the dev server that explains it (on
	// FerretDB only), or "".
	gap string
}

func (d diffDivergence) ids() []string { return append(slices.Clone(d.onlyServer), d.onlyMongo...) }

func (d diffDivergence) String() string {
	what := fmt.Sprintf("write %d's filter %s", d.write+1, diffJSON(d.filter))
	if d.read >= 0 {
		what = fmt.Sprintf("read %d's filter after write %d", d.read+1, d.write+1)
		if d.write < 0 {
			what = fmt.Sprintf("read %d's filter before any write", d.read+1)
		}
	}
	why := "no pinned gap of the dev server explains it"
	if d.gap != "" {
		why = "the dev server's gap " + d.gap + ", docs/ferretdb.md"
	}
	return fmt.Sprintf("%s: the server's answer is not MongoDB's (internal/match): _ids it matches and MongoDB would not %v, and the converse %v; %s",
		what, d.onlyServer, d.onlyMongo, why)
}

// diffAll are the documents now in c.
func diffAll(ctx context.Context, c *mongo.Collection) []bson.Raw {
	return diffFind(ctx, c, bson.D{})
}

func diffFind(ctx context.Context, c *mongo.Collection, f bson.D) []bson.Raw {
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

// diffDiverges is where the server's answer to filter, on docs (the
// documents now in c), is not internal/match's, or nil.
func diffDiverges(ctx context.Context, c *mongo.Collection, docs []bson.Raw, filter bson.D) *diffDivergence {
	raw, err := bson.Marshal(filter)
	if err != nil || filter == nil {
		return nil
	}
	m, err := match.Compile(raw, match.Options{SimpleStrings: true})
	if err != nil {
		return nil
	}
	matched := map[string]bool{}
	for _, d := range diffFind(ctx, c, filter) {
		matched[d.Lookup("_id").String()] = true
	}
	d := &diffDivergence{filter: filter}
	for _, doc := range docs {
		id := doc.Lookup("_id").String()
		switch t := m.Match(doc); {
		case t == match.Yes && !matched[id]:
			d.onlyMongo = append(d.onlyMongo, id)
		case t == match.No && matched[id]:
			d.onlyServer = append(d.onlyServer, id)
		}
	}
	if len(d.onlyServer)+len(d.onlyMongo) == 0 {
		return nil
	}
	return d
}

// diffExplain returns the pinned gap of the dev server that explains d, a
// divergence of d.filter on docs, or "": each part of the filter ($and and
// $or split into their clauses; a $nor is one part) whose own answer
// diverges must be a negation over dotted paths, diverging only on
// documents that hold an array of documents on one of those paths; and
// those documents must be all of d's.
func diffExplain(ctx context.Context, c *mongo.Collection, docs []bson.Raw, d *diffDivergence) string {
	byID := map[string]bson.Raw{}
	for _, doc := range docs {
		byID[doc.Lookup("_id").String()] = doc
	}
	explained := map[string]bool{}
	for _, u := range diffUnits(d.filter, nil) {
		ud := diffDiverges(ctx, c, docs, u)
		if ud == nil {
			continue
		}
		paths := diffNegatedDotted(u)
		for _, id := range ud.ids() {
			if !slices.ContainsFunc(paths, func(p string) bool { return diffThroughDocArray(byID[id], p) }) {
				return ""
			}
			explained[id] = true
		}
	}
	for _, id := range d.ids() {
		if !explained[id] {
			return ""
		}
	}
	return diffGapNegation
}

// diffUnits appends the parts of filter f: the clauses of its $and and
// $or, split in turn, and each other condition ($nor included) whole.
func diffUnits(f bson.D, out []bson.D) []bson.D {
	for _, e := range f {
		if e.Key == "$and" || e.Key == "$or" {
			for _, sub := range e.Value.(bson.A) {
				out = diffUnits(sub.(bson.D), out)
			}
			continue
		}
		out = append(out, bson.D{e})
	}
	return out
}

// diffNegatedDotted are the dotted paths condition u negates: every dotted
// path under a $nor, or u's own path when it is dotted and u uses $ne,
// $nin or $not.
func diffNegatedDotted(u bson.D) []string {
	var out []string
	for _, e := range u {
		if e.Key == "$nor" {
			for _, p := range diffPathsOf(bson.D{e}, nil) {
				if strings.Contains(p, ".") {
					out = append(out, p)
				}
			}
			continue
		}
		ops, _ := e.Value.(bson.D)
		if strings.Contains(e.Key, ".") && slices.ContainsFunc(ops, func(o bson.E) bool {
			return o.Key == "$ne" || o.Key == "$nin" || o.Key == "$not"
		}) {
			out = append(out, e.Key)
		}
	}
	return out
}

// diffThroughDocArray reports whether doc holds, on a proper prefix of
// path, an array with a document in it.
func diffThroughDocArray(doc bson.Raw, path string) bool {
	var walk func(v bson.RawValue, rest []string) bool
	walk = func(v bson.RawValue, rest []string) bool {
		if len(rest) == 0 {
			return false
		}
		switch v.Type {
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			if slices.ContainsFunc(vals, func(el bson.RawValue) bool { return el.Type == bson.TypeEmbeddedDocument }) {
				return true
			}
			if i, err := strconv.Atoi(rest[0]); err == nil && i >= 0 && i < len(vals) {
				return walk(vals[i], rest[1:])
			}
		case bson.TypeEmbeddedDocument:
			if f, err := v.Document().LookupErr(rest[0]); err == nil {
				return walk(f, rest[1:])
			}
		}
		return false
	}
	return doc != nil && walk(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}, strings.Split(path, "."))
}

// diffRelevant are the divergences that bear on stale read s: of its read's
// filter just before and just after its write, and of the write's filters.
func diffRelevant(divs []diffDivergence, s diffStale) []diffDivergence {
	var out []diffDivergence
	for _, d := range divs {
		if d.read == s.read && (d.write == s.write || d.write == s.write-1) || d.read < 0 && d.write == s.write {
			out = append(out, d)
		}
	}
	return out
}

// diffExcuse returns the pinned gap of the dev server that explains stale
// read s of rd, given the divergences of its round (divs), or "": there
// must be divergences bearing on it, a gap must explain each, and its
// answer must differ from the server's in their documents (all of them,
// for a read with no limit; one at least, for a read with a limit, whose
// window a wrong document shifts).
func diffExcuse(divs []diffDivergence, rd diffRead, s diffStale) string {
	relevant := diffRelevant(divs, s)
	if len(relevant) == 0 || s.servedErr != nil {
		return ""
	}
	diverging := map[string]bool{}
	for _, d := range relevant {
		if d.gap == "" {
			return ""
		}
		for _, id := range d.ids() {
			diverging[id] = true
		}
	}
	if differing, ok := rd.differing(s.served, s.server); ok {
		in := 0
		for _, id := range differing {
			if diverging[id] {
				in++
			}
		}
		windowed := rd.limit > 0 || rd.op == "findOne" || slices.ContainsFunc(rd.stages, func(st any) bool { return st.(bson.D)[0].Key == "$limit" })
		if in == 0 || !windowed && in < len(differing) {
			return ""
		}
	}
	return relevant[0].gap
}

// differing are the _ids of the documents in which answers a and b of rd
// differ (in content or presence), with ok false when rd's answers are not
// documents with their _id (a count, a $group) or differ only in order.
func (rd diffRead) differing(a, b []bson.Raw) (ids []string, ok bool) {
	if rd.op == "count" || rd.loose || slices.ContainsFunc(rd.stages, func(st any) bool { return st.(bson.D)[0].Key == "$count" }) {
		return nil, false
	}
	byID := func(docs []bson.Raw) (map[string][]string, bool) {
		m := map[string][]string{}
		for _, d := range docs {
			id, err := d.LookupErr("_id")
			if err != nil {
				return nil, false
			}
			m[id.String()] = append(m[id.String()], string(d))
		}
		for _, v := range m {
			slices.Sort(v)
		}
		return m, true
	}
	ma, okA := byID(a)
	mb, okB := byID(b)
	if !okA || !okB {
		return nil, false
	}
	for id, v := range ma {
		if !slices.Equal(v, mb[id]) {
			ids = append(ids, id)
		}
	}
	for id := range mb {
		if _, in := ma[id]; !in {
			ids = append(ids, id)
		}
	}
	return ids, len(ids) > 0
}

// diffNonBoolExists reports whether filter f has an $exists of a value
// that is not a boolean (gap (b)).
func diffNonBoolExists(f bson.D) bool {
	return diffAnyCondition(f, func(op string, v any) bool {
		_, isBool := v.(bool)
		return op == "$exists" && !isBool
	})
}

// diffDocLiteral reports whether filter f compares a path with a literal
// document, alone or in a list (gap (c)).
func diffDocLiteral(f bson.D) bool {
	return diffAnyCondition(f, func(_ string, v any) bool {
		if _, doc := v.(bson.D); doc {
			return true
		}
		list, _ := v.(bson.A)
		return slices.ContainsFunc(list, func(x any) bool { _, doc := x.(bson.D); return doc })
	})
}

// diffAnyCondition reports whether pred holds for a condition of filter f:
// an operator and its operand ("" for an equality), through $and, $or,
// $nor and $not; an $elemMatch is not looked into.
func diffAnyCondition(f bson.D, pred func(op string, v any) bool) bool {
	for _, e := range f {
		switch e.Key {
		case "$and", "$or", "$nor":
			for _, sub := range e.Value.(bson.A) {
				if diffAnyCondition(sub.(bson.D), pred) {
					return true
				}
			}
			continue
		}
		if diffOperators(e.Value, pred) {
			return true
		}
	}
	return false
}

func diffOperators(v any, pred func(op string, v any) bool) bool {
	ops, isDoc := v.(bson.D)
	if !isDoc || len(ops) == 0 || !strings.HasPrefix(ops[0].Key, "$") {
		return pred("", v)
	}
	for _, o := range ops {
		switch o.Key {
		case "$not":
			if diffOperators(o.Value, pred) {
				return true
			}
		case "$elemMatch":
		default:
			if pred(o.Key, o.Value) {
				return true
			}
		}
	}
	return false
}

// TestDiffExcuse plays rounds on the dev server, each made stale by one of
// its wrong answers: those that gap (a) explains are excused, also where
// the write is a raw insert with no _id (a new ObjectID in each replay),
// and the one that no gap the fuzzer excuses explains ($elemMatch on an
// array of documents, under a $nor) is not.
func TestDiffExcuse(t *testing.T) {
	if testing.Short() {
		t.Skip("against the server")
	}
	if !testdb.IsFerretDB(t) {
		t.Skip("NOT RUN against MongoDB: it plays the dev server's wrong answers")
	}
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	run := &diffRun{diffFuzzer: &diffFuzzer{t: t, db: testdb.DBOn(t, cl), ferret: true}}
	ctx := context.Background()
	m := bson.A{bson.D{{Key: "n", Value: int32(1)}}, bson.D{{Key: "n", Value: int32(2)}}}
	elemMatch := bson.D{{Key: "m", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "n", Value: int32(1)}}}}}}
	ne := bson.D{{Key: "m.n", Value: bson.D{{Key: "$ne", Value: int32(1)}}}}
	tests := []struct {
		name string
		give bson.D
		id   bool // the new document has an _id
		want string
	}{
		{"$ne through an array of documents", ne, true, diffGapNegation},
		{"$ne through an array of documents, a new ObjectID", ne, false, diffGapNegation},
		{"$elemMatch on an array of documents", bson.D{{Key: "$nor", Value: bson.A{elemMatch}}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := diffCase{
				docs:   []bson.D{{{Key: "_id", Value: int32(1)}, {Key: "b", Value: int32(1)}}},
				reads:  []diffRead{{op: "find", filter: tt.give}},
				writes: []diffWrite{{op: "insertOne", doc: bson.D{{Key: "_id", Value: int32(2)}, {Key: "m", Value: m}}}},
			}
			if !tt.id {
				cs.writes[0] = diffWrite{raw: true, op: "insertOne", doc: bson.D{{Key: "m", Value: m}}}
			}
			tl := run.play(ctx, cs, -1)
			require.Len(t, tl.stale, 1, "the dev server's answer makes the read stale")
			rep := run.replay(ctx, cs, tl.stale)
			require.NotEmpty(t, diffRelevant(rep.diverged, tl.stale[0]), "the server's answer is not internal/match's")
			_, gap := run.excuse(rep, cs, tl.stale[0])
			assert.Equal(t, tt.want, gap)
		})
	}
}

// TestDiffGaps checks, with no server, that the fuzzer generates gaps (b)
// to (e) on MongoDB and never on FerretDB, and the shapes that explain
// gap (a).
func TestDiffGaps(t *testing.T) {
	t.Run("generated on MongoDB only", func(t *testing.T) {
		for _, ferret := range []bool{false, true} {
			seen := map[string]int{}
			for round := range int64(3000) {
				cs := diffCaseOf(newDiffGen(round, ferret))
				filters := []bson.D{}
				for _, rd := range cs.reads {
					filters = append(filters, rd.filter)
				}
				for _, w := range cs.writes {
					filters = append(filters, w.filter)
					nulls := w.upsert && diffSetsNullOnInsert(w.update)
					for _, m := range w.models {
						filters = append(filters, m.filter)
						nulls = nulls || (m.upsert || w.upsert) && diffSetsNullOnInsert(m.update)
					}
					if diffUpsertAnd(w) {
						seen["(d) upsert with equalities under $and"]++
					}
					if nulls {
						seen["(e) $setOnInsert of null"]++
					}
				}
				for _, f := range filters {
					if diffNonBoolExists(f) {
						seen["(b) $exists of a number"]++
					}
					if diffDocLiteral(f) {
						seen["(c) a literal document"]++
					}
				}
			}
			if ferret {
				assert.Empty(t, seen, "on FerretDB")
			} else {
				assert.Len(t, seen, 4, "on MongoDB: %v", seen)
			}
		}
	})
	t.Run("through an array of documents", func(t *testing.T) {
		doc := func(d bson.D) bson.Raw {
			raw, err := bson.Marshal(d)
			require.NoError(t, err)
			return raw
		}
		x := bson.D{{Key: "n", Value: 1}}
		tests := []struct {
			give bson.D
			path string
			want bool
		}{
			{bson.D{{Key: "m", Value: bson.A{x}}}, "m.n", true},
			{bson.D{{Key: "m", Value: bson.A{1, x}}}, "m.0", true},
			{bson.D{{Key: "m", Value: x}}, "m.n", false},
			{bson.D{{Key: "m", Value: bson.A{x}}}, "m", false},
			{bson.D{{Key: "a", Value: bson.A{1, 2}}}, "a.0", false},
			{bson.D{{Key: "m", Value: bson.D{{Key: "t", Value: bson.A{x}}}}}, "m.t.n", true},
			{bson.D{{Key: "m", Value: bson.D{{Key: "t", Value: bson.A{x}}}}}, "m.t", false},
			{bson.D{{Key: "b", Value: bson.A{x}}}, "m.n", false},
		}
		for _, tt := range tests {
			assert.Equal(t, tt.want, diffThroughDocArray(doc(tt.give), tt.path), "%v %s", tt.give, tt.path)
		}
	})
	t.Run("negated dotted paths", func(t *testing.T) {
		op := func(path, name string, v any) bson.D {
			return bson.D{{Key: path, Value: bson.D{{Key: name, Value: v}}}}
		}
		tests := []struct {
			give bson.D
			want []string
		}{
			{op("m.n", "$ne", 1), []string{"m.n"}},
			{op("m.0", "$not", bson.D{{Key: "$size", Value: 1}}), []string{"m.0"}},
			{op("a.n", "$nin", bson.A{1}), []string{"a.n"}},
			{op("m", "$ne", 1), nil},
			{op("m.n", "$gt", 1), nil},
			{op("m.n", "$eq", 1), nil},
			{bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "b", Value: 1}, {Key: "m.t", Value: 2}}}}}, []string{"m.t"}},
			{bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "b", Value: 1}}}}}, nil},
		}
		for _, tt := range tests {
			assert.Equal(t, tt.want, diffNegatedDotted(tt.give), "%v", tt.give)
		}
	})
}
