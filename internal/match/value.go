// Package match decides whether a document matches a MongoDB query filter,
// without a server, for the cache's invalidation rules: does this inserted
// document match a cached query, does this stored result document match a
// write's filter, can an update make a document match.
//
// Its answers are three-valued: Yes and No where MongoDB's documented
// semantics are reproduced exactly (an explicit allow-list of operators on
// top-level and dotted paths, with the array, missing-versus-null,
// cross-type numeric and type-bracketing rules), and Maybe wherever they
// are not: an operator outside the allow-list makes the whole filter
// unanalysable (Compile fails), and a value this package does not compare
// exactly (a NaN, a Decimal128 that is not finite, a regular expression, a
// string under a collation other than the simple one, nested arrays on a
// path) makes its comparison Maybe. Callers treat Maybe as Yes: sound
// before precise.
package match

import (
	"bytes"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Tri is a three-valued answer.
type Tri int8

// The answers, ordered No < Maybe < Yes.
const (
	No Tri = iota
	Maybe
	Yes
)

func (t Tri) not() Tri { return Yes - t }

func and(a, b Tri) Tri { return min(a, b) }

func or(a, b Tri) Tri { return max(a, b) }

func triOf(b bool) Tri {
	if b {
		return Yes
	}
	return No
}

// bracket is MongoDB's canonical type order: values of different brackets
// never compare equal, and a range operator only matches values of its
// operand's bracket.
func bracket(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return 1
	case bson.TypeNull, bson.TypeUndefined:
		return 2
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return 3
	case bson.TypeString, bson.TypeSymbol:
		return 4
	case bson.TypeEmbeddedDocument:
		return 5
	case bson.TypeArray:
		return 6
	case bson.TypeBinary:
		return 7
	case bson.TypeObjectID:
		return 8
	case bson.TypeBoolean:
		return 9
	case bson.TypeDateTime:
		return 10
	case bson.TypeTimestamp:
		return 11
	case bson.TypeRegex:
		return 12
	case bson.TypeMaxKey:
		return 100
	}
	return 50 // DBPointer, JavaScript, code with scope: not compared here
}

// number is a numeric BSON value, exactly.
type number struct {
	isInt bool
	i     int64
	f     float64  // when !isInt and rat is nil
	rat   *big.Rat // a finite Decimal128
}

func numberOf(v bson.RawValue) (number, bool) {
	switch v.Type {
	case bson.TypeInt32:
		x, ok := v.Int32OK()
		return number{isInt: true, i: int64(x)}, ok
	case bson.TypeInt64:
		x, ok := v.Int64OK()
		return number{isInt: true, i: x}, ok
	case bson.TypeDouble:
		x, ok := v.DoubleOK()
		if !ok || math.IsNaN(x) {
			return number{}, false // NaN's ordering is not reproduced: Maybe
		}
		return number{f: x}, true
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		if !ok {
			return number{}, false
		}
		r, ok := new(big.Rat).SetString(d.String())
		if !ok { // NaN, Infinity
			return number{}, false
		}
		return number{rat: r}, true
	}
	return number{}, false
}

// cmpNumbers compares two numbers exactly (int64 against float64 without
// the rounding of a conversion).
func cmpNumbers(a, b number) int {
	switch {
	case a.isInt && b.isInt:
		return cmpInt(a.i, b.i)
	case a.rat != nil || b.rat != nil:
		if c, inf := cmpInfinity(a, b); inf {
			return c
		}
		return a.toRat().Cmp(b.toRat())
	case a.isInt:
		return -cmpFloatInt(b.f, a.i)
	case b.isInt:
		return cmpFloatInt(a.f, b.i)
	}
	switch {
	case a.f < b.f:
		return -1
	case a.f > b.f:
		return 1
	}
	return 0
}

func (n number) toRat() *big.Rat {
	switch {
	case n.rat != nil:
		return n.rat
	case n.isInt:
		return new(big.Rat).SetInt64(n.i)
	}
	return new(big.Rat).SetFloat64(n.f)
}

// cmpInfinity orders a float infinity against a finite decimal (or another
// infinity); inf is false when neither is infinite.
func cmpInfinity(a, b number) (c int, inf bool) {
	ai := !a.isInt && a.rat == nil && math.IsInf(a.f, 0)
	bi := !b.isInt && b.rat == nil && math.IsInf(b.f, 0)
	switch {
	case ai && bi:
		return cmpInt(int64(math.Copysign(1, a.f)), int64(math.Copysign(1, b.f))), true
	case ai:
		return int(math.Copysign(1, a.f)), true
	case bi:
		return -int(math.Copysign(1, b.f)), true
	}
	return 0, false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpFloatInt compares f and i exactly (f is not NaN).
func cmpFloatInt(f float64, i int64) int {
	switch {
	case f >= 9.223372036854775807e18:
		return 1
	case f < -9.223372036854775808e18:
		return -1
	}
	t := int64(f) // exact: |f| < 2^63
	if c := cmpInt(t, i); c != 0 {
		return c
	}
	frac := f - float64(t)
	switch {
	case frac > 0:
		return 1
	case frac < 0:
		return -1
	}
	return 0
}

// env is what a comparison may rely on.
type env struct {
	// simpleStrings: strings compare by the simple collation (bytes). When
	// false, any comparison of strings is Maybe.
	simpleStrings bool
}

// compare orders a and b within one bracket: it returns the order and Yes,
// or Maybe when this package does not reproduce the server's order for
// these values. Values of different brackets are not compared here.
func (e env) compare(a, b bson.RawValue) (int, Tri) {
	switch bracket(a.Type) {
	case 1, 2, 100: // MinKey, null/undefined, MaxKey: one value each
		if a.Type == bson.TypeUndefined || b.Type == bson.TypeUndefined {
			return 0, Maybe // MongoDB 6 stopped equating undefined and null
		}
		return 0, Yes
	case 3:
		x, ok1 := numberOf(a)
		y, ok2 := numberOf(b)
		if !ok1 || !ok2 {
			return 0, Maybe
		}
		return cmpNumbers(x, y), Yes
	case 4:
		if !e.simpleStrings || a.Type != b.Type {
			return 0, Maybe
		}
		x, ok1 := a.StringValueOK()
		y, ok2 := b.StringValueOK()
		if !ok1 || !ok2 {
			return 0, Maybe
		}
		return bytes.Compare([]byte(x), []byte(y)), Yes
	case 8:
		x, ok1 := a.ObjectIDOK()
		y, ok2 := b.ObjectIDOK()
		if !ok1 || !ok2 {
			return 0, Maybe
		}
		return bytes.Compare(x[:], y[:]), Yes
	case 9:
		x, ok1 := a.BooleanOK()
		y, ok2 := b.BooleanOK()
		if !ok1 || !ok2 {
			return 0, Maybe
		}
		return cmpInt(boolInt(x), boolInt(y)), Yes
	case 10:
		x, ok1 := a.DateTimeOK()
		y, ok2 := b.DateTimeOK()
		if !ok1 || !ok2 {
			return 0, Maybe
		}
		return cmpInt(x, y), Yes
	case 11:
		t1, i1, ok1 := a.TimestampOK()
		t2, i2, ok2 := b.TimestampOK()
		if !ok1 || !ok2 {
			return 0, Maybe
		}
		if c := cmpInt(int64(t1), int64(t2)); c != 0 {
			return c, Yes
		}
		return cmpInt(int64(i1), int64(i2)), Yes
	}
	return 0, Maybe // documents, arrays, binary, regex, …: ordered only by equal below
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// equal reports whether a and b are equal as the server's $eq compares
// them: by value within a bracket (numbers across types), documents field
// by field in order, arrays element by element.
func (e env) equal(a, b bson.RawValue) Tri {
	if bracket(a.Type) != bracket(b.Type) {
		return No
	}
	switch a.Type {
	case bson.TypeEmbeddedDocument:
		return e.equalDocs(a.Value, b.Value, b.Type == bson.TypeEmbeddedDocument)
	case bson.TypeArray:
		return e.equalDocs(a.Value, b.Value, b.Type == bson.TypeArray)
	case bson.TypeBinary:
		if bytes.Equal(a.Value, b.Value) {
			return Yes
		}
		return No
	case bson.TypeRegex, bson.TypeDBPointer, bson.TypeJavaScript, bson.TypeCodeWithScope:
		return Maybe
	}
	c, t := e.compare(a, b)
	if t != Yes {
		return t
	}
	return triOf(c == 0)
}

// equalDocs compares two documents (or arrays) element by element: the
// same keys in the same order, equal values.
func (e env) equalDocs(a, b []byte, sameKind bool) Tri {
	if !sameKind {
		return No
	}
	ea, err1 := bson.Raw(a).Elements()
	eb, err2 := bson.Raw(b).Elements()
	if err1 != nil || err2 != nil {
		return Maybe
	}
	if len(ea) != len(eb) {
		return No
	}
	res := Yes
	for i := range ea {
		if ea[i].Key() != eb[i].Key() {
			return No
		}
		res = and(res, e.equal(ea[i].Value(), eb[i].Value()))
		if res == No {
			return No
		}
	}
	return res
}
