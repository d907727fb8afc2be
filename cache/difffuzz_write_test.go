package cache_test

import (
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The generation of the fuzzer's writes: updates, their filters, bulk writes.

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
	pre       bool // through odm with pre-images on (odm.WithPreImages)
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
			add("$setOnInsert", bson.E{Key: p, Value: diffOnInsert(g)})
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
		add("$setOnInsert", bson.E{Key: path(diffUpdatePaths), Value: diffOnInsert(g)})
	}
}

// diffOnInsert is the value of a $setOnInsert: any value, but on FerretDB
// never null nor an empty array (gaps (e) and (f): difffuzz_gaps_test.go).
func diffOnInsert(g *diffGen) any {
	v := diffValue(g, 1)
	for g.ferret && (v == nil || diffEmptyArray(v)) {
		v = diffValue(g, 1)
	}
	return v
}

// diffEmptyArray reports whether v is an empty array.
func diffEmptyArray(v any) bool {
	switch a := v.(type) {
	case bson.A:
		return len(a) == 0
	case []any:
		return len(a) == 0
	}
	return false
}

// diffUpsertFilter is a filter of equalities (what an upsert copies into
// its new document), with the paths it sets. One in four has another
// condition: with the equalities under $and, but on FerretDB beside them
// (gap (d): difffuzz_gaps_test.go).
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
		leaf := diffLeaf(g)
		if !g.ferret {
			f = bson.D{{Key: "$and", Value: bson.A{f, bson.D{leaf}}}}
		} else if !slices.ContainsFunc(f, func(x bson.E) bool { return diffOverlap(x.Key, leaf.Key) }) {
			f = append(f, leaf)
		}
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

func diffWriteOf(g *diffGen) diffWrite {
	w := diffWrite{raw: g.Intn(2) == 0}
	w.pre = !w.raw && g.Intn(2) == 0
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
	if g.ferret && w.upsert && w.op != "bulkWrite" && diffAndEqualities(w.filter) {
		w.upsert = false // gap (d): difffuzz_gaps_test.go
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
		if g.ferret && m.upsert && m.update != nil && diffAndEqualities(m.filter) {
			m.filter = bson.D{{Key: "_id", Value: x}} // gap (d): difffuzz_gaps_test.go
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
