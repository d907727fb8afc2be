package decode

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/databridge-go/databridge/internal/bsontag"
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

// structPlan is the driver's struct description, flattened.
type structPlan struct {
	fields    []fieldPlan
	index     map[string]int
	inlineMap *fieldPlan // the `inline` map field, if any (its plan is the map's)
	err       error      // the driver's describe error, reported when decoded
}

// step is one hop of a field path through inline struct pointers.
type step struct {
	offset uintptr
	typ    reflect.Type // the pointer's element type, to allocate it
}

type fieldPlan struct {
	name   string
	offset uintptr // from the innermost inline struct pointer (or the struct)
	hops   []step  // inline struct pointers to follow (and allocate) first
	plan   *typePlan
	// mapType is set for the inline map field, whose plan is its element's.
	mapType reflect.Type
	// The key as it appears in a document, name and NUL, packed into two
	// little-endian words (k) with masks (m) for the bytes it covers, so
	// that the decoder compares it with two loads: klen is its length,
	// 0 when it is longer than 16 bytes or the name holds a NUL (nul: no
	// document key can equal such a name).
	klen   int
	nul    bool
	k0, k1 uint64
	m0, m1 uint64
}

// packKey fills klen, k and m from name.
func (f *fieldPlan) packKey() {
	key := f.name + "\x00"
	f.nul = strings.IndexByte(f.name, 0) >= 0
	if len(key) > 16 || f.nul {
		return
	}
	var b, m [16]byte
	copy(b[:], key)
	for i := range key {
		m[i] = 0xff
	}
	f.klen = len(key)
	f.k0, f.k1 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	f.m0, f.m1 = binary.LittleEndian.Uint64(m[:8]), binary.LittleEndian.Uint64(m[8:])
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

// describe ports the driver's describeStructSlow: tag parsing, inline
// structs, struct pointers and maps, and Go's dominance rules for keys that
// appear more than once.
func (c *compiler) describe(t reflect.Type, truncate bool) *structPlan {
	sp := &structPlan{index: map[string]int{}}
	fields, inlineMap, err := c.collect(t, truncate, 0, nil)
	if err != nil {
		sp.err = err
		return sp
	}
	for i, f := range fields {
		f.fieldPlan.packKey()
		sp.fields = append(sp.fields, f.fieldPlan)
		sp.index[f.name] = i
	}
	sp.inlineMap = inlineMap
	return sp
}

func lessIndex(a, b []int) bool {
	for k := range a {
		if k >= len(b) {
			return false
		}
		if a[k] != b[k] {
			return a[k] < b[k]
		}
	}
	return len(a) < len(b)
}

type collected struct {
	fieldPlan
	idx []int // Go field index path, for ordering and dominance
}

// collect describes t's fields as the driver does, dominance resolved, in
// field order; offsets are relative to base within the current inline-pointer
// hop. It follows the driver's describeStructSlow step by step, which keeps
// it as long as that function, so that the two can be compared side by side.
func (c *compiler) collect(t reflect.Type, truncate bool, base uintptr, hops []step) ([]collected, *fieldPlan, error) {
	var fields []collected
	var inlineMap *fieldPlan
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" {
			continue // unexported, ignored by the driver's default struct codec
		}
		tags := bsontag.Parse(sf)
		if tags.Skip {
			continue
		}
		ftrunc := truncate || tags.Truncate
		if !tags.Inline {
			fields = append(fields, collected{
				fieldPlan: fieldPlan{name: tags.Name, offset: base + sf.Offset, hops: hops, plan: c.compile(sf.Type, ftrunc)},
				idx:       []int{i},
			})
			continue
		}
		ft := sf.Type
		var inner []collected
		var err error
		switch ft.Kind() {
		case reflect.Map:
			if inlineMap != nil {
				return nil, nil, fmt.Errorf("%w: (struct %s) multiple inline maps", ErrUnsupportedType, t)
			}
			if ft.Key() != tString {
				return nil, nil, fmt.Errorf("%w: (struct %s) inline map must have a string keys", ErrUnsupportedType, t)
			}
			// The driver decodes inline map values with the struct's context,
			// not the field's own flags.
			inlineMap = &fieldPlan{name: tags.Name, offset: base + sf.Offset, plan: c.compile(ft.Elem(), truncate), mapType: ft}
			continue
		case reflect.Pointer:
			if ft.Elem().Kind() != reflect.Struct {
				return nil, nil, fmt.Errorf("%w: (struct %s) inline fields must be a struct, a struct pointer, or a map", ErrUnsupportedType, t)
			}
			h := append(append([]step(nil), hops...), step{offset: base + sf.Offset, typ: ft.Elem()})
			inner, _, err = c.collect(ft.Elem(), ftrunc, 0, h)
		case reflect.Struct:
			inner, _, err = c.collect(ft, ftrunc, base+sf.Offset, hops)
		default:
			return nil, nil, fmt.Errorf("%w: (struct %s) inline fields must be a struct, a struct pointer, or a map", ErrUnsupportedType, t)
		}
		if err != nil {
			return nil, nil, err
		}
		// The driver inlines the inner struct's resolved fields; its own
		// inline map, if any, is not carried up.
		for _, f := range inner {
			f.idx = append([]int{i}, f.idx...)
			fields = append(fields, f)
		}
	}

	sort.SliceStable(fields, func(i, j int) bool {
		x, y := fields[i], fields[j]
		if x.name != y.name {
			return x.name < y.name
		}
		if len(x.idx) != len(y.idx) {
			return len(x.idx) < len(y.idx)
		}
		return lessIndex(x.idx, y.idx)
	})
	var out []collected
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		if j-i > 1 && len(fields[i].idx) == len(fields[i+1].idx) {
			return nil, nil, fmt.Errorf("%w: struct %s has duplicated key %s", ErrUnsupportedType, t, fields[i].name)
		}
		out = append(out, fields[i])
		i = j
	}
	sort.SliceStable(out, func(i, j int) bool { return lessIndex(out[i].idx, out[j].idx) })
	return out, inlineMap, nil
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
