package query

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrInvalidField is wrapped by the error of a Filter built with a field
// name that could be read as an operator or an invalid path.
var ErrInvalidField = errors.New("query: invalid field name")

// ErrInvalidValue is wrapped by the error of a Filter built with a value
// that the server would not match literally under the helper's operator (a
// regular expression among the values of In: MongoDB's $in runs it as a
// pattern; match a stored regular expression with Eq), and by the error of
// a call given a Sort that is not a sort document.
var ErrInvalidValue = errors.New("query: value the server would not read as given")

// ErrNoFilters is the error of a filter that says nothing where one is
// needed: And, Or, Not or ElemMatch called with no filters, or with a zero
// Filter among them (their MongoDB forms need at least one condition), and
// an odm write that takes a filter given nil, an empty map, slice or
// bson.Raw, a zero Filter, a struct that encodes to an empty document, or
// a filter of only $comment (package odm lists them).
// Treating none as "match every document" turns an empty list built from
// user input into a query of the whole collection, or a DeleteMany of it:
// a write to every document says so with bson.D{}.
var ErrNoFilters = errors.New("query: a filter that says nothing")

// Filter is a query filter built by the typed helpers (Eq, In, Gt, And, …).
// It is safe with untrusted values: every value is placed under an operator
// that takes it literally ($eq, $in, $gt, …), so a value such as
// map[string]any{"$ne": ""} is matched as a document, never run as an
// operator. Field names must come from your code: one that starts with '$',
// contains a NUL or has an empty path segment makes the filter invalid, and
// running it fails with ErrInvalidField.
//
// A Filter marshals to BSON, so it can also be passed to the driver directly.
type Filter struct {
	d   bson.D
	err error
}

// MarshalBSON encodes the filter, or returns its construction error.
func (f Filter) MarshalBSON() ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	d := f.d
	if d == nil {
		d = bson.D{}
	}
	return bson.Marshal(d)
}

// Err returns the filter's construction error, if any.
func (f Filter) Err() error { return f.err }

func checkField(field string) error {
	switch {
	case field == "":
		return fmt.Errorf("%w: empty", ErrInvalidField)
	case strings.HasPrefix(field, "$"):
		return fmt.Errorf("%w: %q starts with '$'", ErrInvalidField, field)
	case strings.ContainsRune(field, 0):
		return fmt.Errorf("%w: %q contains NUL", ErrInvalidField, field)
	}
	for _, seg := range strings.Split(field, ".") {
		if seg == "" {
			return fmt.Errorf("%w: %q has an empty path segment", ErrInvalidField, field)
		}
		if strings.HasPrefix(seg, "$") {
			return fmt.Errorf("%w: %q has a segment starting with '$'", ErrInvalidField, field)
		}
	}
	return nil
}

func op(field, operator string, value any) Filter {
	if err := checkField(field); err != nil {
		return Filter{err: err}
	}
	return Filter{d: bson.D{{Key: field, Value: bson.D{{Key: operator, Value: value}}}}}
}

// Eq matches documents whose field equals value, literally ({field: {$eq: value}}).
func Eq(field string, value any) Filter { return op(field, "$eq", value) }

// Ne matches documents whose field does not equal value.
func Ne(field string, value any) Filter { return op(field, "$ne", value) }

// Gt matches documents whose field is greater than value.
func Gt(field string, value any) Filter { return op(field, "$gt", value) }

// Gte matches documents whose field is greater than or equal to value.
func Gte(field string, value any) Filter { return op(field, "$gte", value) }

// Lt matches documents whose field is less than value.
func Lt(field string, value any) Filter { return op(field, "$lt", value) }

// Lte matches documents whose field is less than or equal to value.
func Lte(field string, value any) Filter { return op(field, "$lte", value) }

// In matches documents whose field equals one of values, each literally. A
// regular expression among the values (bson.Regex, or any value that
// encodes as one) makes the filter invalid with ErrInvalidValue, because
// $in would run it as a pattern; match a stored regular expression with Eq.
// In with no values matches no document.
func In[V any](field string, values ...V) Filter {
	if err := refuseRegex("In", field, values); err != nil {
		return Filter{err: err}
	}
	return op(field, "$in", array(values))
}

// isRegex reports whether v encodes as a BSON regular expression with the
// default registry.
func isRegex(v any) bool {
	switch x := v.(type) {
	case nil, string, int, int32, int64, float64, bool, bson.ObjectID:
		return false // the common values, without a type assertion below
	case bson.Regex:
		return true
	case *bson.Regex:
		return x != nil
	case bson.RawValue:
		return x.Type == bson.TypeRegex
	case *bson.RawValue:
		return x != nil && x.Type == bson.TypeRegex
	case bson.ValueMarshaler:
		t, _, err := x.MarshalBSONValue()
		return err == nil && bson.Type(t) == bson.TypeRegex
	}
	return false
}

// And matches documents that match every filter. With no filters, or a
// zero Filter among them, it is invalid (ErrNoFilters), never "match
// everything".
func And(filters ...Filter) Filter { return combine("$and", filters) }

// Or matches documents that match at least one filter. With no filters,
// or a zero Filter among them, it is invalid (ErrNoFilters), never "match
// everything".
func Or(filters ...Filter) Filter { return combine("$or", filters) }

func combine(operator string, filters []Filter) Filter {
	a := make(bson.A, 0, len(filters))
	for i, f := range filters {
		if f.err != nil {
			return Filter{err: f.err}
		}
		if f.d == nil { // a zero Filter: no condition at all
			return Filter{err: fmt.Errorf("%w: filter %d of %s is a zero Filter", ErrNoFilters, i, operator)}
		}
		a = append(a, f.d)
	}
	if len(a) == 0 {
		return Filter{err: fmt.Errorf("%w: %s of no filters", ErrNoFilters, operator)}
	}
	return Filter{d: bson.D{{Key: operator, Value: a}}}
}

// refuseRegex returns the filter error for a regular expression among
// the values of an operator that would run it as a pattern ($in, $nin,
// $all), or nil.
func refuseRegex[V any](fn, field string, values []V) error {
	for i, v := range values {
		if isRegex(v) {
			return fmt.Errorf("%w: value %d of %s(%q) is a regular expression, which the server runs as a pattern", ErrInvalidValue, i, fn, field)
		}
	}
	return nil
}

func array[V any](values []V) bson.A {
	a := make(bson.A, len(values))
	for i, v := range values {
		a[i] = v
	}
	return a
}

// Nin matches documents whose field equals none of values, each taken
// literally (a regular expression among them is ErrInvalidValue, as for
// In). Like MongoDB's $nin, it also matches documents without the field.
func Nin[V any](field string, values ...V) Filter {
	if err := refuseRegex("Nin", field, values); err != nil {
		return Filter{err: err}
	}
	return op(field, "$nin", array(values))
}

// ContainsAll matches documents whose array field holds every one of
// values ($all), each taken literally (a regular expression among them is
// ErrInvalidValue).
func ContainsAll[V any](field string, values ...V) Filter {
	if err := refuseRegex("ContainsAll", field, values); err != nil {
		return Filter{err: err}
	}
	return op(field, "$all", array(values))
}

// Exists matches documents that have the field (exists true) or lack it.
func Exists(field string, exists bool) Filter { return op(field, "$exists", exists) }

// Size matches documents whose array field has exactly n elements.
func Size(field string, n int) Filter { return op(field, "$size", n) }

// Type matches documents whose field holds a value of BSON type t (for an
// array field, or one of its elements).
func Type(field string, t bson.Type) Filter { return op(field, "$type", int32(t)) }

// Regex matches documents whose string field matches the regular
// expression pattern, with MongoDB's options ("i", "m", "x", "s"). It is
// the one helper that runs its argument: the pattern is explicit, never a
// value taken from another helper. Quote user input with regexp.QuoteMeta
// before building a pattern from it.
func Regex(field, pattern, options string) Filter {
	if err := checkField(field); err != nil {
		return Filter{err: err}
	}
	return Filter{d: bson.D{{Key: field, Value: bson.D{{Key: "$regex", Value: pattern}, {Key: "$options", Value: options}}}}}
}

// ElemMatch matches documents whose array field has an element matching
// every filter, whose field names are relative to the element (ElemMatch
// of no filters is ErrNoFilters). For arrays of scalars, the element itself
// is matched with a field name of its own: use op-style helpers on the
// array field instead.
func ElemMatch(field string, filters ...Filter) Filter {
	if err := checkField(field); err != nil {
		return Filter{err: err}
	}
	inner := And(filters...)
	if inner.err != nil {
		return Filter{err: inner.err}
	}
	// One condition document when the filters' keys differ (the form every
	// server takes), $and of them otherwise.
	cond := bson.D{}
	seen := map[string]bool{}
merge:
	for _, f := range filters {
		for _, e := range f.d {
			if seen[e.Key] {
				cond = inner.d
				break merge
			}
			seen[e.Key] = true
			cond = append(cond, e)
		}
	}
	return Filter{d: bson.D{{Key: field, Value: bson.D{{Key: "$elemMatch", Value: cond}}}}}
}

// Not matches documents that do not match f (as {$nor: [f]}, which
// MongoDB applies to any filter, unlike the field-level $not). Not(Or(a,
// b)) matches documents that match neither.
func Not(f Filter) Filter { return combine("$nor", []Filter{f}) }
