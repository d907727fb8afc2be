package match

import (
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// queryOperators is the one list of the query operators Compile supports.
// Each entry names the type that evaluates the operator (its eval method)
// and the step that compiles the operand into that type; both sit side by
// side in the ops_*.go file of the operator's family. A name not here is
// refused with ErrUnanalysable, so adding an operator is one entry (with
// its compile step and evaluation). docs/caching.md lists the same names
// (TestDocsListTheOperators).
//
// The table is filled in init because compile steps that take filters or
// conditions ($not, $elemMatch) reach the table again through Compile's
// recursion. It is read when a filter compiles, never when one is
// evaluated: a compiled filter holds the evaluating types themselves.
var queryOperators map[string]operator

func init() {
	queryOperators = map[string]operator{
		// Logical (ops_logical.go): {name: [filter, …]} at the top level
		// or in $elemMatch, and $not on a field.
		"$and": logicalOperator[andNode](),
		"$or":  logicalOperator[orNode](),
		"$nor": logicalOperator[norNode](),
		"$not": fieldOperator[notOp](compileNot),
		// Comparison (ops_comparison.go).
		"$eq":  fieldOperator[eqOp](compileEq),
		"$ne":  fieldOperator[notOp](compileNe),
		"$gt":  fieldOperator[rangeOp](compileRange),
		"$gte": fieldOperator[rangeOp](compileRange),
		"$lt":  fieldOperator[rangeOp](compileRange),
		"$lte": fieldOperator[rangeOp](compileRange),
		"$in":  fieldOperator[inOp](compileIn),
		"$nin": fieldOperator[notOp](compileNin),
		// Element (ops_element.go).
		"$exists": fieldOperator[existsOp](compileExists),
		"$type":   fieldOperator[typeOp](compileType),
		// Array (ops_array.go).
		"$size":      fieldOperator[sizeOp](compileSize),
		"$all":       fieldOperator[allOp](compileAll),
		"$elemMatch": fieldOperator[elemMatchOp](compileElemMatch),
	}
}

// Operators returns the names of the query operators Compile supports,
// sorted, in a new slice. Compile also accepts $comment in a filter
// document, which annotates the query and selects nothing: it is not an
// operator, so it is not listed.
func Operators() []string { return slices.Sorted(maps.Keys(queryOperators)) }

// operator is one entry of the table. Exactly one of field and logical is
// set.
type operator struct {
	// field compiles the operand of an operator on a field ({path: {name:
	// operand}}, and inside $not and $elemMatch).
	field func(operand) (fieldOp, error)
	// logical combines the compiled filters of an operator that takes an
	// array of them ({name: [filter, …]}).
	logical func(filters []node) node
}

// operand is what a field operator's compile step reads.
type operand struct {
	name  string        // the operator, for error messages
	v     bson.RawValue // its operand
	depth int           // how deeply the operator is nested, for maxDepth
}

// fieldOp is one operator applied to what a path reaches.
type fieldOp interface {
	eval(e env, at found) Tri
}

// fieldOperator is the entry of a field operator: compile turns its
// operand into T, whose eval method is the operator's evaluation.
func fieldOperator[T fieldOp](compile func(operand) (T, error)) operator {
	return operator{field: func(o operand) (fieldOp, error) {
		op, err := compile(o)
		if err != nil {
			return nil, err
		}
		return op, nil
	}}
}

// logicalOperator is the entry of an operator on an array of filters: T,
// the list of their compiled forms, evaluates it.
func logicalOperator[T interface {
	~[]node
	node
}]() operator {
	return operator{logical: func(filters []node) node { return T(filters) }}
}

// compileOp compiles the field operator name, or refuses a name that is
// not one.
func compileOp(name string, v bson.RawValue, depth int) (fieldOp, error) {
	if op := queryOperators[name]; op.field != nil {
		return op.field(operand{name: name, v: v, depth: depth})
	}
	return nil, fmt.Errorf("%w: %s", ErrUnanalysable, name)
}

// isLogical reports whether name is an operator on an array of filters.
func isLogical(name string) bool { return queryOperators[name].logical != nil }
