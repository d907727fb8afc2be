package match

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// compileExists compiles $exists, whose operand the server reads as a
// truth value.
func compileExists(c operand) (existsOp, error) { return existsOp{truthy(c.v)}, nil }

// truthy is the server's reading of $exists' operand.
func truthy(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeNull, bson.TypeUndefined:
		return false
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		n, ok := numberOf(v)
		return !ok || cmpNumbers(n, number{isInt: true}) != 0
	}
	return true
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

// compileType compiles $type: a type's number or alias, "number", or an
// array of those.
func compileType(c operand) (typeOp, error) {
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
	if arr, ok := c.v.ArrayOK(); ok {
		vals, err := arr.Values()
		if err != nil {
			return typeOp{}, fmt.Errorf("%w: %w", ErrUnanalysable, err)
		}
		for _, x := range vals {
			if err := add(x); err != nil {
				return typeOp{}, err
			}
		}
		return o, nil
	}
	return o, add(c.v)
}

var typeAliases = map[string]bson.Type{
	"double": bson.TypeDouble, "string": bson.TypeString, "object": bson.TypeEmbeddedDocument,
	"array": bson.TypeArray, "binData": bson.TypeBinary, "undefined": bson.TypeUndefined,
	"objectId": bson.TypeObjectID, "bool": bson.TypeBoolean, "date": bson.TypeDateTime, "null": bson.TypeNull,
	"regex": bson.TypeRegex, "dbPointer": bson.TypeDBPointer, "javascript": bson.TypeJavaScript,
	"symbol": bson.TypeSymbol, "javascriptWithScope": bson.TypeCodeWithScope, "int": bson.TypeInt32,
	"timestamp": bson.TypeTimestamp, "long": bson.TypeInt64, "decimal": bson.TypeDecimal128,
}

// typeOp is $type: a value at the path (or an array element) has one of
// the types.
type typeOp struct {
	types  map[bson.Type]bool
	array  bool // "array" (4) is among them
	number bool // "number" is among them
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
