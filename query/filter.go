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
// that the server would not match literally under the helper's operator: a
// regular expression among the values of In (MongoDB's $in runs it as a
// pattern). Match a stored regular expression with Eq.
var ErrInvalidValue = errors.New("query: value the server would not match literally")

// ErrNoFilters is the error of And or Or called with no filters. Their
// MongoDB forms need at least one, and treating none as "match every
// document" turns an empty list built from user input into a query of the
// whole collection, or a DeleteMany of it.
var ErrNoFilters = errors.New("query: And or Or of no filters")

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

// D returns the filter as a bson.D (nil for an invalid filter).
func (f Filter) D() bson.D {
	if f.err != nil {
		return nil
	}
	return f.d
}

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
	a := make(bson.A, len(values))
	for i, v := range values {
		if isRegex(v) {
			return Filter{err: fmt.Errorf("%w: value %d of In(%q) is a regular expression, which $in runs as a pattern", ErrInvalidValue, i, field)}
		}
		a[i] = v
	}
	return op(field, "$in", a)
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

// Between matches documents with lo <= field < hi.
func Between(field string, lo, hi any) Filter {
	if err := checkField(field); err != nil {
		return Filter{err: err}
	}
	return Filter{d: bson.D{{Key: field, Value: bson.D{{Key: "$gte", Value: lo}, {Key: "$lt", Value: hi}}}}}
}

// And matches documents that match every filter. With no filters it is
// invalid (ErrNoFilters), never "match everything".
func And(filters ...Filter) Filter { return combine("$and", filters) }

// Or matches documents that match at least one filter. With no filters it
// is invalid (ErrNoFilters), never "match everything". Note that a zero
// Filter among them matches every document, as an empty filter does.
func Or(filters ...Filter) Filter { return combine("$or", filters) }

func combine(operator string, filters []Filter) Filter {
	a := make(bson.A, 0, len(filters))
	for _, f := range filters {
		if f.err != nil {
			return Filter{err: f.err}
		}
		d := f.d
		if d == nil {
			d = bson.D{}
		}
		a = append(a, d)
	}
	if len(a) == 0 {
		return Filter{err: ErrNoFilters}
	}
	return Filter{d: bson.D{{Key: operator, Value: a}}}
}
