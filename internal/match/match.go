package match

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrUnanalysable is wrapped by Compile's error for a filter outside the
// allow-list: the caller keeps its collection-wide rule for it.
var ErrUnanalysable = errors.New("match: filter outside the analysable operators")

// Options says what comparisons may rely on.
type Options struct {
	// SimpleStrings: the query compares strings by the simple collation
	// (bytes), because neither the query nor its collection names another.
	// Otherwise every comparison involving a string is Maybe.
	SimpleStrings bool
}

// Filter is a compiled query filter.
type Filter struct {
	root    node
	clauses []node // the top-level conjunction, flattened through $and
	env     env
	paths   []string
	eqTop   map[string]bson.RawValue
}

// node is one condition of a filter.
type node interface {
	eval(e env, doc bson.Raw) Tri
	// paths appends the field paths the condition reads.
	paths(dst []string) []string
}

// Compile compiles filter, a query document, or fails with
// ErrUnanalysable when it uses anything outside the allow-list: the
// operators [Operators] returns (and $comment, which selects nothing).
func Compile(filter bson.Raw, o Options) (*Filter, error) {
	clauses, err := compileDoc(filter, 0)
	if err != nil {
		return nil, err
	}
	f := &Filter{root: andNode(clauses), clauses: flatten(clauses), env: env{simpleStrings: o.SimpleStrings}}
	f.paths = f.root.paths(nil)
	f.eqTop = map[string]bson.RawValue{}
	for _, c := range f.clauses {
		if fc, ok := c.(fieldNode); ok && !strings.Contains(fc.path, ".") {
			for _, o := range fc.ops {
				if eq, ok := o.(eqOp); ok && indexable(eq.v) {
					f.eqTop[fc.path] = eq.v
				}
			}
		}
	}
	return f, nil
}

// Match reports whether doc matches the filter.
func (f *Filter) Match(doc bson.Raw) Tri { return f.root.eval(f.env, doc) }

// Paths returns the field paths the filter reads.
func (f *Filter) Paths() []string { return f.paths }

// EqualityFields returns the top-level fields (no dots) the filter
// constrains to one scalar value by a conjunct of the top-level and: a
// matching document holds that value there, or an array containing it.
func (f *Filter) EqualityFields() map[string]bson.RawValue { return f.eqTop }

// indexable reports whether an equality operand can key an index: a scalar
// that is not null (null also matches a missing field) and whose equality
// this package decides exactly.
func indexable(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeString, bson.TypeInt32, bson.TypeInt64, bson.TypeObjectID, bson.TypeBoolean, bson.TypeDateTime:
		return true
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		return ok && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return false
}

const maxDepth = 100

func compileDoc(filter bson.Raw, depth int) ([]node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested too deeply", ErrUnanalysable)
	}
	elems, err := filter.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnanalysable, err)
	}
	var out []node
	for _, el := range elems {
		n, err := compileElement(el.Key(), el.Value(), depth)
		if err != nil {
			return nil, err
		}
		if n != nil {
			out = append(out, n)
		}
	}
	return out, nil
}

func compileElement(key string, v bson.RawValue, depth int) (node, error) {
	if op := queryOperators[key]; op.logical != nil {
		return compileLogical(key, op.logical, v, depth)
	}
	if key == "$comment" {
		return nil, nil // an annotation, not an operator: it selects nothing
	}
	if strings.HasPrefix(key, "$") || !validPath(key) {
		return nil, fmt.Errorf("%w: %q", ErrUnanalysable, key)
	}
	ops, err := compileCondition(v, depth)
	if err != nil {
		return nil, err
	}
	return fieldNode{path: key, split: split(key), ops: ops}, nil
}

// compileCondition compiles the value of a field: an operator document, or
// a literal compared with $eq.
func compileCondition(v bson.RawValue, depth int) ([]fieldOp, error) {
	if v.Type == bson.TypeRegex {
		return nil, fmt.Errorf("%w: a regular expression", ErrUnanalysable)
	}
	d, ok := v.DocumentOK()
	if !ok {
		return []fieldOp{eqOp{v}}, nil
	}
	elems, err := d.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnanalysable, err)
	}
	if len(elems) == 0 || !strings.HasPrefix(elems[0].Key(), "$") {
		return []fieldOp{eqOp{v}}, nil // a document, compared literally
	}
	ops := make([]fieldOp, 0, len(elems))
	for _, el := range elems {
		op, err := compileOp(el.Key(), el.Value(), depth)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func firstKey(d bson.Raw) string {
	el, err := d.IndexErr(0)
	if err != nil {
		return ""
	}
	return el.Key()
}

// flatten returns the top-level conjunction's clauses, through nested
// $and.
func flatten(ns []node) []node {
	var out []node
	for _, n := range ns {
		if a, ok := n.(andNode); ok {
			out = append(out, flatten(a)...)
			continue
		}
		out = append(out, n)
	}
	return out
}

// fieldNode is the conditions on one path, all of which must hold.
type fieldNode struct {
	path  string
	split []string
	ops   []fieldOp
}

func (f fieldNode) eval(e env, doc bson.Raw) Tri {
	at := lookup(doc, f.split)
	res := Yes
	for _, op := range f.ops {
		if res = and(res, op.eval(e, at)); res == No {
			return No
		}
	}
	return res
}

func (f fieldNode) paths(dst []string) []string { return append(dst, f.path) }
