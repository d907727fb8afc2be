package match

import (
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// compileSize compiles $size: a non-negative whole number.
func compileSize(c operand) (sizeOp, error) {
	n, ok := c.v.AsInt64OK()
	if !ok || n < 0 {
		if f, fok := c.v.DoubleOK(); !fok || f != math.Trunc(f) || f < 0 {
			return 0, fmt.Errorf("%w: $size of %v", ErrUnanalysable, c.v)
		}
		n = int64(c.v.Double())
	}
	return sizeOp(n), nil
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

// compileAll compiles $all: an array of values, none a regular
// expression or an operator document ($elemMatch).
func compileAll(c operand) (allOp, error) {
	arr, ok := c.v.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: $all of a non-array", ErrUnanalysable)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnanalysable, err)
	}
	for _, x := range vals {
		if d, ok := x.DocumentOK(); x.Type == bson.TypeRegex || (ok && strings.HasPrefix(firstKey(d), "$")) {
			return nil, fmt.Errorf("%w: $all of patterns or $elemMatch", ErrUnanalysable)
		}
	}
	return allOp(vals), nil
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

// compileElemMatch compiles $elemMatch: operators on each element
// ({$gt: 1}), or a filter on each element that is a document ({b: 1},
// {$or: […]}).
func compileElemMatch(c operand) (elemMatchOp, error) {
	d, ok := c.v.DocumentOK()
	if !ok {
		return elemMatchOp{}, fmt.Errorf("%w: $elemMatch of a non-document", ErrUnanalysable)
	}
	if k := firstKey(d); strings.HasPrefix(k, "$") && !isLogical(k) {
		ops, err := compileCondition(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}, c.depth+1)
		if err != nil {
			return elemMatchOp{}, err
		}
		return elemMatchOp{ops: ops}, nil
	}
	sub, err := compileDoc(d, c.depth+1)
	if err != nil {
		return elemMatchOp{}, err
	}
	return elemMatchOp{doc: andNode(sub)}, nil
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
