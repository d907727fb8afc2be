package query

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrOperatorRefused is matched (with errors.Is) by the error of a filter
// from Sanitize whose input holds an operator that Sanitize does not pass
// on; errors.As with *OperatorError names the operator.
var ErrOperatorRefused = errors.New("query: operator refused in a filter from untrusted input")

// OperatorError is the error of Sanitize for an input that holds an
// operator where a field name belongs: at the top of the filter or of a
// filter inside $and, $or or $nor. Those three are the only operators
// Sanitize passes on; every other ($where, $expr, $function, $jsonSchema,
// $text, $comment, …) is refused, because it would run code, read other
// documents or change what the filter means.
type OperatorError struct {
	Operator string // the operator as it appeared in the input, such as "$where"
	Path     string // where: "" at the top, "$or.1" inside the second filter of an $or
}

func (e *OperatorError) Error() string {
	where := "at the top of the filter"
	if e.Path != "" {
		where = "in " + e.Path
	}
	return fmt.Sprintf("query: operator %q %s is refused in a filter from untrusted input (only $and, $or and $nor are passed on; build other conditions with the typed helpers)", e.Operator, where)
}

func (e *OperatorError) Unwrap() error { return ErrOperatorRefused }

// Sanitize turns a filter from untrusted input (JSON decoded into a bson.M
// or map[string]any, a bson.D, raw BSON) into one that matches literally,
// as Mongoose's sanitizeFilter does and more strictly:
//
//   - every value under a field is compared with $eq, so
//     {"name": {"$ne": ""}} matches only a document whose name is the
//     document {"$ne": ""}, never every document with a name;
//   - $and, $or and $nor are passed on, each with a non-empty array of
//     filters that are sanitized the same way;
//   - any other operator where a field name belongs is refused with an
//     *OperatorError (matching ErrOperatorRefused), and a field name that
//     is empty, holds a NUL or has a path segment that starts with '$' or
//     is empty with ErrInvalidField.
//
// A Filter (built by the program with the typed helpers) is returned as it
// is. A refused input yields a Filter whose Err is that error: running it, or
// marshaling it, fails with the error, and nothing is sent. An empty input
// ({}) yields the zero Filter: a read of it matches every document, and
// odm's writes refuse it with odm.ErrNilFilter (a write to every document
// must say so with bson.D{}). An input that is not a document (a string, a
// number, an array) is refused with ErrInvalidValue.
//
// Sanitize keeps the input's field order for a bson.D or raw BSON; a Go map
// has none, so the fields of a map come in the order the driver encodes
// them.
func Sanitize(filter any) Filter {
	if filter == nil {
		return Filter{}
	}
	var raw bson.Raw
	switch f := filter.(type) {
	case bson.Raw:
		raw = f
	case Filter:
		return f // built by the program with the typed helpers, not from input: as it is
	default:
		b, err := bson.Marshal(filter)
		if err != nil {
			return Filter{err: fmt.Errorf("%w: the filter cannot be encoded as a BSON document (%v)", ErrInvalidValue, err)}
		}
		raw = b
	}
	if len(raw) == 0 {
		return Filter{}
	}
	if err := raw.Validate(); err != nil {
		return Filter{err: fmt.Errorf("%w: the filter is not valid BSON (%v)", ErrInvalidValue, err)}
	}
	d, err := sanitizeDoc(raw, "")
	if err != nil {
		return Filter{err: err}
	}
	if len(d) == 0 {
		return Filter{}
	}
	return Filter{d: d}
}

// sanitizeDoc sanitizes one filter document found at path.
func sanitizeDoc(raw bson.Raw, path string) (bson.D, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: the filter is not valid BSON (%v)", ErrInvalidValue, err)
	}
	d := make(bson.D, 0, len(elems))
	for _, el := range elems {
		key, val := el.Key(), el.Value()
		if len(key) > 0 && key[0] == '$' {
			switch key {
			case "$and", "$or", "$nor":
			default:
				return nil, &OperatorError{Operator: key, Path: path}
			}
			list, err := sanitizeList(val, join(path, key))
			if err != nil {
				return nil, err
			}
			d = append(d, bson.E{Key: key, Value: list})
			continue
		}
		if err := checkField(key); err != nil {
			return nil, err
		}
		d = append(d, bson.E{Key: key, Value: bson.D{{Key: "$eq", Value: val}}})
	}
	return d, nil
}

// sanitizeList sanitizes the array of filters of $and, $or or $nor.
func sanitizeList(val bson.RawValue, path string) (bson.A, error) {
	arr, ok := val.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: %s takes an array of filters, not %s", ErrInvalidValue, path, val.Type)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid BSON (%v)", ErrInvalidValue, path, err)
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("%w: %s with an empty array", ErrNoFilters, path)
	}
	out := make(bson.A, 0, len(vals))
	for i, v := range vals {
		at := fmt.Sprintf("%s.%d", path, i)
		doc, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: %s is %s, not a filter", ErrInvalidValue, at, v.Type)
		}
		d, err := sanitizeDoc(doc, at)
		if err != nil {
			return nil, err
		}
		if len(d) == 0 {
			return nil, fmt.Errorf("%w: %s is an empty filter", ErrNoFilters, at)
		}
		out = append(out, d)
	}
	return out, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
