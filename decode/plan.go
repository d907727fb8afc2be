package decode

import (
	"encoding"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// opcode says how a value of one Go type is decoded.
type opcode uint8

const (
	opDelegate opcode = iota // the driver decodes it (see delegate.go)
	opBool
	opInt8
	opInt16
	opInt32
	opInt64
	opUint8
	opUint16
	opUint32
	opUint64
	opFloat32
	opFloat64
	opString
	opBytes
	opTime
	opObjectID
	opDateTime
	opStruct
	opPtr
	opSlice
	opArray
	opMap
)

// typePlan is the compiled decoder for one Go type in one context (the
// driver's `truncate` flag changes how numbers convert, and is inherited by
// everything nested under a field that sets it).
type typePlan struct {
	typ      reflect.Type
	op       opcode
	truncate bool
	env      env         // the registry and options delegated values are decoded with
	elem     *typePlan   // opPtr, opSlice, opArray, opMap
	st       *structPlan // opStruct
	arrayLen int         // opArray
	wrapper  reflect.Type
	clear    []clearOp // how to zero a value without reflection
	clearOK  bool
	// strBytes is about the string bytes of the documents decoded with this
	// plan (it grows at once and shrinks by halves): the size of the next
	// document's first string chunk (see copyString).
	strBytes atomic.Int32
	// resets lists the offsets of slice fields reachable from this type
	// through value (not pointer) struct fields: their backing arrays are
	// kept when a destination is reset, so reused values allocate less.
	resets []uintptr
}

var (
	tTime        = reflect.TypeOf(time.Time{})
	tOID         = reflect.TypeOf(bson.ObjectID{})
	tDateTime    = reflect.TypeOf(bson.DateTime(0))
	tByteSlice   = reflect.TypeOf([]byte(nil))
	tString      = reflect.TypeOf("")
	tUnmarsh     = reflect.TypeOf((*bson.Unmarshaler)(nil)).Elem()
	tValUnmarsh  = reflect.TypeOf((*bson.ValueUnmarshaler)(nil)).Elem()
	tKeyUnmarsh  = reflect.TypeOf((*bson.KeyUnmarshaler)(nil)).Elem()
	tTextUnmarsh = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

	// driverTypes have type-specific decoders in the driver's default
	// registry; apart from the few implemented here, they are delegated.
	driverTypes = map[reflect.Type]bool{
		reflect.TypeOf(bson.D{}):             true,
		reflect.TypeOf(bson.Binary{}):        true,
		reflect.TypeOf(bson.Vector{}):        true,
		reflect.TypeOf(bson.Undefined{}):     true,
		reflect.TypeOf(bson.Null{}):          true,
		reflect.TypeOf(bson.Regex{}):         true,
		reflect.TypeOf(bson.DBPointer{}):     true,
		reflect.TypeOf(bson.Timestamp{}):     true,
		reflect.TypeOf(bson.MinKey{}):        true,
		reflect.TypeOf(bson.MaxKey{}):        true,
		reflect.TypeOf(bson.JavaScript("")):  true,
		reflect.TypeOf(bson.Symbol("")):      true,
		reflect.TypeOf(bson.Decimal128{}):    true,
		reflect.TypeOf(bson.CodeWithScope{}): true,
		reflect.TypeOf(json.Number("")):      true,
		reflect.TypeOf(url.URL{}):            true,
		reflect.TypeOf(bsoncore.Document{}):  true,
		reflect.TypeOf(bsoncore.Array{}):     true,
		reflect.TypeOf(bson.Raw{}):           true,
		reflect.TypeOf(bson.RawValue{}):      true,
		reflect.TypeOf((*any)(nil)).Elem():   true,
	}
)

type planKey struct {
	t        reflect.Type
	truncate bool
	env      env
}

var plans sync.Map // planKey → *typePlan (complete plans only)

// compiler builds plans for one top-level type; in-progress plans let
// recursive types refer to themselves.
type compiler struct {
	building map[planKey]*typePlan
	env      env
}

func planFor(t reflect.Type, e env) *typePlan {
	truncate := e.flags&flagTruncate != 0 // AllowTruncatingDoubles: truncate everywhere
	k := planKey{t: t, truncate: truncate, env: e}
	if p, ok := plans.Load(k); ok {
		return p.(*typePlan)
	}
	c := &compiler{building: map[planKey]*typePlan{}, env: e}
	p := c.compile(t, truncate)
	for k, v := range c.building {
		plans.LoadOrStore(k, v)
	}
	if v, loaded := plans.LoadOrStore(k, p); loaded {
		return v.(*typePlan)
	}
	return p
}

func (c *compiler) compile(t reflect.Type, truncate bool) *typePlan {
	k := planKey{t, truncate, c.env}
	if p, ok := plans.Load(k); ok {
		return p.(*typePlan)
	}
	if p, ok := c.building[k]; ok {
		return p
	}
	p := &typePlan{typ: t, truncate: truncate, env: c.env}
	c.building[k] = p

	switch {
	case c.env.delegates(t):
		p.op = opDelegate // a codec or option of the declared registry and options
	case t.Implements(tValUnmarsh) || t.Implements(tUnmarsh) ||
		(t.Kind() != reflect.Pointer && (reflect.PointerTo(t).Implements(tValUnmarsh) || reflect.PointerTo(t).Implements(tUnmarsh))):
		p.op = opDelegate
	case t == tTime:
		p.op = opTime
	case t == tOID:
		p.op = opObjectID
	case t == tDateTime:
		p.op = opDateTime
	case t == tByteSlice:
		p.op = opBytes
	case driverTypes[t]:
		p.op = opDelegate
	default:
		c.compileKind(p)
	}
	// Native plans delegate uncommon conversions (a symbol into a string,
	// say), so every plan has a wrapper.
	p.wrapper = wrapperType(t, truncate)
	p.clear, p.clearOK = clearOpsFor(t)
	return p
}

func (c *compiler) compileKind(p *typePlan) {
	t, truncate := p.typ, p.truncate
	switch t.Kind() {
	case reflect.Bool:
		p.op = opBool
	case reflect.Int8:
		p.op = opInt8
	case reflect.Int16:
		p.op = opInt16
	case reflect.Int32:
		p.op = opInt32
	case reflect.Int64, reflect.Int: // int is 64 bits on every platform the driver supports here
		if t.Size() == 8 {
			p.op = opInt64
		} else {
			p.op = opInt32
		}
	case reflect.Uint8:
		p.op = opUint8
	case reflect.Uint16:
		p.op = opUint16
	case reflect.Uint32:
		p.op = opUint32
	case reflect.Uint64, reflect.Uint:
		if t.Size() == 8 {
			p.op = opUint64
		} else {
			p.op = opUint32
		}
	case reflect.Float32:
		p.op = opFloat32
	case reflect.Float64:
		p.op = opFloat64
	case reflect.String:
		p.op = opString
	case reflect.Pointer:
		p.op = opPtr
		p.elem = c.compile(t.Elem(), truncate)
	case reflect.Slice:
		p.op = opSlice
		p.elem = c.compile(t.Elem(), truncate)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Interface {
			// The driver's array decoder panics filling [N]any: delegated,
			// the panic becomes an error (ErrDriverPanic), as the driver
			// gives no value either.
			p.op = opDelegate
			return
		}
		p.op = opArray
		p.arrayLen = t.Len()
		p.elem = c.compile(t.Elem(), truncate)
	case reflect.Map:
		if k := reflect.PointerTo(t.Key()); t.Key().Kind() != reflect.String ||
			k.Implements(tKeyUnmarsh) || k.Implements(tTextUnmarsh) {
			// The driver's key conversions (ints, KeyUnmarshaler and
			// TextUnmarshaler keys, which it prefers to a string kind).
			p.op = opDelegate
			return
		}
		p.op = opMap
		p.elem = c.compile(t.Elem(), truncate)
	case reflect.Struct:
		p.op = opStruct
		p.st = c.describe(t, truncate)
		p.resets = c.resetsOf(t, 0, map[reflect.Type]bool{})
	default:
		// Interfaces, channels, funcs, complex numbers: whatever the
		// driver does with them (mostly an error when present).
		p.op = opDelegate
	}
}

// resetsOf lists slice fields reachable through value struct fields.
func (c *compiler) resetsOf(t reflect.Type, base uintptr, seen map[reflect.Type]bool) []uintptr {
	if seen[t] {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	var out []uintptr
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Type.Kind() == reflect.Slice && f.Type != tByteSlice && !driverTypes[f.Type]:
			out = append(out, base+f.Offset)
		case f.Type.Kind() == reflect.Struct && f.Type != tTime:
			out = append(out, c.resetsOf(f.Type, base+f.Offset, seen)...)
		}
	}
	return out
}

// errNoPlan is returned for a nil or non-pointer destination.
var errNoPlan = errors.New("destination must be a non-nil pointer")

// clearOp zeroes part of a value: a pointer word (with a write barrier, as a
// typed store) or a run of pointer-free bytes.
type clearOp struct {
	off uintptr
	n   uintptr // 0 for a pointer word
}

// clearOpsFor lays out how to zero a value of type t without reflection, or
// returns ok=false for layouts it does not expand (large arrays).
func clearOpsFor(t reflect.Type) ([]clearOp, bool) {
	var ptrs []uintptr
	if !pointerWords(t, 0, &ptrs) {
		return nil, false
	}
	var ops []clearOp
	var at uintptr
	for _, off := range ptrs {
		if off > at {
			ops = append(ops, clearOp{off: at, n: off - at})
		}
		ops = append(ops, clearOp{off: off})
		at = off + unsafe.Sizeof(uintptr(0))
	}
	if t.Size() > at {
		ops = append(ops, clearOp{off: at, n: t.Size() - at})
	}
	return ops, len(ops) <= 64
}

func pointerWords(t reflect.Type, base uintptr, out *[]uintptr) bool {
	const word = unsafe.Sizeof(uintptr(0))
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.String, reflect.Slice:
		*out = append(*out, base)
	case reflect.Interface:
		*out = append(*out, base, base+word)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !pointerWords(f.Type, base+f.Offset, out) {
				return false
			}
		}
	case reflect.Array:
		if t.Len() > 16 && t.Elem().Size() > 0 {
			return false
		}
		for i := range t.Len() {
			if !pointerWords(t.Elem(), base+uintptr(i)*t.Elem().Size(), out) {
				return false
			}
		}
	}
	return true
}
