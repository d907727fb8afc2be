package decode

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sentinel errors. Every error returned by this package is an *Error that
// wraps one of these (or an error from the driver, for delegated types), so
// callers can match the kind of failure with errors.Is and its location with
// errors.As.
var (
	// ErrMalformed reports bytes that are not a valid BSON document:
	// inconsistent lengths, missing terminators, unknown type bytes.
	ErrMalformed = errors.New("malformed BSON")
	// ErrTypeMismatch reports a BSON value whose type cannot be stored in
	// the Go destination (for example a string into an int field).
	ErrTypeMismatch = errors.New("type mismatch")
	// ErrOverflow reports a number that does not fit the Go destination.
	ErrOverflow = errors.New("value overflows destination")
	// ErrTruncation reports a double with a fractional part (or a loss of
	// precision into float32) where the field has no `truncate` tag flag.
	ErrTruncation = errors.New("value would be truncated")
	// ErrTooDeep reports nesting deeper than MaxDepth.
	ErrTooDeep = errors.New("document nested too deeply")
	// ErrUnsupportedType reports a Go type this package cannot describe (for
	// example a struct with two inline maps), as the driver would.
	ErrUnsupportedType = errors.New("unsupported Go type")
)

// MaxDepth is the deepest nesting of documents and arrays Decode accepts.
// MongoDB itself refuses to store documents nested more than 100 levels, so
// this limit only rejects hostile input; it keeps the decoder's stack bounded.
const MaxDepth = 200

// Error describes a failure to decode one value. Path locates the value in
// the document ("items[3].price"; empty for the document itself), BSONType is
// the type found there (0 when unknown), GoType the destination type.
type Error struct {
	Path     string
	BSONType bson.Type
	GoType   reflect.Type
	Err      error
}

// Error implements error: "decode: path: BSON type into Go type: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("decode: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.GoType != nil && e.BSONType != 0 {
		fmt.Fprintf(&b, "BSON %s into %s: ", e.BSONType, e.GoType)
	} else if e.GoType != nil {
		fmt.Fprintf(&b, "into %s: ", e.GoType)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// pathError is the internal form of an error while it unwinds: segments are
// appended innermost first and joined once, at the top.
type pathError struct {
	segs     []string // innermost first: "price", "[3]", "items"
	bsonType bson.Type
	goType   reflect.Type
	err      error
}

func (e *pathError) Error() string { return e.toError().Error() }

func (e *pathError) toError() *Error {
	var b strings.Builder
	for i := len(e.segs) - 1; i >= 0; i-- {
		s := e.segs[i]
		if b.Len() > 0 && (s == "" || s[0] != '[') {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return &Error{Path: b.String(), BSONType: e.bsonType, GoType: e.goType, Err: e.err}
}

func newErr(t bson.Type, gt reflect.Type, err error) *pathError {
	return &pathError{bsonType: t, goType: gt, err: err}
}

func mismatch(t bson.Type, gt reflect.Type) *pathError {
	return newErr(t, gt, ErrTypeMismatch)
}

func malformed(format string, args ...any) *pathError {
	return &pathError{err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)}
}

// withKey adds a document key to the error's path.
func withKey(err error, key string) error {
	if pe, ok := err.(*pathError); ok {
		pe.segs = append(pe.segs, key)
		return pe
	}
	return &pathError{segs: []string{key}, err: err}
}

// withIndex adds an array index to the error's path.
func withIndex(err error, i int) error {
	return withKey(err, fmt.Sprintf("[%d]", i))
}

func finish(err error) error {
	if err == nil {
		return nil
	}
	if pe, ok := err.(*pathError); ok {
		return pe.toError()
	}
	return &Error{Err: err}
}
