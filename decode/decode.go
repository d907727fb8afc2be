package decode

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Plan decodes BSON documents into values of type T. It is compiled once per
// type (and cached process-wide), safe for concurrent use, and holds no
// per-document state.
type Plan[T any] struct {
	plan     *typePlan
	zeroCopy bool
}

// Option configures a Plan.
type Option interface{ apply(*config) }

type config struct {
	zeroCopy bool
	env      env
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// ZeroCopy makes decoded strings point into the source document instead of
// copying it: decoding then allocates nothing for strings. The strings are
// valid only while the source bytes are alive and unmodified; keep neither the
// strings nor any value holding them past that point. Default: off (strings
// are copied and the result owns its memory). Binary values are always copied.
func ZeroCopy() Option { return optionFunc(func(c *config) { c.zeroCopy = true }) }

// Compile returns the decoding plan for T. The plan is built on first use of
// T and cached; later calls are cheap. It returns an error (wrapping
// ErrUnsupportedType) when the driver could not describe T either, for
// example a struct with two inline maps.
func Compile[T any](opts ...Option) (*Plan[T], error) {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	tp := planFor(reflect.TypeFor[T](), c.env)
	if tp.op == opStruct && tp.st.err != nil {
		return nil, &Error{GoType: tp.typ, Err: tp.st.err}
	}
	return &Plan[T]{plan: tp, zeroCopy: c.zeroCopy}, nil
}

// MustCompile is like Compile but panics on error; use it for package-level
// plans of types known to be valid.
func MustCompile[T any](opts ...Option) *Plan[T] {
	p, err := Compile[T](opts...)
	if err != nil {
		panic(err)
	}
	return p
}

// Unmarshal decodes doc into dst with T's cached plan: the drop-in
// replacement for bson.Unmarshal(doc, dst).
func Unmarshal[T any](doc []byte, dst *T, opts ...Option) error {
	p, err := Compile[T](opts...)
	if err != nil {
		return err
	}
	return p.Decode(doc, dst)
}

// Decode decodes one BSON document into dst.
//
// The result is what bson.Unmarshal(doc, dst) gives for a zero *dst: dst is
// reset first, so fields absent from doc end up zero even when dst held an
// earlier value (the driver would keep them). Decode reuses the backing
// arrays of slices already in dst, so decoding repeatedly into one value
// allocates only for strings, maps, pointers and growth; do not keep slices
// from an earlier value of dst across a Decode into it. Interface fields are
// reset to nil (a pointer stored there to pick a concrete type is dropped).
//
// On error dst holds partial data. Errors are *Error values that name the
// field path and wrap ErrMalformed, ErrTypeMismatch, ErrOverflow,
// ErrTruncation, ErrTooDeep or the driver's error for delegated types.
func (p *Plan[T]) Decode(doc []byte, dst *T) error {
	if dst == nil {
		return &Error{GoType: p.plan.typ, Err: errNoPlan}
	}
	if err := checkTop(doc); err != nil {
		return err
	}
	tp := p.plan
	ptr := unsafe.Pointer(dst)
	var zero T
	if tp.op == opDelegate {
		*dst = zero
		return delegateTop(tp, doc, ptr)
	}
	s := state{data: doc, zeroCopy: p.zeroCopy}
	s.save(tp, ptr)
	*dst = zero // a typed clear: cheaper than reflection
	return s.top(tp, ptr)
}

// Into decodes doc into dst, which must be a non-nil pointer: the
// reflection-typed counterpart of Unmarshal, with the same semantics as
// bson.Unmarshal(doc, dst) for a zero *dst. Prefer a Plan where the type is
// known statically.
func Into(doc []byte, dst any, opts ...Option) error {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &Error{GoType: reflect.TypeOf(dst), Err: errNoPlan}
	}
	tp := planFor(rv.Type().Elem(), c.env)
	if tp.op == opStruct && tp.st.err != nil {
		return &Error{GoType: tp.typ, Err: tp.st.err}
	}
	if err := checkTop(doc); err != nil {
		return err
	}
	ptr := rv.UnsafePointer()
	if tp.op == opDelegate {
		typedClear(tp.typ, ptr)
		return delegateTop(tp, doc, ptr)
	}
	s := state{data: doc, zeroCopy: c.zeroCopy}
	s.save(tp, ptr)
	typedClear(tp.typ, ptr)
	return s.top(tp, ptr)
}

func checkTop(doc []byte) error {
	if len(doc) < 5 {
		return finish(malformed("document of %d bytes is too short", len(doc)))
	}
	if l := int32(binary.LittleEndian.Uint32(doc)); int(l) != len(doc) {
		return finish(malformed("document length %d does not match its %d bytes", l, len(doc)))
	}
	return nil
}

func delegateTop(tp *typePlan, doc []byte, p unsafe.Pointer) error {
	if err := validateDocument(doc, 0, len(doc), 0); err != nil {
		return finish(err)
	}
	if err := tp.env.unmarshal(doc, reflect.NewAt(tp.typ, p).Interface()); err != nil {
		return finish(newErr(bson.TypeEmbeddedDocument, tp.typ, unwrapDriver(err)))
	}
	return nil
}

// savedPool holds the stacks of saved slice arrays, taken only by values
// that have slices to reuse.
var savedPool = sync.Pool{New: func() any { s := make([]saved, 0, 16); return &s }}

// top decodes the document into the (already reset) value at p.
func (s *state) top(tp *typePlan, p unsafe.Pointer) error {
	s.hint = int(tp.strBytes.Load())
	next, err := s.value(tp, bson.TypeEmbeddedDocument, 0, p)
	if s.used > s.hint || s.used < s.hint/2 { // rarely: the hint is shared
		tp.strBytes.Store(int32(min(s.used, arenaChunk)))
	}
	if s.pooled != nil {
		s.release(0)
		*s.pooled = s.saved[:0]
		savedPool.Put(s.pooled)
	}
	if err == nil && next != len(s.data) {
		err = malformed("trailing bytes after document")
	}
	return finish(err)
}

// state is the per-call decoding state.
type state struct {
	data     []byte
	zeroCopy bool
	arena    []byte // holds the copied strings of this call, in chunks
	hint     int    // expected string bytes of the whole call
	used     int    // string bytes copied so far
	depth    int
	saved    []saved
	pooled   *[]saved // where saved came from, returned when done
}

// saved is a slice backing array kept across a reset, for reuse by the field
// at the same address.
type saved struct {
	field unsafe.Pointer
	data  unsafe.Pointer
	cap   int
}

type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

// zeroBase is where empty, non-nil slices point (as the runtime's zerobase).
var zeroBase [1]byte

func typedClear(t reflect.Type, p unsafe.Pointer) {
	reflect.NewAt(t, p).Elem().SetZero()
}

// reset zeroes the value at p, remembering the backing arrays of its slice
// fields so that the same fields can reuse them.
func (s *state) reset(tp *typePlan, p unsafe.Pointer) int {
	mark := s.save(tp, p)
	clearValue(tp, p)
	return mark
}

// clearValue zeroes the value at p: pointer words with typed stores (so the
// garbage collector's write barrier sees them), the rest with memclr.
func clearValue(tp *typePlan, p unsafe.Pointer) {
	if !tp.clearOK {
		typedClear(tp.typ, p)
		return
	}
	for _, op := range tp.clear {
		q := unsafe.Add(p, op.off)
		if op.n == 0 {
			*(*unsafe.Pointer)(q) = nil
		} else {
			clear(unsafe.Slice((*byte)(q), op.n))
		}
	}
}

// save remembers the backing arrays of the slice fields of the value at p.
func (s *state) save(tp *typePlan, p unsafe.Pointer) int {
	mark := len(s.saved)
	for _, off := range tp.resets {
		f := unsafe.Add(p, off)
		h := (*sliceHeader)(f)
		if h.data == nil || h.cap == 0 || h.data == unsafe.Pointer(&zeroBase) {
			continue
		}
		if s.aliased(h.data) {
			continue
		}
		if s.pooled == nil {
			s.pooled = savedPool.Get().(*[]saved)
			s.saved = (*s.pooled)[:0]
		}
		s.saved = append(s.saved, saved{field: f, data: h.data, cap: h.cap})
	}
	return mark
}

// aliased reports whether a backing array overlaps one already saved, in
// which case reusing both would let one field overwrite another.
func (s *state) aliased(data unsafe.Pointer) bool {
	for _, sv := range s.saved {
		if sv.data == data {
			return true
		}
	}
	return false
}

func (s *state) release(mark int) {
	clear(s.saved[mark:])
	s.saved = s.saved[:mark]
}

func (s *state) takeSaved(field unsafe.Pointer) (unsafe.Pointer, int) {
	for i := len(s.saved) - 1; i >= 0; i-- {
		if s.saved[i].field == field {
			sv := s.saved[i]
			s.saved[i].data = nil
			s.saved[i].field = nil
			return sv.data, sv.cap
		}
	}
	return nil, 0
}

// value decodes the BSON value of type t at pos into p and returns the
// position after it, as the driver's value reader would leave it.
func (s *state) value(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch tp.op {
	case opString:
		switch t {
		case bson.TypeString:
			str, next, err := s.readString(pos)
			if err != nil {
				return 0, err
			}
			*(*string)(p) = str
			return next, nil
		case bson.TypeNull, bson.TypeUndefined:
			*(*string)(p) = ""
			return pos, nil
		}
		return s.delegate(tp, t, pos, p)
	case opInt64:
		return storeInt[int64](s, t, pos, tp, p, math.MinInt64, math.MaxInt64)
	case opInt32:
		return storeInt[int32](s, t, pos, tp, p, math.MinInt32, math.MaxInt32)
	case opInt16:
		return storeInt[int16](s, t, pos, tp, p, math.MinInt16, math.MaxInt16)
	case opInt8:
		return storeInt[int8](s, t, pos, tp, p, math.MinInt8, math.MaxInt8)
	case opUint64: // the driver reads through int64, so the top half overflows
		return storeInt[uint64](s, t, pos, tp, p, 0, math.MaxInt64)
	case opUint32:
		return storeInt[uint32](s, t, pos, tp, p, 0, math.MaxUint32)
	case opUint16:
		return storeInt[uint16](s, t, pos, tp, p, 0, math.MaxUint16)
	case opUint8:
		return storeInt[uint8](s, t, pos, tp, p, 0, math.MaxUint8)
	case opFloat64:
		f, next, err := s.readFloat(t, pos, tp)
		if err != nil {
			return 0, err
		}
		*(*float64)(p) = f
		return next, nil
	case opFloat32:
		f, next, err := s.readFloat(t, pos, tp)
		if err != nil {
			return 0, err
		}
		if !tp.truncate && float64(float32(f)) != f {
			return 0, newErr(t, tp.typ, ErrTruncation)
		}
		*(*float32)(p) = float32(f)
		return next, nil
	case opBool:
		return s.readBool(t, pos, tp, p)
	case opObjectID:
		switch t {
		case bson.TypeObjectID:
			if pos+12 > len(s.data) {
				return 0, truncated(t, tp)
			}
			copy((*bson.ObjectID)(p)[:], s.data[pos:pos+12])
			return pos + 12, nil
		case bson.TypeNull, bson.TypeUndefined:
			*(*bson.ObjectID)(p) = bson.ObjectID{}
			return pos, nil
		}
		return s.delegate(tp, t, pos, p)
	case opTime:
		switch t {
		case bson.TypeDateTime:
			if pos+8 > len(s.data) {
				return 0, truncated(t, tp)
			}
			dt := int64(binary.LittleEndian.Uint64(s.data[pos:]))
			*(*time.Time)(p) = time.Unix(dt/1000, dt%1000*1000000).UTC()
			return pos + 8, nil
		case bson.TypeNull, bson.TypeUndefined:
			*(*time.Time)(p) = time.Time{}
			return pos, nil
		}
		return s.delegate(tp, t, pos, p)
	case opDateTime:
		switch t {
		case bson.TypeDateTime:
			if pos+8 > len(s.data) {
				return 0, truncated(t, tp)
			}
			*(*int64)(p) = int64(binary.LittleEndian.Uint64(s.data[pos:]))
			return pos + 8, nil
		case bson.TypeNull, bson.TypeUndefined:
			*(*int64)(p) = 0
			return pos, nil
		}
		return 0, mismatch(t, tp.typ)
	case opBytes:
		switch t {
		case bson.TypeBinary:
			if pos+5 <= len(s.data) && s.data[pos+4] == 0 {
				n := int(int32(binary.LittleEndian.Uint32(s.data[pos:])))
				if n < 0 || pos+5+n > len(s.data) {
					return 0, truncated(t, tp)
				}
				b := make([]byte, n)
				copy(b, s.data[pos+5:])
				*(*[]byte)(p) = b
				return pos + 5 + n, nil
			}
		case bson.TypeNull, bson.TypeUndefined:
			*(*[]byte)(p) = nil
			return pos, nil
		}
		return s.delegate(tp, t, pos, p)
	case opStruct:
		return s.document(tp, t, pos, p)
	case opPtr:
		if t == bson.TypeNull || t == bson.TypeUndefined {
			*(*unsafe.Pointer)(p) = nil
			return pos, nil
		}
		ep := *(*unsafe.Pointer)(p)
		if ep == nil {
			ep = reflect.New(tp.elem.typ).UnsafePointer()
			*(*unsafe.Pointer)(p) = ep
		}
		return s.value(tp.elem, t, pos, ep)
	case opSlice:
		switch t {
		case bson.TypeArray:
			return s.slice(tp, pos, p)
		case bson.TypeNull, bson.TypeUndefined:
			*(*sliceHeader)(p) = sliceHeader{}
			return pos, nil
		}
		return s.delegate(tp, t, pos, p)
	case opArray:
		switch t {
		case bson.TypeArray:
			return s.array(tp, pos, p)
		case bson.TypeNull, bson.TypeUndefined:
			typedClear(tp.typ, p)
			return pos, nil
		}
		return s.delegate(tp, t, pos, p)
	case opMap:
		switch t {
		case bson.TypeEmbeddedDocument:
			return s.mapValue(tp, pos, p)
		case bson.TypeNull, bson.TypeUndefined:
			*(*unsafe.Pointer)(p) = nil
			return pos, nil
		}
		return 0, mismatch(t, tp.typ)
	default:
		return s.delegate(tp, t, pos, p)
	}
}

// storeInt reads an integer with the driver's conversions and stores it as
// an I after the driver's range check.
func storeInt[I int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](s *state, t bson.Type, pos int, tp *typePlan, p unsafe.Pointer, lo, hi int64) (int, error) {
	i, next, err := s.readInt(t, pos, tp)
	if err != nil {
		return 0, err
	}
	if i < lo || i > hi {
		return 0, overflow(t, tp, i)
	}
	*(*I)(p) = I(i)
	return next, nil
}

func overflow(t bson.Type, tp *typePlan, _ int64) error {
	return newErr(t, tp.typ, ErrOverflow)
}

func truncated(t bson.Type, tp *typePlan) error {
	pe := malformed("value runs past the end of the document")
	pe.bsonType, pe.goType = t, tp.typ
	return pe
}

// readScalar reads a value of the four types the driver converts between
// numbers and booleans: its raw bits (an int32 sign-extended, an int64, a
// double's bits, a boolean as 0 or 1) and the position after it. Null and
// undefined read as 0; any other type is a mismatch.
func (s *state) readScalar(t bson.Type, pos int, tp *typePlan) (uint64, int, error) {
	d := s.data
	var n int
	switch t {
	case bson.TypeInt32:
		n = 4
	case bson.TypeInt64, bson.TypeDouble:
		n = 8
	case bson.TypeBoolean:
		n = 1
	case bson.TypeNull, bson.TypeUndefined:
		return 0, pos, nil
	default:
		return 0, 0, mismatch(t, tp.typ)
	}
	if pos+n > len(d) {
		return 0, 0, truncated(t, tp)
	}
	switch t {
	case bson.TypeInt32:
		return uint64(int64(int32(binary.LittleEndian.Uint32(d[pos:])))), pos + 4, nil
	case bson.TypeBoolean:
		if d[pos] > 1 {
			return 0, 0, badBool(t, tp, d[pos])
		}
		return uint64(d[pos]), pos + 1, nil
	}
	return binary.LittleEndian.Uint64(d[pos:]), pos + 8, nil
}

// readInt reads an integer the way the driver's int and uint decoders do.
func (s *state) readInt(t bson.Type, pos int, tp *typePlan) (int64, int, error) {
	bits, next, err := s.readScalar(t, pos, tp)
	if err != nil || t != bson.TypeDouble {
		return int64(bits), next, err
	}
	f := math.Float64frombits(bits)
	if !tp.truncate && math.Floor(f) != f {
		return 0, 0, newErr(t, tp.typ, ErrTruncation)
	}
	if f > float64(math.MaxInt64) {
		return 0, 0, newErr(t, tp.typ, ErrOverflow)
	}
	return int64(f), next, nil
}

func badBool(t bson.Type, tp *typePlan, b byte) error {
	pe := malformed("invalid byte for boolean: %#x", b)
	pe.bsonType, pe.goType = t, tp.typ
	return pe
}

// readFloat reads a float the way the driver's float decoder does.
func (s *state) readFloat(t bson.Type, pos int, tp *typePlan) (float64, int, error) {
	bits, next, err := s.readScalar(t, pos, tp)
	if t == bson.TypeDouble {
		return math.Float64frombits(bits), next, err
	}
	return float64(int64(bits)), next, err
}

// readBool reads a boolean the way the driver's bool decoder does: numbers
// are true when not zero.
func (s *state) readBool(t bson.Type, pos int, tp *typePlan, p unsafe.Pointer) (int, error) {
	bits, next, err := s.readScalar(t, pos, tp)
	if err != nil {
		return 0, err
	}
	if t == bson.TypeDouble {
		*(*bool)(p) = math.Float64frombits(bits) != 0 // -0.0 is false
	} else {
		*(*bool)(p) = bits != 0
	}
	return next, nil
}

// readString reads a BSON string (int32 length including the NUL, bytes, NUL).
func (s *state) readString(pos int) (string, int, error) {
	d := s.data
	if pos+4 > len(d) {
		return "", 0, malformed("string length runs past the end of the document")
	}
	n := int(int32(binary.LittleEndian.Uint32(d[pos:])))
	if n <= 0 {
		return "", 0, malformed("invalid string length %d", n)
	}
	start := pos + 4
	end := start + n
	if end > len(d) || end < start {
		return "", 0, malformed("string of %d bytes runs past the end of the document", n)
	}
	if d[end-1] != 0 {
		return "", 0, malformed("string does not end with a NUL byte")
	}
	b := d[start : end-1]
	if len(b) == 0 {
		return "", end, nil
	}
	if s.zeroCopy {
		return unsafe.String(&b[0], len(b)), end, nil
	}
	return s.copyString(b), end, nil
}

// arenaChunk bounds the chunks strings are copied into: a string the caller
// keeps holds at most this much memory of other strings alive (or itself,
// if longer).
const arenaChunk = 2048

// copyString copies b into the call's string arena, one allocation for many
// strings: a document's strings cost one allocation, not one each. Chunks
// are never written once a string points into them.
func (s *state) copyString(b []byte) string {
	s.used += len(b)
	if cap(s.arena)-len(s.arena) < len(b) {
		if len(b) >= arenaChunk/2 { // a long string: an allocation of its own
			return string(b)
		}
		// The first chunk is sized for the previous document's strings,
		// later ones for the rest of them.
		s.arena = make([]byte, 0, min(arenaChunk, max(s.hint-s.used+len(b), len(b), 32)))
	}
	start := len(s.arena)
	s.arena = append(s.arena, b...)
	return unsafe.String(&s.arena[start], len(b))
}

// open starts a document or array at pos: it checks its length, returns
// its end, and counts one more level of nesting (the caller decrements
// s.depth when done).
func (s *state) open(pos int) (int, error) {
	d := s.data
	if pos+4 > len(d) {
		return 0, malformed("document length runs past the end of the input")
	}
	n := int(int32(binary.LittleEndian.Uint32(d[pos:])))
	if n < 5 || pos+n > len(d) {
		return 0, malformed("invalid document length %d", n)
	}
	s.depth++
	if s.depth > MaxDepth {
		return 0, &pathError{err: ErrTooDeep}
	}
	return pos + n, nil
}

// elemType reads the type byte of the next element of the document or
// array ending at end; at the terminator it returns type 0 and end.
func (s *state) elemType(pos, end int) (bson.Type, int, error) {
	if pos >= end {
		return 0, 0, malformed("document is missing its terminator")
	}
	t := bson.Type(s.data[pos])
	pos++
	if t == 0 && pos != end {
		return 0, 0, malformed("document terminator before its declared end")
	}
	return t, pos, nil
}

// key reads the NUL-terminated key at pos and returns the value's position.
func (s *state) key(pos, end int) ([]byte, int, error) {
	d := s.data
	// Keys are short: a plain loop beats bytes.IndexByte's call and setup.
	for i := pos; i < end; i++ {
		if d[i] == 0 {
			return d[pos:i], i + 1, nil
		}
	}
	return nil, 0, malformed("element key is not terminated")
}

// element reads the type and key of the next element of the document or
// array ending at end; it returns a zero type at the terminator.
func (s *state) element(pos, end int) (bson.Type, []byte, int, error) {
	t, pos, err := s.elemType(pos, end)
	if err != nil || t == 0 {
		return t, nil, pos, err
	}
	k, pos, err := s.key(pos, end)
	if err != nil {
		return 0, nil, 0, err
	}
	return t, k, pos, nil
}

// unsafeString views b as a string for a comparison or a map lookup.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// document decodes an embedded document into a struct, as the driver's
// struct codec does (into the existing value: callers reset first).
func (s *state) document(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch t {
	case bson.TypeEmbeddedDocument:
	case bson.TypeNull, bson.TypeUndefined:
		typedClear(tp.typ, p)
		return pos, nil
	default:
		return 0, mismatch(t, tp.typ)
	}
	sp := tp.st
	if sp.err != nil {
		return 0, newErr(t, tp.typ, sp.err)
	}
	end, err := s.open(pos)
	if err != nil {
		return 0, err
	}
	pos += 4
	next := 0 // documents usually list fields in struct order: try that first
	d := s.data
	for {
		var et bson.Type
		var err error
		if et, pos, err = s.elemType(pos, end); err != nil {
			return 0, err
		}
		if et == 0 {
			s.depth--
			return pos, nil
		}
		var f *fieldPlan
		var key []byte
		var vpos int
		// Fast path: the key is the next field's name, compared in place
		// without scanning for its terminator first.
		if next < len(sp.fields) {
			nm := sp.fields[next].name
			if kend := pos + len(nm); kend < end && d[kend] == 0 && unsafeString(d[pos:kend]) == nm {
				f = &sp.fields[next]
				next++
				vpos = kend + 1
			}
		}
		if f == nil {
			if key, vpos, err = s.key(pos, end); err != nil {
				return 0, err
			}
			if i, ok := sp.index[unsafeString(key)]; ok {
				f = &sp.fields[i]
				next = i + 1
			} else if i, ok := lowerLookup(sp, key); ok {
				f = &sp.fields[i]
				next = i + 1
			}
		}
		if f == nil {
			if sp.inlineMap != nil {
				pos, err = s.inlineMapValue(sp.inlineMap, p, et, key, vpos)
			} else {
				pos, err = s.skip(et, vpos)
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		fp := p
		for _, h := range f.hops {
			hp := (*unsafe.Pointer)(unsafe.Add(fp, h.offset))
			if *hp == nil {
				*hp = reflect.New(h.typ).UnsafePointer()
			}
			fp = *hp
		}
		pos, err = s.value(f.plan, et, vpos, unsafe.Add(fp, f.offset))
		if err != nil {
			return 0, withKey(err, f.name)
		}
	}
}

// lowerLookup is the driver's second lookup, by strings.ToLower(key); it
// only allocates for keys that have upper-case or non-ASCII bytes.
func lowerLookup(sp *structPlan, key []byte) (int, bool) {
	needs := false
	for _, c := range key {
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			needs = true
			break
		}
	}
	if !needs {
		return 0, false
	}
	i, ok := sp.index[strings.ToLower(string(key))]
	return i, ok
}

func (s *state) inlineMapValue(f *fieldPlan, p unsafe.Pointer, et bson.Type, key []byte, pos int) (int, error) {
	m := reflect.NewAt(f.mapType, unsafe.Add(p, f.offset)).Elem()
	if m.IsNil() {
		m.Set(reflect.MakeMap(f.mapType))
	}
	ev := reflect.New(f.plan.typ)
	next, err := s.value(f.plan, et, pos, ev.UnsafePointer())
	if err != nil {
		return 0, withKey(err, string(key))
	}
	m.SetMapIndex(reflect.ValueOf(string(key)), ev.Elem())
	return next, nil
}

// slice decodes a BSON array into a slice, reusing the slice's (or the saved)
// backing array.
func (s *state) slice(tp *typePlan, pos int, p unsafe.Pointer) (int, error) {
	end, err := s.open(pos)
	if err != nil {
		return 0, err
	}
	h := (*sliceHeader)(p)
	base, capacity := h.data, h.cap
	if base == nil {
		base, capacity = s.takeSaved(p)
	}
	et := tp.elem
	esize := et.typ.Size()
	n := 0
	pos += 4
	for {
		vt, _, vpos, err := s.element(pos, end)
		if err != nil {
			return 0, err
		}
		if vt == 0 {
			pos = vpos
			break
		}
		if n == capacity {
			want := max(2*capacity, 4)
			if capacity == 0 {
				// A fresh slice: count the elements for an exact allocation.
				want = s.countElements(pos, end)
			}
			base, capacity = grow(tp.typ, base, n, want)
		}
		ep := unsafe.Add(base, uintptr(n)*esize)
		mark := s.reset(et, ep)
		pos, err = s.value(et, vt, vpos, ep)
		s.release(mark)
		if err != nil {
			return 0, withIndex(err, n)
		}
		n++
	}
	if base == nil {
		base = unsafe.Pointer(&zeroBase)
	}
	*h = sliceHeader{data: base, len: n, cap: capacity}
	s.depth--
	return pos, nil
}

// countElements counts the elements of the array whose first element is at
// pos, stopping quietly at anything malformed (decoding reports it).
func (s *state) countElements(pos, end int) int {
	d := s.data
	n := 0
	for pos < end && d[pos] != 0 {
		t := bson.Type(d[pos])
		pos++
		for pos < end && d[pos] != 0 {
			pos++
		}
		size, err := s.valueSize(t, pos+1)
		if err != nil || pos+1+size > end {
			break
		}
		pos += 1 + size
		n++
	}
	return n
}

// grow returns a backing array of at least want elements holding the first n elements of base.
func grow(t reflect.Type, base unsafe.Pointer, n, want int) (unsafe.Pointer, int) {
	newCap := max(want, n+1)
	ns := reflect.MakeSlice(t, newCap, newCap)
	if n > 0 {
		old := sliceHeader{data: base, len: n, cap: n}
		reflect.Copy(ns, reflect.NewAt(t, unsafe.Pointer(&old)).Elem())
	}
	return ns.UnsafePointer(), newCap
}

func (s *state) array(tp *typePlan, pos int, p unsafe.Pointer) (int, error) {
	end, err := s.open(pos)
	if err != nil {
		return 0, err
	}
	et := tp.elem
	esize := et.typ.Size()
	n := 0
	pos += 4
	for {
		vt, _, vpos, err := s.element(pos, end)
		if err != nil {
			return 0, err
		}
		if vt == 0 {
			pos = vpos
			break
		}
		if n >= tp.arrayLen {
			return 0, newErr(bson.TypeArray, tp.typ, ErrOverflow)
		}
		ep := unsafe.Add(p, uintptr(n)*esize)
		mark := s.reset(et, ep)
		pos, err = s.value(et, vt, vpos, ep)
		s.release(mark)
		if err != nil {
			return 0, withIndex(err, n)
		}
		n++
	}
	s.depth--
	return pos, nil
}

func (s *state) mapValue(tp *typePlan, pos int, p unsafe.Pointer) (int, error) {
	end, err := s.open(pos)
	if err != nil {
		return 0, err
	}
	m := reflect.NewAt(tp.typ, p).Elem()
	if m.IsNil() {
		m.Set(reflect.MakeMap(tp.typ))
	}
	kt := tp.typ.Key()
	ev := reflect.New(tp.elem.typ)
	ep := ev.UnsafePointer()
	pos += 4
	for {
		vt, key, vpos, err := s.element(pos, end)
		if err != nil {
			return 0, err
		}
		if vt == 0 {
			pos = vpos
			break
		}
		typedClear(tp.elem.typ, ep) // no reuse: the map keeps what it is given
		pos, err = s.value(tp.elem, vt, vpos, ep)
		if err != nil {
			return 0, withKey(err, string(key))
		}
		kv := reflect.ValueOf(string(key))
		if kt != tString {
			kv = kv.Convert(kt)
		}
		m.SetMapIndex(kv, ev.Elem())
	}
	s.depth--
	return pos, nil
}

// valueSize is the driver's peekNextValueSize: how many bytes a value of
// type t at pos occupies, for skipping it or handing it to the driver.
func (s *state) valueSize(t bson.Type, pos int) (int, error) {
	d := s.data
	length := func(extra int) (int, error) {
		if pos+4 > len(d) {
			return 0, malformed("value length runs past the end of the document")
		}
		n := int(int32(binary.LittleEndian.Uint32(d[pos:])))
		if n < 0 {
			return 0, malformed("negative value length %d", n)
		}
		return n + extra, nil
	}
	switch t {
	case bson.TypeArray, bson.TypeEmbeddedDocument, bson.TypeCodeWithScope:
		return length(0)
	case bson.TypeBinary:
		return length(5)
	case bson.TypeDBPointer:
		return length(4 + 12)
	case bson.TypeString, bson.TypeJavaScript, bson.TypeSymbol:
		return length(4)
	case bson.TypeBoolean:
		return 1, nil
	case bson.TypeDateTime, bson.TypeDouble, bson.TypeInt64, bson.TypeTimestamp:
		return 8, nil
	case bson.TypeDecimal128:
		return 16, nil
	case bson.TypeInt32:
		return 4, nil
	case bson.TypeMaxKey, bson.TypeMinKey, bson.TypeNull, bson.TypeUndefined:
		return 0, nil
	case bson.TypeObjectID:
		return 12, nil
	case bson.TypeRegex:
		if pos >= len(d) {
			return 0, malformed("regex runs past the end of the document")
		}
		i := bytes.IndexByte(d[pos:], 0)
		if i < 0 {
			return 0, malformed("regex pattern is not terminated")
		}
		j := bytes.IndexByte(d[pos+i+1:], 0)
		if j < 0 {
			return 0, malformed("regex options are not terminated")
		}
		return i + j + 2, nil
	}
	return 0, malformed("unknown BSON type %#x", byte(t))
}

func (s *state) skip(t bson.Type, pos int) (int, error) {
	n, err := s.valueSize(t, pos)
	if err != nil {
		return 0, err
	}
	if pos+n > len(s.data) {
		return 0, malformed("value of %d bytes runs past the end of the document", n)
	}
	return pos + n, nil
}
