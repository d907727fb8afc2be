package cache_test

import (
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The classes of stale reads: the known cases a stale read shows.

// The known cases of stale reads (the issue's), which diffClass names.
const (
	diffClassProjection = "projection with a numeric path segment"
	diffClassBulk       = "bulk write, several statements on one _id"
	diffClassUpsert     = "upsert whose update writes a path its filter sets by equality"
	diffClassSibling    = "inclusion projection of a dotted path, a write to a sibling path"
	diffClassOther      = "other"
	// The shapes of the dev server's upsert gaps (d) and (e), which the
	// fuzzer makes on MongoDB only: there, a stale read of this class is
	// the library's.
	diffClassUpsertAnd  = "upsert whose filter has equalities under $and"
	diffClassUpsertNull = "upsert with a $setOnInsert of null"
	// The server's answer to the read's or the write's filter is not
	// MongoDB's as internal/match reproduces it, and no pinned gap of the
	// dev server explains it (difffuzz_gaps_test.go): on MongoDB, a bug
	// of internal/match; on FerretDB, a gap to pin and document.
	diffClassFilter = "the server's answer to a filter is not internal/match's, and no pinned dev-server gap explains it"
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
			cls = append(cls, diffClassUpsertAnd)
		}
		nulls := w.upsert && diffSetsNullOnInsert(w.update)
		for _, m := range w.models {
			nulls = nulls || (m.upsert || w.upsert) && diffSetsNullOnInsert(m.update)
		}
		if nulls {
			cls = append(cls, diffClassUpsertNull)
		}
	}
	if len(cls) == 0 {
		return diffClassOther
	}
	return strings.Join(cls, " + ")
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
// MongoDB does not (gap (d)).
func diffUpsertAnd(w diffWrite) bool {
	if w.upsert && w.op != "bulkWrite" && diffAndEqualities(w.filter) {
		return true
	}
	return slices.ContainsFunc(w.models, func(m diffModel) bool {
		return (m.upsert || w.upsert) && m.op != "deleteOne" && m.op != "deleteMany" && diffAndEqualities(m.filter)
	})
}

// diffAndEqualities reports whether filter f has an equality under an
// $and, at any depth of $and.
func diffAndEqualities(f bson.D) bool {
	return slices.ContainsFunc(f, func(e bson.E) bool {
		if e.Key != "$and" {
			return false
		}
		return slices.ContainsFunc(e.Value.(bson.A), func(sub any) bool {
			d := sub.(bson.D)
			return diffAndEqualities(d) || slices.ContainsFunc(d, func(c bson.E) bool {
				return !strings.HasPrefix(c.Key, "$") && diffIsEquality(c.Value)
			})
		})
	})
}

// diffSetsNullOnInsert reports whether update u's $setOnInsert sets a path
// to null, which the dev server leaves out of the new document (gap (e)).
func diffSetsNullOnInsert(u bson.D) bool {
	return slices.ContainsFunc(u, func(op bson.E) bool {
		fields, _ := op.Value.(bson.D)
		return op.Key == "$setOnInsert" && slices.ContainsFunc(fields, func(e bson.E) bool { return e.Value == nil })
	})
}
