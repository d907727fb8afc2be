package match

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// fieldOp is one operator applied to what a path reaches.
type fieldOp interface {
	eval(e env, at found) Tri
}

// eqOp is $eq (and a literal): some value at the path, or an element of an
// array there, equals v; $eq null also matches a missing field.
type eqOp struct{ v bson.RawValue }

func (o eqOp) eval(e env, at found) Tri {
	if at.nested {
		return Maybe
	}
	if o.v.Type == bson.TypeNull {
		return eqNull(at)
	}
	if o.v.Type == bson.TypeUndefined || o.v.Type == bson.TypeMinKey || o.v.Type == bson.TypeMaxKey {
		return Maybe
	}
	res := No
	for _, c := range at.candidates() {
		if res = or(res, e.equal(c, o.v)); res == Yes {
			return Yes
		}
	}
	return res
}

// eqNull is {field: null}: the field is missing or null, or an array there
// holds a null. Paths through arrays, where the server's treatment of
// elements without the field is not reproduced here, are Maybe.
func eqNull(at found) Tri {
	if at.viaArray {
		return Maybe
	}
	if len(at.vals) == 0 {
		return Yes
	}
	res := No
	for _, c := range at.candidates() {
		switch c.Type {
		case bson.TypeNull:
			return Yes
		case bson.TypeUndefined:
			res = Maybe
		}
	}
	return res
}

// rangeOp is $gt, $gte, $lt or $lte: some value at the path (or array
// element) of the operand's type bracket compares so.
type rangeOp struct {
	op string
	v  bson.RawValue
}

func (o rangeOp) eval(e env, at found) Tri {
	switch b := bracket(o.v.Type); {
	case at.nested, b == 1, b == 2, b == 5, b == 6, b >= 12:
		// null, MinKey/MaxKey, documents, arrays, regular expressions and
		// the rest as operands: their matching is not reproduced here.
		return Maybe
	}
	res := No
	for _, c := range at.candidates() {
		if bracket(c.Type) != bracket(o.v.Type) {
			continue
		}
		cmp, t := e.compare(c, o.v)
		if t != Yes {
			res = or(res, t)
			continue
		}
		var ok bool
		switch o.op {
		case "$gt":
			ok = cmp > 0
		case "$gte":
			ok = cmp >= 0
		case "$lt":
			ok = cmp < 0
		case "$lte":
			ok = cmp <= 0
		}
		if ok {
			return Yes
		}
	}
	return res
}

// inOp is $in: $eq of any of the values.
type inOp []bson.RawValue

func (o inOp) eval(e env, at found) Tri {
	res := No
	for _, v := range o {
		if res = or(res, eqOp{v}.eval(e, at)); res == Yes {
			return Yes
		}
	}
	return res
}

// allOp is $all: $eq of every value; $all of nothing matches nothing.
type allOp []bson.RawValue

func (o allOp) eval(e env, at found) Tri {
	if len(o) == 0 {
		return No
	}
	res := Yes
	for _, v := range o {
		if res = and(res, eqOp{v}.eval(e, at)); res == No {
			return No
		}
	}
	return res
}

// existsOp is $exists: the path reaches a value (or, with false, none).
type existsOp struct{ want bool }

func (o existsOp) eval(_ env, at found) Tri {
	exists := Yes
	if len(at.vals) == 0 {
		exists = No
		if at.viaArray || at.nested {
			exists = Maybe
		}
	}
	if o.want {
		return exists
	}
	return exists.not()
}

// sizeOp is $size: a value at the path is an array of that length.
type sizeOp int64

func (o sizeOp) eval(_ env, at found) Tri {
	res := No
	if at.nested {
		res = Maybe
	}
	for _, v := range at.vals {
		if v.Type != bson.TypeArray {
			continue
		}
		vals, err := bson.RawArray(v.Value).Values()
		if err != nil {
			res = Maybe
			continue
		}
		if int64(len(vals)) == int64(o) {
			return Yes
		}
	}
	return res
}

// typeOp is $type: a value at the path (or an array element) has one of
// the types.
type typeOp struct {
	types  map[bson.Type]bool
	array  bool // "array" (4) is among them
	number bool // "number" is among them
}

func compileType(v bson.RawValue) (fieldOp, error) {
	o := typeOp{types: map[bson.Type]bool{}}
	add := func(x bson.RawValue) error {
		if s, ok := x.StringValueOK(); ok {
			if s == "number" {
				o.number = true
				return nil
			}
			t, ok := typeAliases[s]
			if !ok {
				return fmt.Errorf("%w: $type %q", ErrUnanalysable, s)
			}
			o.types[t] = true
			o.array = o.array || t == bson.TypeArray
			return nil
		}
		n, ok := numberOf(x)
		if !ok || !n.isInt || n.i < 1 || n.i > 19 {
			return fmt.Errorf("%w: $type %v", ErrUnanalysable, x)
		}
		t := bson.Type(n.i)
		o.types[t] = true
		o.array = o.array || t == bson.TypeArray
		return nil
	}
	if arr, ok := v.ArrayOK(); ok {
		vals, err := arr.Values()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnanalysable, err)
		}
		for _, x := range vals {
			if err := add(x); err != nil {
				return nil, err
			}
		}
		return o, nil
	}
	return o, add(v)
}

var typeAliases = map[string]bson.Type{
	"double": bson.TypeDouble, "string": bson.TypeString, "object": bson.TypeEmbeddedDocument,
	"array": bson.TypeArray, "binData": bson.TypeBinary, "undefined": bson.TypeUndefined,
	"objectId": bson.TypeObjectID, "bool": bson.TypeBoolean, "date": bson.TypeDateTime, "null": bson.TypeNull,
	"regex": bson.TypeRegex, "dbPointer": bson.TypeDBPointer, "javascript": bson.TypeJavaScript,
	"symbol": bson.TypeSymbol, "javascriptWithScope": bson.TypeCodeWithScope, "int": bson.TypeInt32,
	"timestamp": bson.TypeTimestamp, "long": bson.TypeInt64, "decimal": bson.TypeDecimal128,
}

func (o typeOp) eval(_ env, at found) Tri {
	if at.nested {
		return Maybe
	}
	res := No
	for _, v := range at.vals {
		if v.Type == bson.TypeArray && o.array {
			return Yes
		}
	}
	for _, c := range at.candidates() {
		if c.Type == bson.TypeArray {
			if o.array {
				res = Maybe // an array inside the array: not reproduced here
			}
			continue
		}
		if o.types[c.Type] || (o.number && bracket(c.Type) == 3) {
			return Yes
		}
	}
	return res
}

// elemMatchOp is $elemMatch: an array at the path has an element that
// matches every operator (ops, compared with the element as the value) or
// the filter (doc, the element as a document).
type elemMatchOp struct {
	ops []fieldOp
	doc node
}

func (o elemMatchOp) eval(e env, at found) Tri {
	res := No
	if at.nested {
		res = Maybe
	}
	for _, v := range at.vals {
		if v.Type != bson.TypeArray {
			continue
		}
		els, err := bson.RawArray(v.Value).Values()
		if err != nil {
			res = Maybe
			continue
		}
		for _, el := range els {
			if res = or(res, o.element(e, el)); res == Yes {
				return Yes
			}
		}
	}
	return res
}

func (o elemMatchOp) element(e env, el bson.RawValue) Tri {
	if o.doc != nil {
		d, ok := el.DocumentOK()
		if !ok {
			return No
		}
		return o.doc.eval(e, d)
	}
	if el.Type == bson.TypeArray {
		return Maybe // the operators on a nested array: not reproduced here
	}
	res := Yes
	at := found{vals: []bson.RawValue{el}}
	for _, op := range o.ops {
		if res = and(res, op.eval(e, at)); res == No {
			return No
		}
	}
	return res
}

// notOp is $not (and $ne, $nin): none of the operators holds together.
type notOp struct{ ops []fieldOp }

func (o notOp) eval(e env, at found) Tri {
	res := Yes
	for _, op := range o.ops {
		if res = and(res, op.eval(e, at)); res == No {
			break
		}
	}
	return res.not()
}
