package match

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Projection says which paths of a stored document a projected result
// keeps exactly as the collection holds them.
type Projection struct {
	known   bool // a plain inclusion or exclusion of fields
	include bool
	paths   []string
	noID    bool
}

// CompileProjection reads a projection; nil keeps everything. A projection
// with anything but 0/1 values (expressions, $slice, $elemMatch, a
// positional "a.$") keeps nothing this package knows of.
func CompileProjection(spec bson.Raw) Projection {
	if spec == nil {
		return Projection{known: true}
	}
	elems, err := spec.Elements()
	if err != nil {
		return Projection{}
	}
	p := Projection{known: true}
	mode := 0 // 1 include, -1 exclude
	for _, el := range elems {
		on, ok := flag(el.Value())
		if !ok || !validPath(el.Key()) {
			return Projection{}
		}
		if el.Key() == "_id" {
			p.noID = !on
			continue
		}
		m := -1
		if on {
			m = 1
		}
		if mode != 0 && mode != m {
			return Projection{}
		}
		mode = m
		p.paths = append(p.paths, el.Key())
	}
	p.include = mode == 1
	return p
}

func flag(v bson.RawValue) (on, ok bool) {
	if b, ok := v.BooleanOK(); ok {
		return b, true
	}
	n, ok := numberOf(v)
	if !ok {
		return false, false
	}
	return cmpNumbers(n, number{isInt: true}) != 0, true
}

// KeepsAll reports whether the projection keeps every path (none given).
func (p Projection) KeepsAll() bool { return p.known && len(p.paths) == 0 && !p.noID }

// Keeps reports whether the stored result holds path exactly as the
// collection does.
func (p Projection) Keeps(path string) bool {
	if !p.known {
		return false
	}
	if path == "_id" || Field(path) == "_id" {
		return !p.noID
	}
	if len(p.paths) == 0 {
		return true
	}
	for _, q := range p.paths {
		if p.include && (q == path || Overlaps(q, path) && len(q) < len(path)) {
			// path is under an included one; unless that one names a
			// numeric segment below the top: the server projects "m.0"
			// as the field "0" of each document in m, never as element
			// 0, so a filter's "m.0" reads what the result may lack.
			return !numericBelowTop(q)
		}
		if !p.include && (Overlaps(q, path) || Overlaps(q, withoutIndexes(path))) {
			// path holds, or is under, an excluded one; "docs.0.y" reads
			// element 0's y, which {"docs.y": 0} excluded
			// (TestExclusionUnderArrayIndexPath).
			return false
		}
	}
	return !p.include
}

// numericBelowTop reports whether a path has a numeric segment after its
// first (a top-level field named "0" is a field: a document is no array).
func numericBelowTop(path string) bool {
	segs := split(path)
	for _, s := range segs[1:] {
		if isIndex(s) {
			return true
		}
	}
	return false
}

// withoutIndexes returns path without its numeric segments below the top:
// the path it names when each of them indexes an array.
func withoutIndexes(path string) string {
	segs := split(path)
	out := segs[:1:1]
	for _, s := range segs[1:] {
		if !isIndex(s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ".")
}
