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
	"reflect"
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
