package match

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Apply returns the document an update of operators makes of doc, an
// existing document (so $setOnInsert does nothing), and whether the update
// modifies it as the server counts a modification (nModified): a $set to a
// value of the same type and bytes, an $unset of a missing field, and an
// $inc whose result has the type of the value before and equals it are
// no-ops.
//
// ok is false, and after and modified mean nothing, for what it does not
// reproduce exactly: operators other than $set, $unset, $inc and
// $setOnInsert, positional paths, a path through an array or a value that
// is not a document, an $inc of a Decimal128 or of an int64 that overflows,
// an operand -0 (which some servers store as 0),
// two paths of which one is or lies inside the other (the server refuses
// them), and two or more fields created in one embedded document (their
// order depends on the server's version). The server applies such updates,
// or refuses them, as it does; only this evaluation gives up.
func Apply(doc bson.Raw, update bson.RawValue) (after bson.Raw, modified, ok bool) {
	u, ok := update.DocumentOK()
	if !ok {
		return nil, false, false
	}
	elems, err := u.Elements()
	if err != nil || len(elems) == 0 {
		return nil, false, false
	}
	var edits []edit
	for _, el := range elems {
		op := el.Key()
		switch op {
		case "$set", "$unset", "$inc", "$setOnInsert":
		default:
			return nil, false, false
		}
		fields, ok := el.Value().DocumentOK()
		if !ok {
			return nil, false, false
		}
		fes, err := fields.Elements()
		if err != nil {
			return nil, false, false
		}
		if op == "$setOnInsert" {
			continue // the document exists: not inserted
		}
		for _, fe := range fes {
			segs := strings.Split(fe.Key(), ".")
			for _, s := range segs {
				if s == "" || strings.HasPrefix(s, "$") {
					return nil, false, false
				}
			}
			v := fe.Value()
			if op == "$inc" && !incrementable(v) {
				return nil, false, false
			}
			if f, ok := v.DoubleOK(); ok && f == 0 && math.Signbit(f) {
				return nil, false, false // -0: some servers store 0
			}
			edits = append(edits, edit{segs: segs, op: op, v: v})
		}
	}
	for i, a := range edits {
		for _, b := range edits[i+1:] {
			if Overlaps(strings.Join(a.segs, "."), strings.Join(b.segs, ".")) {
				return nil, false, false
			}
		}
	}
	out, modified, ok := applyEdits(doc, edits, true)
	if !ok {
		return nil, false, false
	}
	return out, modified, true
}

type edit struct {
	segs []string
	op   string
	v    bson.RawValue
}

// incrementable reports whether v is an $inc operand Apply reproduces.
func incrementable(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		return true
	}
	return false
}

// applyEdits applies edits (paths relative to doc) to doc.
func applyEdits(doc bson.Raw, edits []edit, root bool) (bson.Raw, bool, bool) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, false, false
	}
	byField := map[string][]edit{}
	for _, e := range edits {
		byField[e.segs[0]] = append(byField[e.segs[0]], edit{segs: e.segs[1:], op: e.op, v: e.v})
	}
	out := make([]byte, 4, len(doc)+64)
	modified := false
	for _, el := range elems {
		k := el.Key()
		es, ok := byField[k]
		if !ok {
			out = append(out, el...)
			continue
		}
		delete(byField, k)
		v, present, mod, ok := applyField(el.Value(), true, es)
		if !ok {
			return nil, false, false
		}
		modified = modified || mod
		if present {
			out = appendElem(out, k, v)
		}
	}
	// Fields the update creates, in the order of their names (MongoDB 5.0
	// and later apply an update's fields in that order).
	var created []string
	for k := range byField {
		created = append(created, k)
	}
	slices.Sort(created)
	n := 0
	for _, k := range created {
		v, present, mod, ok := applyField(bson.RawValue{}, false, byField[k])
		if !ok {
			return nil, false, false
		}
		if !present {
			continue // an $unset of a missing field
		}
		if n++; n > 1 && !root {
			return nil, false, false // their order in an embedded document depends on the version
		}
		modified = modified || mod
		out = appendElem(out, k, v)
	}
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out, modified, true
}

// applyField applies the edits of one field (paths relative to its value;
// one empty path: the field itself) to its value old (exists: it is there).
func applyField(old bson.RawValue, exists bool, es []edit) (v bson.RawValue, present, modified, ok bool) {
	if len(es) == 1 && len(es[0].segs) == 0 {
		e := es[0]
		switch e.op {
		case "$set":
			return e.v, true, !exists || !sameValue(old, e.v), true
		case "$unset":
			return bson.RawValue{}, false, exists, true
		case "$inc":
			if !exists {
				return e.v, true, true, true
			}
			sum, ok := increment(old, e.v)
			if !ok {
				return bson.RawValue{}, false, false, false
			}
			if sameNumber(old, sum) {
				return old, true, false, true // a no-op leaves the value as it was (-0 stays -0)
			}
			return sum, true, true, true
		}
		return bson.RawValue{}, false, false, false
	}
	for _, e := range es {
		if len(e.segs) == 0 {
			return bson.RawValue{}, false, false, false // a path inside another
		}
	}
	var sub bson.Raw
	switch {
	case !exists && allUnsets(es):
		return bson.RawValue{}, false, false, true // nothing to remove, nothing made
	case !exists:
		sub = emptyDoc
	case old.Type == bson.TypeEmbeddedDocument:
		sub = old.Document()
	case old.Type != bson.TypeArray && allUnsets(es):
		// An $unset of a path through a scalar: the path does not
		// exist, nothing changes (a $set or an $inc there is refused).
		return old, true, false, true
	default:
		return bson.RawValue{}, false, false, false // an array, or a scalar under $set or $inc
	}
	d, mod, ok := applyEdits(sub, es, false)
	if !ok {
		return bson.RawValue{}, false, false, false
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}, true, mod || !exists, true
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

func allUnsets(es []edit) bool {
	for _, e := range es {
		if e.op != "$unset" {
			return false
		}
	}
	return true
}

// sameValue reports whether a and b have the same type and bytes (the
// server's test of a no-op).
func sameValue(a, b bson.RawValue) bool { return a.Type == b.Type && bytes.Equal(a.Value, b.Value) }

// sameNumber is the server's test of an $inc that changes nothing: the
// same type and an equal value (doubles by ==, so -0 equals 0 and NaN
// equals nothing).
func sameNumber(a, b bson.RawValue) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == bson.TypeDouble {
		return a.Double() == b.Double()
	}
	return bytes.Equal(a.Value, b.Value)
}

// increment is old + by as the server's $inc computes it: int32 + int32
// is an int32, or an int64 when it overflows; integers with an int64 are
// an int64; with a double, a double. ok is false for what the server
// refuses or this does not reproduce (a Decimal128, an int64 overflow,
// a value that is not a number).
func increment(old, by bson.RawValue) (bson.RawValue, bool) {
	switch {
	case old.Type == bson.TypeDouble || by.Type == bson.TypeDouble:
		a, ok1 := asFloat(old)
		b, ok2 := asFloat(by)
		if !ok1 || !ok2 {
			return bson.RawValue{}, false
		}
		return bson.RawValue{Type: bson.TypeDouble, Value: binary.LittleEndian.AppendUint64(nil, math.Float64bits(a+b))}, true
	case old.Type == bson.TypeInt32 && by.Type == bson.TypeInt32:
		s := int64(old.Int32()) + int64(by.Int32())
		if s >= math.MinInt32 && s <= math.MaxInt32 {
			return bson.RawValue{Type: bson.TypeInt32, Value: binary.LittleEndian.AppendUint32(nil, uint32(int32(s)))}, true
		}
		return bson.RawValue{Type: bson.TypeInt64, Value: binary.LittleEndian.AppendUint64(nil, uint64(s))}, true
	}
	a, ok1 := asInt(old)
	b, ok2 := asInt(by)
	if !ok1 || !ok2 {
		return bson.RawValue{}, false
	}
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return bson.RawValue{}, false // the server refuses an overflowing $inc
	}
	return bson.RawValue{Type: bson.TypeInt64, Value: binary.LittleEndian.AppendUint64(nil, uint64(s))}, true
}

func asFloat(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeDouble:
		return v.DoubleOK()
	case bson.TypeInt32:
		x, ok := v.Int32OK()
		return float64(x), ok
	case bson.TypeInt64:
		x, ok := v.Int64OK()
		return float64(x), ok
	}
	return 0, false
}

func asInt(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		x, ok := v.Int32OK()
		return int64(x), ok
	case bson.TypeInt64:
		return v.Int64OK()
	}
	return 0, false
}

// appendElem appends element k: v to a document being built.
func appendElem(out []byte, k string, v bson.RawValue) []byte {
	out = append(out, byte(v.Type))
	out = append(out, k...)
	out = append(out, 0)
	return append(out, v.Value...)
}
