package cachecore

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The index walk: which entries a statement may affect, found from the
// collection's indexes (space.go) rather than by visiting every entry.
// Every rule of decide.go that can keep an entry must have its entries
// named here; TestIndexNamesEveryAffectedEntry (index_oracle_test.go) checks the
// two agree on random entries and writes.

// candidates calls visit once for each entry statement s may affect (under
// mu): the rules decide for those; no other entry can be affected.
func (sp *space) candidates(s *Stmt, visit func(*dep)) {
	each := func(ds set) {
		for d := range ds {
			if sp.visited[d] != sp.stamp {
				sp.visited[d] = sp.stamp
				visit(d)
			}
		}
	}
	each(sp.wild)
	if s.Op == OpInsert {
		sp.entering(s.entering(), each)
		return
	}
	each(sp.opaque)
	if s.idsKnown {
		for _, id := range s.ids {
			each(sp.byID[id])
		}
	} else {
		each(sp.finds)
	}
	if s.Op == OpDelete {
		each(sp.countish)
		return
	}
	if s.Op == OpReplace || s.u.All || (s.Upsert && !s.NotUpserted) {
		each(sp.deps) // any document may enter any entry
		return
	}
	for _, t := range s.u.Touched {
		f := strings.SplitN(t, ".", 2)[0]
		if t == "" {
			each(sp.deps)
			return
		}
		each(sp.readers[f])
		vals, ok := sp.eqOnly[f]
		if !ok {
			continue
		}
		if v, set := s.u.Set[t]; set && t == f {
			sp.eachValue(v, vals, each) // only the entries that equal the new value
			continue
		}
		if s.u.Unset[f] {
			continue // a missing field equals no value
		}
		for _, ds := range vals {
			each(ds)
		}
	}
}

// eachValue visits the entries of vals keyed by v, or by an element of v
// when it is an array.
func (sp *space) eachValue(v bson.RawValue, vals map[string]set, each func(set)) {
	if arr, ok := v.ArrayOK(); ok {
		els, err := arr.Values()
		if err != nil {
			for _, ds := range vals {
				each(ds)
			}
			return
		}
		for _, el := range els {
			sp.eachValue(el, vals, each)
		}
		return
	}
	if k, ok := valueKey(v, sp.simple.Load()); ok {
		each(vals[k])
		return
	}
	if _, isDoc := v.DocumentOK(); !isDoc && v.Type != bson.TypeNull {
		for _, ds := range vals { // a value the index does not key: all of them
			each(ds)
		}
	}
}

// entering visits the entries whose equality fields a document entering
// the collection holds (all of them when the document is not known).
func (sp *space) entering(doc bson.Raw, each func(set)) {
	if doc == nil {
		each(sp.deps)
		return
	}
	simple := sp.simple.Load()
	var buf [64]byte
	for _, g := range sp.groups {
		switch k, st := scalarTuple(buf[:0], doc, g.fields, simple); st {
		case tupleKey:
			each(g.byTuple[string(k)]) // the common case: no array, no allocation
			continue
		case tupleNone:
			continue
		}
		keys, ok := tuples(doc, g.fields, simple)
		if !ok {
			for _, ds := range g.byTuple {
				each(ds)
			}
			continue
		}
		for _, k := range keys {
			each(g.byTuple[k])
		}
	}
}

const maxTuples = 64

// scalarTuple appends the index key of doc in a group of fields when doc
// holds a keyable, non-array value in each (tupleKey); tupleNone when doc
// lacks one of the fields (it can match no entry of the group);
// tupleOther otherwise (tuples decides then).
func scalarTuple(b []byte, doc bson.Raw, fields []string, simple bool) ([]byte, int) {
	for i, f := range fields {
		v, err := doc.LookupErr(f)
		if err != nil {
			return b, tupleNone
		}
		if v.Type == bson.TypeArray {
			return b, tupleOther
		}
		if i > 0 {
			b = append(b, 0)
		}
		var ok bool
		if b, ok = appendValueKey(b, v, simple); !ok {
			return b, tupleOther
		}
	}
	return b, tupleKey
}

const (
	tupleKey = iota
	tupleNone
	tupleOther
)

// tuples returns the index keys doc can match in a group of fields: for
// each field its value, or each element of an array there. ok is false
// when there are too many combinations to list.
func tuples(doc bson.Raw, fields []string, simple bool) ([]string, bool) {
	keys := []string{""}
	for i, f := range fields {
		v, err := doc.LookupErr(f)
		if err != nil {
			return nil, true // a required field is missing: none match
		}
		var ks []string
		if arr, isArr := v.ArrayOK(); isArr {
			els, err := arr.Values()
			if err != nil {
				return nil, false
			}
			for _, el := range els {
				k, ok := valueKey(el, simple)
				if !ok {
					return nil, false // a value the index does not key: all of the group
				}
				ks = append(ks, k)
			}
		} else {
			k, ok := valueKey(v, simple)
			if !ok {
				return nil, false
			}
			ks = append(ks, k)
		}
		next := make([]string, 0, len(keys)*len(ks))
		for _, prefix := range keys {
			for _, k := range ks {
				if i > 0 {
					next = append(next, prefix+"\x00"+k)
				} else {
					next = append(next, k)
				}
			}
		}
		if len(next) > maxTuples {
			return nil, false
		}
		keys = next
	}
	return keys, true
}
