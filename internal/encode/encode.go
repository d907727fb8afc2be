// Package encode is a compiled struct→BSON encoder producing exactly the
// bytes bson.Marshal of driver v2.10 produces (checked by a parity table and a
// fuzz target), for the write paths of package odm.
//
// Common kinds are encoded natively: bool, integers (with the driver's int32
// or int64 choice and the minsize flag), floats, strings, []byte,
// time.Time, bson.ObjectID, bson.DateTime, nested structs, pointers and
// slices of those, and the omitempty flag on them. Any other field is
// marshaled by the driver inside a one-field wrapper; a type the plan cannot
// describe exactly (inline fields, custom marshalers, duplicate keys) is
// marshaled by bson.Marshal as a whole.
package encode

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/bsontag"
)

type eop uint8

const (
	eDelegate eop = iota
	eBool
	eInt8
	eInt16
	eInt32
	eInt
	eInt64
	eUint8
	eUint16
	eUint32
	eUint64
	eFloat32
	eFloat64
	eString
	eBytes
	eTime
	eOID
	eDateTime
	eStruct
	ePtr
	eSlice
)

// Plan encodes values of one struct type.
type Plan struct {
	typ     reflect.Type
	whole   bool // bson.Marshal the whole value
	fields  []field
	idField int // index in fields of the _id field, or -1
	idIsOID bool
}

type field struct {
	key       string
	offset    uintptr
	op        eop
	omitEmpty bool
	minSize   bool
	typ       reflect.Type
	elem      *node // ePtr, eSlice element
	sub       *Plan // eStruct
	wrapper   reflect.Type
}

// node describes a pointer or slice element.
type node struct {
	op   eop
	typ  reflect.Type
	sub  *Plan
	elem *node
}

var (
	plans      sync.Map // reflect.Type → *Plan
	tTime      = reflect.TypeFor[time.Time]()
	tOID       = reflect.TypeFor[bson.ObjectID]()
	tDateTime  = reflect.TypeFor[bson.DateTime]()
	tByteSlice = reflect.TypeFor[[]byte]()
	tMarsh     = reflect.TypeFor[bson.Marshaler]()
	tValMarsh  = reflect.TypeFor[bson.ValueMarshaler]()
	tZeroer    = reflect.TypeFor[bson.Zeroer]()
)

// For returns the plan of struct type t, built once and cached.
func For(t reflect.Type) *Plan {
	if p, ok := plans.Load(t); ok {
		return p.(*Plan)
	}
	p := compile(t, map[reflect.Type]*Plan{})
	v, _ := plans.LoadOrStore(t, p)
	return v.(*Plan)
}

func custom(t reflect.Type) bool {
	return t.Implements(tMarsh) || t.Implements(tValMarsh) ||
		reflect.PointerTo(t).Implements(tMarsh) || reflect.PointerTo(t).Implements(tValMarsh)
}

func compile(t reflect.Type, building map[reflect.Type]*Plan) *Plan {
	if p, ok := building[t]; ok {
		return p
	}
	p := &Plan{typ: t, idField: -1}
	building[t] = p
	if t.Kind() != reflect.Struct || custom(t) || t == tTime || t == tOID {
		p.whole = true
		return p
	}
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" {
			continue
		}
		tags := bsontag.Parse(sf)
		if tags.Skip {
			continue
		}
		if tags.Inline {
			p.whole = true // the driver's inline rules: let it do them
		}
		key, omit, minSize, tag := tags.Name, tags.OmitEmpty, tags.MinSize, tags.Raw
		if p.whole || seen[key] || strings.ContainsRune(key, 0) {
			p.whole = true
			return p
		}
		seen[key] = true
		f := field{key: key, offset: sf.Offset, omitEmpty: omit, minSize: minSize, typ: sf.Type}
		f.op, f.elem, f.sub = classify(sf.Type, building)
		if omit && f.op != eDelegate && sf.Type != tTime && sf.Type != tOID && sf.Type.Implements(tZeroer) {
			f.op = eDelegate // a custom IsZero decides emptiness
		}
		if f.op == eDelegate {
			f.wrapper = wrapperType(sf.Type, tag)
		}
		if key == "_id" {
			p.idField = len(p.fields)
			p.idIsOID = sf.Type == tOID
		}
		p.fields = append(p.fields, f)
	}
	return p
}

func classify(t reflect.Type, building map[reflect.Type]*Plan) (eop, *node, *Plan) {
	switch {
	case custom(t):
		return eDelegate, nil, nil
	case t == tTime:
		return eTime, nil, nil
	case t == tOID:
		return eOID, nil, nil
	case t == tDateTime:
		return eDateTime, nil, nil
	case t == tByteSlice:
		return eBytes, nil, nil
	}
	switch t.PkgPath() {
	case "go.mongodb.org/mongo-driver/v2/bson", "go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore", "encoding/json", "net/url":
		return eDelegate, nil, nil // types with encoders of their own in the driver
	}
	switch t.Kind() {
	case reflect.Bool:
		return eBool, nil, nil
	case reflect.Int8:
		return eInt8, nil, nil
	case reflect.Int16:
		return eInt16, nil, nil
	case reflect.Int32:
		return eInt32, nil, nil
	case reflect.Int:
		return eInt, nil, nil
	case reflect.Int64:
		return eInt64, nil, nil
	case reflect.Uint8:
		return eUint8, nil, nil
	case reflect.Uint16:
		return eUint16, nil, nil
	case reflect.Uint32:
		return eUint32, nil, nil
	case reflect.Uint64, reflect.Uint:
		if t.Size() != 8 {
			return eDelegate, nil, nil
		}
		return eUint64, nil, nil
	case reflect.Float32:
		return eFloat32, nil, nil
	case reflect.Float64:
		return eFloat64, nil, nil
	case reflect.String:
		return eString, nil, nil
	case reflect.Struct:
		sub := compile(t, building)
		return eStruct, nil, sub
	case reflect.Pointer:
		op, el, sub := classify(t.Elem(), building)
		if op == eDelegate {
			return eDelegate, nil, nil
		}
		return ePtr, &node{op: op, typ: t.Elem(), sub: sub, elem: el}, nil
	case reflect.Slice:
		op, el, sub := classify(t.Elem(), building)
		if op == eDelegate || t.Elem().Kind() == reflect.Uint8 {
			return eDelegate, nil, nil
		}
		return eSlice, &node{op: op, typ: t.Elem(), sub: sub, elem: el}, nil
	}
	return eDelegate, nil, nil
}

func wrapperType(t reflect.Type, tag string) reflect.Type {
	flags := ""
	if _, rest, ok := strings.Cut(tag, ","); ok {
		flags = "," + rest
	}
	return reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: reflect.StructTag(`bson:"v` + flags + `"`)}})
}

// HasObjectID reports whether the type's _id field is a bson.ObjectID.
func (p *Plan) HasObjectID() bool { return p.idIsOID && !p.whole }

// Append appends the BSON document of the struct at ptr to dst. With omitZeroID,
// an _id field holding a zero ObjectID is left out (the driver then adds a new
// one).
func (p *Plan) Append(dst []byte, ptr unsafe.Pointer, omitZeroID bool) ([]byte, error) {
	if p.whole {
		b, err := bson.Marshal(reflect.NewAt(p.typ, ptr).Interface())
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for i := range p.fields {
		f := &p.fields[i]
		fp := unsafe.Add(ptr, f.offset)
		if omitZeroID && i == p.idField && p.idIsOID && (*bson.ObjectID)(fp).IsZero() {
			continue
		}
		var err error
		dst, err = f.append(dst, fp)
		if err != nil {
			return dst, fmt.Errorf("encode: field %s: %w", f.key, err)
		}
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}

func (f *field) append(dst []byte, fp unsafe.Pointer) ([]byte, error) {
	if f.op == eDelegate {
		return f.delegate(dst, fp)
	}
	if f.omitEmpty && empty(f.op, fp) {
		return dst, nil
	}
	return appendValue(dst, f.key, f.op, f.minSize, f.elem, f.sub, fp)
}

func empty(op eop, fp unsafe.Pointer) bool {
	switch op {
	case eBool:
		return !*(*bool)(fp)
	case eInt8, eUint8:
		return *(*uint8)(fp) == 0
	case eInt16, eUint16:
		return *(*uint16)(fp) == 0
	case eInt32, eUint32:
		return *(*uint32)(fp) == 0
	case eInt, eInt64, eUint64, eDateTime:
		return *(*uint64)(fp) == 0
	case eFloat32: // -0.0 is empty too, as for the driver
		return *(*float32)(fp) == 0
	case eFloat64:
		return *(*float64)(fp) == 0
	case eString:
		return len(*(*string)(fp)) == 0
	case eBytes, eSlice:
		return (*sliceHeader)(fp).len == 0
	case eTime:
		return (*time.Time)(fp).IsZero()
	case eOID:
		return (*bson.ObjectID)(fp).IsZero()
	case ePtr:
		return *(*unsafe.Pointer)(fp) == nil
	}
	return false // structs are never empty without a custom IsZero
}

func elem(dst []byte, t bson.Type, key string) []byte {
	dst = append(dst, byte(t))
	dst = append(dst, key...)
	return append(dst, 0)
}

// appendValue appends one field's element. Like the decoder's value, it is
// one switch over every native kind, run once per encoded value: one call
// per value, rather than a call per kind-family.
func appendValue(dst []byte, key string, op eop, minSize bool, el *node, sub *Plan, fp unsafe.Pointer) ([]byte, error) {
	switch op {
	case eBool:
		dst = elem(dst, bson.TypeBoolean, key)
		if *(*bool)(fp) {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case eInt8:
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(*(*int8)(fp))), nil
	case eInt16:
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(*(*int16)(fp))), nil
	case eInt32:
		return appendInt32(elem(dst, bson.TypeInt32, key), *(*int32)(fp)), nil
	case eInt:
		i := int64(*(*int)(fp))
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return appendInt32(elem(dst, bson.TypeInt32, key), int32(i)), nil
		}
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeInt64, key), uint64(i)), nil
	case eInt64:
		i := *(*int64)(fp)
		if minSize && i >= math.MinInt32 && i <= math.MaxInt32 {
			return appendInt32(elem(dst, bson.TypeInt32, key), int32(i)), nil
		}
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeInt64, key), uint64(i)), nil
	case eUint8:
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(*(*uint8)(fp))), nil
	case eUint16:
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(*(*uint16)(fp))), nil
	case eUint32, eUint64:
		var u uint64
		if op == eUint32 {
			u = uint64(*(*uint32)(fp))
		} else {
			u = *(*uint64)(fp)
		}
		if minSize && u <= math.MaxInt32 {
			return appendInt32(elem(dst, bson.TypeInt32, key), int32(u)), nil
		}
		if u > math.MaxInt64 {
			return dst, fmt.Errorf("%d overflows int64", u)
		}
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeInt64, key), u), nil
	case eFloat32:
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeDouble, key), math.Float64bits(float64(*(*float32)(fp)))), nil
	case eFloat64:
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeDouble, key), math.Float64bits(*(*float64)(fp))), nil
	case eString:
		s := *(*string)(fp)
		dst = appendInt32(elem(dst, bson.TypeString, key), int32(len(s)+1))
		dst = append(dst, s...)
		return append(dst, 0), nil
	case eBytes:
		b := *(*[]byte)(fp)
		if b == nil {
			return elem(dst, bson.TypeNull, key), nil
		}
		dst = appendInt32(elem(dst, bson.TypeBinary, key), int32(len(b)))
		dst = append(dst, 0)
		return append(dst, b...), nil
	case eTime:
		t := *(*time.Time)(fp)
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeDateTime, key), uint64(t.Unix()*1e3+int64(t.Nanosecond())/1e6)), nil
	case eOID:
		dst = elem(dst, bson.TypeObjectID, key)
		return append(dst, (*bson.ObjectID)(fp)[:]...), nil
	case eDateTime:
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeDateTime, key), uint64(*(*int64)(fp))), nil
	case eStruct:
		if sub.whole {
			return appendWhole(dst, key, sub, fp)
		}
		return sub.Append(elem(dst, bson.TypeEmbeddedDocument, key), fp, false)
	case ePtr:
		p := *(*unsafe.Pointer)(fp)
		if p == nil {
			return elem(dst, bson.TypeNull, key), nil
		}
		return appendValue(dst, key, el.op, minSize, el.elem, el.sub, p)
	case eSlice:
		h := (*sliceHeader)(fp)
		if h.data == nil {
			return elem(dst, bson.TypeNull, key), nil
		}
		dst = elem(dst, bson.TypeArray, key)
		start := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		size := el.typ.Size()
		for i := 0; i < h.len; i++ {
			var err error
			dst, err = appendValue(dst, indexKey(i), el.op, minSize, el.elem, el.sub, unsafe.Add(h.data, uintptr(i)*size))
			if err != nil {
				return dst, err
			}
		}
		dst = append(dst, 0)
		binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
		return dst, nil
	}
	return dst, fmt.Errorf("encode: unsupported op %d", op)
}

func appendWhole(dst []byte, key string, sub *Plan, fp unsafe.Pointer) ([]byte, error) {
	t, b, err := bson.MarshalValue(reflect.NewAt(sub.typ, fp).Interface())
	if err != nil {
		return dst, err
	}
	return append(elem(dst, t, key), b...), nil
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

var indexKeys = func() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

func indexKey(i int) string {
	if i < len(indexKeys) {
		return indexKeys[i]
	}
	return strconv.Itoa(i)
}

func appendInt32(dst []byte, i int32) []byte {
	return binary.LittleEndian.AppendUint32(dst, uint32(i))
}

// delegate marshals the field inside struct{ V T `bson:"v,flags"` } and
// copies its element under the field's key; nothing is written when the
// driver omitted it (omitempty).
func (f *field) delegate(dst []byte, fp unsafe.Pointer) ([]byte, error) {
	w := reflect.New(f.wrapper)
	w.Elem().Field(0).Set(reflect.NewAt(f.typ, fp).Elem())
	b, err := bson.Marshal(w.Interface())
	if err != nil {
		return dst, err
	}
	if len(b) <= 5 {
		return dst, nil // omitted
	}
	// b = len(4) type(1) "v\0"(2) value… terminator(1)
	dst = elem(dst, bson.Type(b[4]), f.key)
	return append(dst, b[7:len(b)-1]...), nil
}
