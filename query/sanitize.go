package query

import (
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

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
//     *OperatorError (match it with errors.As), and a field name that
//     is empty, holds a NUL or has a path segment that starts with '$' or
//     is empty with ErrInvalidField.
//
// A Filter (built by the program with the typed helpers) is returned as it
// is. A refused input yields a Filter whose Err is that error: running it, or
// marshaling it, fails with the error, and nothing is sent. An empty input
// ({}) yields the zero Filter: a read of it matches every document, and
// odm's writes refuse it with ErrNoFilters (a write to every document
// must say so with bson.D{}). An input that is not a document (a string, a
// number, an array) is refused with ErrInvalidValue.
//
// An input nested more than 100 levels deep, counting the filter itself
// and each document or array in it (MongoDB refuses deeper documents, so
// none is a filter), is refused with ErrInvalidValue. The depth of a
// bson.D, bson.M, bson.A, map[string]any or []any is checked before it is
// encoded, and raw BSON is read once and no further than the limit, so the
// cost of Sanitize grows with the size of its input, never faster, and a
// refused input costs no more than its first 100 levels.
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
		if tooDeep(filter, 1) {
			return Filter{err: errTooDeep}
		}
		b, err := bson.Marshal(filter)
		if err != nil {
			return Filter{err: fmt.Errorf("%w: the filter cannot be encoded as a BSON document (%v)", ErrInvalidValue, err)}
		}
		raw = b
	}
	if len(raw) == 0 {
		return Filter{}
	}
	if err := checkRaw(raw, 1); err != nil {
		return Filter{err: err}
	}
	d, err := sanitizeDoc(raw, nil)
	if err != nil {
		return Filter{err: err}
	}
	if len(d) == 0 {
		return Filter{}
	}
	return Filter{d: d}
}

// maxDepth is MongoDB's limit on the nesting of a BSON document: the
// document is level 1, and each document or array in it adds a level
// (https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-Nested-Depth-for-BSON-Documents).
const maxDepth = 100

var errTooDeep = fmt.Errorf("%w: the filter is nested more than %d levels deep, counting each document and array "+
	"(MongoDB refuses deeper documents, so this is no filter): send a flatter one, such as one $or of many filters rather than nested $or",
	ErrInvalidValue, maxDepth)

// tooDeep reports whether v, a value at nesting level depth, holds a
// document or an array past maxDepth, for the types untrusted input is
// decoded into (encoding/json's and the driver's). It stops at the limit,
// so its cost is bounded by the input's first maxDepth levels; cycles end
// there too. Other types are left to checkRaw once encoded.
func tooDeep(v any, depth int) bool {
	if depth > maxDepth {
		switch v := v.(type) {
		case bson.D:
			return v != nil
		case bson.M:
			return v != nil
		case map[string]any:
			return v != nil
		case bson.A:
			return v != nil
		case []any:
			return v != nil
		}
		return false
	}
	switch v := v.(type) {
	case bson.D:
		for _, e := range v {
			if tooDeep(e.Value, depth+1) {
				return true
			}
		}
	case bson.M:
		for _, e := range v {
			if tooDeep(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if tooDeep(e, depth+1) {
				return true
			}
		}
	case bson.A:
		for _, e := range v {
			if tooDeep(e, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if tooDeep(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// checkRaw validates doc, a document at nesting level depth, and every
// document and array in it, in one pass over its bytes that stops at
// maxDepth: each byte is read once (the driver's Elements validates a
// document's elements again at each level it is read from).
func checkRaw(doc []byte, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	n, _, ok := bsoncore.ReadLength(doc)
	if !ok || n < 5 || int(n) > len(doc) || doc[n-1] != 0 {
		return errInvalidBSON
	}
	for rem := doc[4 : n-1]; len(rem) > 0; {
		var el bsoncore.Element
		el, rem, ok = bsoncore.ReadElement(rem)
		if !ok {
			return errInvalidBSON
		}
		var err error
		switch v := el.Value(); v.Type {
		case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
			err = checkRaw(v.Data, depth+1)
		case bsoncore.TypeCodeWithScope:
			// MongoDB counts the scope's document two levels down.
			_, scope, ok := v.CodeWithScopeOK()
			if !ok {
				return errInvalidBSON
			}
			err = checkRaw(scope, depth+2)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var errInvalidBSON = fmt.Errorf("%w: the filter is not valid BSON", ErrInvalidValue)

// step is one step of the path to a filter inside the input: a key ($or)
// or, when key is "", an index. A path is spelled only for an error.
type step struct {
	key   string
	index int
}

func spell(at []step) string {
	var b strings.Builder
	for i, s := range at {
		if i > 0 {
			b.WriteByte('.')
		}
		if s.key != "" {
			b.WriteString(s.key)
		} else {
			b.WriteString(strconv.Itoa(s.index))
		}
	}
	return b.String()
}

// sanitizeDoc sanitizes one filter document found at the path at. The
// input has passed checkRaw.
func sanitizeDoc(raw bson.Raw, at []step) (bson.D, error) {
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
				return nil, &OperatorError{Operator: key, Path: spell(at)}
			}
			list, err := sanitizeList(val, append(at, step{key: key}))
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
func sanitizeList(val bson.RawValue, at []step) (bson.A, error) {
	arr, ok := val.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%w: %s takes an array of filters, not %s", ErrInvalidValue, spell(at), val.Type)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid BSON (%v)", ErrInvalidValue, spell(at), err)
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("%w: %s with an empty array", ErrNoFilters, spell(at))
	}
	out := make(bson.A, 0, len(vals))
	for i, v := range vals {
		at := append(at, step{index: i})
		doc, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%w: %s is %s, not a filter", ErrInvalidValue, spell(at), v.Type)
		}
		d, err := sanitizeDoc(doc, at)
		if err != nil {
			return nil, err
		}
		if len(d) == 0 {
			return nil, fmt.Errorf("%w: %s is an empty filter", ErrNoFilters, spell(at))
		}
		out = append(out, d)
	}
	return out, nil
}
