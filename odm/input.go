package odm

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// The checks every write makes of its input before anything is sent, so
// that what the driver would refuse, or what would silently write every
// document, never reaches the server and never counts as a write of
// unknown outcome.

// errNilFilter is the error of a write that takes a filter when the
// filter says nothing: nil (typed or untyped), an empty map, an empty
// bson.Raw, a zero query.Filter, or a struct that encodes to an empty
// document. A write to every document must say so with bson.D{}, the one
// spelling of "every document". Nothing is sent. It matches
// query.ErrNoFilters.
var errNilFilter = fmt.Errorf("%w (pass bson.D{} to write to every document)", query.ErrNoFilters)

// ErrInvalidUpdate is returned by an update whose update document the
// server (or the driver) would refuse: nil, empty, or not made only of
// update operators ($set, $inc, …); a pipeline update is a non-empty array
// of stages. To replace a whole document, use Replace or FindOneAndReplace.
// Nothing is sent.
var ErrInvalidUpdate = errors.New("odm: invalid update (want update operators such as $set, or a pipeline)")

// ErrNilModel is the error of a nil mongo.WriteModel in a BulkWrite (in a
// *WriteError), and of a nil document given to Save, Insert, Replace or
// Delete. Nothing is sent.
var ErrNilModel = errors.New("odm: nil write model")

// checkFilter returns the filter a write sends, or errNilFilter (or the
// filter's own construction error) when it says nothing. bson.D{} (non-nil,
// empty) is the explicit "every document" and passes.
func checkFilter(filter any, reg *bson.Registry, opts *options.BSONOptions) (any, error) {
	if d, ok := filter.(bson.D); ok && d != nil && len(d) == 0 {
		return d, nil // the one spelling of every document
	}
	f, err := checkFilterValue(filter, reg, opts)
	if err != nil {
		return nil, err
	}
	f, _ = pin(f, reg, opts) // the bytes the rules read are the bytes sent
	if nothing(f, reg, opts) {
		return nil, fmt.Errorf("%w: a %T that selects every document without saying so ($comment, the empty field name, a constant $expr, $and/$or of such filters)", errNilFilter, filter)
	}
	return f, nil
}

// nothing reports whether filter f (as checkFilterValue passed it) says
// nothing: an empty document other than the top-level bson.D{}, or one
// whose every condition is a $comment, a null on the empty field name, or
// an $and or $or of such documents. Only a filter whose top-level keys
// could make it so is encoded to look.
func nothing(f any, reg *bson.Registry, opts *options.BSONOptions) bool {
	switch v := f.(type) {
	case bson.Raw:
		return nothingRaw(v)
	case bson.D:
		if len(v) == 0 {
			return true // not the top-level bson.D{}: checkFilter returned that already
		}
		for _, e := range v {
			if !suspect(e.Key) {
				return false
			}
		}
	case bson.M:
		return mapNothing(v, reg, opts)
	case map[string]any:
		return mapNothing(v, reg, opts)
	default:
		rv := reflect.ValueOf(f)
		if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
			for _, k := range rv.MapKeys() {
				if !suspect(k.String()) {
					return false
				}
			}
		} else if rv.Kind() == reflect.Slice && rv.Len() == 0 {
			return true
		}
	}
	raw, err := marshal(f, reg, opts)
	return err == nil && nothingRaw(raw)
}

// mapNothing is nothing for a map, without reflect: a write's filter is
// checked on every write.
func mapNothing(m map[string]any, reg *bson.Registry, opts *options.BSONOptions) bool {
	if len(m) == 0 {
		return true
	}
	for k := range m {
		if !suspect(k) {
			return false
		}
	}
	raw, err := marshal(m, reg, opts)
	return err == nil && nothingRaw(raw)
}

// suspect reports whether a top-level key can be part of a filter that
// says nothing.
func suspect(key string) bool {
	return key == "$comment" || key == "$and" || key == "$or" || key == "$expr" || key == ""
}

// nothingRaw is nothing for an encoded filter: it selects every document
// whatever they hold when each of its conditions does. A $comment selects
// every document; so does any condition on the empty field name (refused
// rather than judged: no filter means it), an $expr of a constant that is
// true, an $and whose every branch does, and an $or one of whose branches
// does.
func nothingRaw(raw bson.Raw) bool {
	els, err := raw.Elements()
	if err != nil {
		return false // the server will say what is wrong with it
	}
	for _, el := range els {
		switch v := el.Value(); el.Key() {
		case "$comment", "":
		case "$expr":
			if !truthyConstant(v) {
				return false
			}
		case "$and", "$or":
			vals, ok := branches(v)
			if !ok {
				return false
			}
			any := false
			all := true
			for _, d := range vals {
				n := nothingRaw(d)
				any, all = any || n, all && n
			}
			if (el.Key() == "$and" && !all) || (el.Key() == "$or" && !any) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// branches returns the documents of an $and or $or; ok is false for what
// the server would refuse (not an array, empty, not documents).
func branches(v bson.RawValue) ([]bson.Raw, bool) {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, false
	}
	vals, err := arr.Values()
	if err != nil || len(vals) == 0 {
		return nil, false
	}
	out := make([]bson.Raw, 0, len(vals))
	for _, x := range vals {
		d, ok := x.DocumentOK()
		if !ok {
			return nil, false
		}
		out = append(out, d)
	}
	return out, true
}

// truthyConstant reports whether an $expr value is a constant that is
// true for every document: not an operator expression, not a field path,
// and neither false, zero, null nor undefined.
func truthyConstant(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeInt32:
		return v.Int32() != 0
	case bson.TypeInt64:
		return v.Int64() != 0
	case bson.TypeDouble:
		return v.Double() != 0
	case bson.TypeNull, bson.TypeUndefined, bson.TypeDecimal128:
		return false // a decimal: not decided here
	case bson.TypeString:
		return !strings.HasPrefix(v.StringValue(), "$")
	case bson.TypeEmbeddedDocument:
		el, err := v.Document().IndexErr(0)
		return err != nil || !strings.HasPrefix(el.Key(), "$") // {} or a literal document: true
	}
	return true // an array, an ObjectID, a date, …: true
}

func checkFilterValue(filter any, reg *bson.Registry, opts *options.BSONOptions) (any, error) {
	if d, err, ok := opt.FilterD(filter); ok { // a query.Filter
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, fmt.Errorf("%w: a zero query.Filter", errNilFilter)
		}
		return d, nil
	}
	switch f := filter.(type) {
	case nil:
		return nil, fmt.Errorf("%w: the filter is nil", errNilFilter)
	case bson.D:
		if f == nil {
			return nil, fmt.Errorf("%w: a nil bson.D", errNilFilter)
		}
		return f, nil
	case bson.Raw:
		return rawFilter(f)
	case []byte:
		return rawFilter(f)
	}
	rv := reflect.ValueOf(filter)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, fmt.Errorf("%w: a nil %T", errNilFilter, filter)
		}
		return checkFilterValue(rv.Elem().Interface(), reg, opts)
	case reflect.Map:
		if rv.Len() == 0 {
			return nil, fmt.Errorf("%w: an empty %T", errNilFilter, filter)
		}
	case reflect.Slice:
		if rv.IsNil() {
			return nil, fmt.Errorf("%w: a nil %T", errNilFilter, filter)
		}
	case reflect.Struct:
		raw, err := marshal(filter, reg, opts)
		if err != nil {
			return nil, fmt.Errorf("odm: encode the filter: %w", err)
		}
		if len(raw) <= 5 {
			return nil, fmt.Errorf("%w: a %T that encodes to an empty document", errNilFilter, filter)
		}
		return raw, nil
	}
	return filter, nil
}

func rawFilter(raw []byte) (any, error) {
	if len(raw) <= 5 {
		return nil, fmt.Errorf("%w: an empty or nil bson.Raw", errNilFilter)
	}
	return bson.Raw(raw), nil
}

// checkUpdate encodes an update for the driver: a document of update
// operators, or a pipeline (a slice of stages). It refuses what the server
// or the driver would refuse, with ErrInvalidUpdate.
func checkUpdate(update any, reg *bson.Registry, opts *options.BSONOptions) (any, error) {
	if update == nil {
		return nil, fmt.Errorf("%w: the update is nil", ErrInvalidUpdate)
	}
	switch update.(type) {
	case bson.D, bson.M, bson.Raw, []byte:
	default:
		if k := reflect.ValueOf(update).Kind(); k == reflect.Slice || k == reflect.Array {
			return checkPipeline(update, reg, opts)
		}
	}
	raw, err := marshal(update, reg, opts)
	if err != nil {
		return nil, fmt.Errorf("odm: encode the update: %w", err)
	}
	if err := operatorsOnly(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// operatorsOnly checks that an update document is non-empty and made only
// of update operators.
func operatorsOnly(doc bson.Raw) error {
	elems, err := doc.Elements()
	if err != nil {
		return fmt.Errorf("odm: the update: %w", err)
	}
	if len(elems) == 0 {
		return fmt.Errorf("%w: the update document is empty", ErrInvalidUpdate)
	}
	for _, e := range elems {
		if !strings.HasPrefix(e.Key(), "$") {
			return fmt.Errorf("%w: %q is not an update operator (to replace the document, use Replace or FindOneAndReplace)", ErrInvalidUpdate, e.Key())
		}
	}
	return nil
}

// checkPipeline encodes a pipeline update: every stage a document.
func checkPipeline(update any, reg *bson.Registry, opts *options.BSONOptions) (any, error) {
	rv := reflect.ValueOf(update)
	if rv.Len() == 0 {
		return nil, fmt.Errorf("%w: the pipeline is empty", ErrInvalidUpdate)
	}
	stages := make([]bson.Raw, rv.Len())
	for i := range stages {
		raw, err := marshal(rv.Index(i).Interface(), reg, opts)
		if err != nil {
			return nil, fmt.Errorf("odm: encode stage %d of the update: %w", i, err)
		}
		if err := operatorsOnly(raw); err != nil {
			return nil, fmt.Errorf("stage %d: %w", i, err)
		}
		stages[i] = raw
	}
	return stages, nil
}

// marshal encodes v as a document as the driver does with reg and opts.
func marshal(v any, reg *bson.Registry, opts *options.BSONOptions) (bson.Raw, error) {
	if reg == nil && opts == nil {
		return bson.Marshal(v)
	}
	var buf bytes.Buffer
	enc := bson.NewEncoder(bson.NewDocumentWriter(&buf))
	if reg != nil {
		enc.SetRegistry(reg)
	}
	if opts != nil {
		setEncoderOptions(enc, opts)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// setEncoderOptions applies the BSONOptions the driver applies to its
// encoders.
func setEncoderOptions(enc *bson.Encoder, o *options.BSONOptions) {
	for _, set := range []struct {
		on bool
		fn func()
	}{
		{o.ErrorOnInlineDuplicates, enc.ErrorOnInlineDuplicates},
		{o.IntMinSize, enc.IntMinSize},
		{o.NilByteSliceAsEmpty, enc.NilByteSliceAsEmpty},
		{o.NilMapAsEmpty, enc.NilMapAsEmpty},
		{o.NilSliceAsEmpty, enc.NilSliceAsEmpty},
		{o.OmitZeroStruct, enc.OmitZeroStruct},
		{o.OmitEmpty, enc.OmitEmpty},
		{o.StringifyMapKeysWithFmt, enc.StringifyMapKeysWithFmt},
		{o.UseJSONStructTags, enc.UseJSONStructTags},
	} {
		if set.on {
			set.fn()
		}
	}
}
