package match

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// compileLogical compiles {name: [filter, …]}: a non-empty array of
// filters, each compiled and then combined by the operator's entry.
func compileLogical(name string, combine func([]node) node, v bson.RawValue, depth int) (node, error) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an array", ErrUnanalysable, name)
	}
	vals, err := arr.Values()
	if err != nil || len(vals) == 0 {
		return nil, fmt.Errorf("%w: %s of no filters", ErrUnanalysable, name)
	}
	var subs []node
	for _, sv := range vals {
		d, ok := sv.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: a clause of %s is not a document", ErrUnanalysable, name)
		}
		cs, err := compileDoc(d, depth+1)
		if err != nil {
			return nil, err
		}
		subs = append(subs, andNode(cs))
	}
	return combine(subs), nil
}

// andNode is $and (and a filter's conditions): all of them hold.
type andNode []node

func (a andNode) eval(e env, doc bson.Raw) Tri {
	res := Yes
	for _, n := range a {
		if res = and(res, n.eval(e, doc)); res == No {
			return No
		}
	}
	return res
}

func (a andNode) paths(dst []string) []string {
	for _, n := range a {
		dst = n.paths(dst)
	}
	return dst
}

// orNode is $or: one of the filters holds.
type orNode []node

func (o orNode) eval(e env, doc bson.Raw) Tri {
	res := No
	for _, n := range o {
		if res = or(res, n.eval(e, doc)); res == Yes {
			return Yes
		}
	}
	return res
}

func (o orNode) paths(dst []string) []string { return andNode(o).paths(dst) }

// norNode is $nor: none of the filters holds.
type norNode []node

func (n norNode) eval(e env, doc bson.Raw) Tri { return orNode(n).eval(e, doc).not() }

func (n norNode) paths(dst []string) []string { return andNode(n).paths(dst) }

// compileNot compiles $not on a field: an operator document, not a
// literal; a regular expression is refused.
func compileNot(c operand) (notOp, error) {
	d, ok := c.v.DocumentOK()
	if !ok {
		return notOp{}, fmt.Errorf("%w: $not of a regular expression", ErrUnanalysable)
	}
	ops, err := compileCondition(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}, c.depth+1)
	if err != nil {
		return notOp{}, err
	}
	if _, literal := ops[0].(eqOp); literal && !strings.HasPrefix(firstKey(d), "$") {
		return notOp{}, fmt.Errorf("%w: $not of a literal", ErrUnanalysable)
	}
	return notOp{ops}, nil
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
