package match

import (
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// found is what a dotted path reaches in a document, with MongoDB's
// traversal: through a document by field name; through an array, into each
// element that is a document (by field name) and, when the segment is a
// number, to the element at that index.
type found struct {
	vals     []bson.RawValue // the values at the end of the path (arrays not expanded)
	missing  bool            // some branch reached no value
	viaArray bool            // some branch crossed an array before the last segment
	nested   bool            // an array inside an array was crossed: not reproduced here
}

// lookup follows path (split on dots) in doc.
func lookup(doc bson.Raw, path []string) found {
	var f found
	cur := []bson.RawValue{{Type: bson.TypeEmbeddedDocument, Value: doc}}
	var next []bson.RawValue
	for _, seg := range path {
		next = next[:0]
		for _, v := range cur {
			switch v.Type {
			case bson.TypeEmbeddedDocument:
				el, err := bson.Raw(v.Value).LookupErr(seg)
				if err != nil {
					f.missing = true
					continue
				}
				next = append(next, el)
			case bson.TypeArray:
				f.viaArray = true
				next = f.intoArray(v.Value, seg, next)
			default:
				f.missing = true
			}
		}
		cur, next = next, cur
	}
	f.vals = append([]bson.RawValue(nil), cur...)
	return f
}

// intoArray steps from an array into segment seg of its elements.
func (f *found) intoArray(arr []byte, seg string, next []bson.RawValue) []bson.RawValue {
	vals, err := bson.RawArray(arr).Values()
	if err != nil {
		f.nested = true // malformed: give up on exactness
		return next
	}
	if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(vals) && isIndex(seg) {
		next = append(next, vals[i])
	}
	for _, el := range vals {
		switch el.Type {
		case bson.TypeEmbeddedDocument:
			if v, err := bson.Raw(el.Value).LookupErr(seg); err == nil {
				next = append(next, v)
			} else {
				f.missing = true
			}
		case bson.TypeArray:
			f.nested = true
		default:
			f.missing = true
		}
	}
	return next
}

// isIndex reports whether seg is an array index as MongoDB reads one: all
// digits, without a leading zero.
func isIndex(seg string) bool {
	if seg == "" || (len(seg) > 1 && seg[0] == '0') {
		return false
	}
	for _, c := range seg {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// candidates are the values an equality, range, $in or $type compares: the
// values at the path, and the elements of those that are arrays.
func (f found) candidates() []bson.RawValue {
	out := f.vals
	expanded := false
	for _, v := range f.vals {
		if v.Type != bson.TypeArray {
			continue
		}
		els, err := bson.RawArray(v.Value).Values()
		if err != nil {
			continue
		}
		if !expanded {
			out = append([]bson.RawValue(nil), f.vals...)
			expanded = true
		}
		out = append(out, els...)
	}
	return out
}

// split splits a dotted path.
func split(path string) []string { return strings.Split(path, ".") }

// validPath reports whether a field path is one this package reads: no
// empty segment, no segment starting with '$', no NUL.
func validPath(path string) bool {
	if path == "" || strings.ContainsRune(path, 0) {
		return false
	}
	for _, seg := range split(path) {
		if seg == "" || seg[0] == '$' {
			return false
		}
	}
	return true
}
