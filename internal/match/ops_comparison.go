package match

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// compileEq compiles $eq: its operand, compared as it is.
func compileEq(c operand) (eqOp, error) { return eqOp{c.v}, nil }

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

// compileNe compiles $ne, which is $not of $eq.
func compileNe(c operand) (notOp, error) { return notOp{[]fieldOp{eqOp{c.v}}}, nil }

// compileRange compiles $gt, $gte, $lt and $lte.
func compileRange(c operand) (rangeOp, error) { return rangeOp{c.name, c.v}, nil }

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

// compileIn compiles $in: an array of values, none a regular expression.
func compileIn(c operand) (inOp, error) {
	arr, ok := c.v.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: %s of a non-array", ErrUnanalysable, c.name)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnanalysable, err)
	}
	for _, x := range vals {
		if x.Type == bson.TypeRegex {
			return nil, fmt.Errorf("%w: a regular expression in %s", ErrUnanalysable, c.name)
		}
	}
	return inOp(vals), nil
}

// compileNin compiles $nin, which is $not of $in.
func compileNin(c operand) (notOp, error) {
	in, err := compileIn(c)
	if err != nil {
		return notOp{}, err
	}
	return notOp{[]fieldOp{in}}, nil
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
