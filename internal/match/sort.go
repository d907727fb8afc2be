package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sort is a compiled sort specification of plain fields ({field: 1 or -1}).
type Sort struct {
	keys []sortKey
}

type sortKey struct {
	path string
	segs []string
	desc bool
}

// CompileSort reads a sort specification; ok is false for anything but
// plain fields with 1 or -1 ($meta, say).
func CompileSort(spec bson.Raw) (Sort, bool) {
	elems, err := spec.Elements()
	if err != nil {
		return Sort{}, false
	}
	var s Sort
	for _, el := range elems {
		if !validPath(el.Key()) {
			return Sort{}, false
		}
		n, ok := numberOf(el.Value())
		if !ok {
			return Sort{}, false
		}
		asc, desc := cmpNumbers(n, number{isInt: true, i: 1}) == 0, cmpNumbers(n, number{isInt: true, i: -1}) == 0
		if !asc && !desc {
			return Sort{}, false
		}
		s.keys = append(s.keys, sortKey{path: el.Key(), segs: split(el.Key()), desc: desc})
	}
	return s, true
}

// Total reports whether the sort orders every two documents: it ends at
// _id, which is unique (keys after it never decide).
func (s Sort) Total() bool {
	for _, k := range s.keys {
		if k.path == "_id" {
			return true
		}
	}
	return false
}

// Paths returns the sorted fields.
func (s Sort) Paths() []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.path
	}
	return out
}

// Before reports whether a sorts strictly before b. Maybe where a key's
// value is an array, reached through one, or not ordered exactly here.
func (s Sort) Before(a, b bson.Raw, o Options) Tri {
	e := env{simpleStrings: o.SimpleStrings}
	for _, k := range s.keys {
		va, oka := sortValue(a, k.segs)
		vb, okb := sortValue(b, k.segs)
		if !oka || !okb {
			return Maybe
		}
		c, t := e.order(va, vb)
		if t != Yes {
			return Maybe
		}
		if k.desc {
			c = -c
		}
		if c != 0 {
			return triOf(c < 0)
		}
		if k.path == "_id" {
			break
		}
	}
	return No // equal keys: not strictly before
}

// sortValue is the value a sort reads at a path: the value, or null when
// missing; ok is false for arrays (sorted by their least or greatest
// element, not reproduced here) and paths through arrays.
func sortValue(doc bson.Raw, segs []string) (bson.RawValue, bool) {
	at := lookup(doc, segs)
	if at.viaArray || at.nested || len(at.vals) > 1 {
		return bson.RawValue{}, false
	}
	if len(at.vals) == 0 {
		return bson.RawValue{Type: bson.TypeNull}, true
	}
	v := at.vals[0]
	return v, v.Type != bson.TypeArray
}

// order orders two values across types: by type bracket, then within one.
func (e env) order(a, b bson.RawValue) (int, Tri) {
	ba, bb := bracket(a.Type), bracket(b.Type)
	if ba == 50 || bb == 50 {
		return 0, Maybe
	}
	if ba != bb {
		return cmpInt(int64(ba), int64(bb)), Yes
	}
	return e.compare(a, b)
}
