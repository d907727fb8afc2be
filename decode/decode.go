package decode

import (
	"encoding/binary"
	"reflect"
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
func (p *Plan[T]) Decode(doc []byte, dst *T) error { return p.decode(doc, dst, nil) }

func (p *Plan[T]) decode(doc []byte, dst *T, a *Arena) error {
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
	if a != nil {
		s.arenaBase, s.arenaLen, s.arenaCap, s.shared = a.base, a.len, a.cap, a
	}
	s.save(tp, ptr)
	*dst = zero // a typed clear: cheaper than reflection
	err := s.top(tp, ptr)
	if a != nil {
		a.base, a.len, a.cap = s.arenaBase, s.arenaLen, s.arenaCap
	}
	return err
}

// An Arena carries, from one Decode to the next, the chunks that decoded
// strings are copied into and the backing arrays that fresh short slices
// are cut from, so that many documents share an allocation instead of
// costing one or more each: a cursor decoding a batch passes the same Arena
// for each document.
//
// Values decoded with one Arena share no mutable memory: strings are never
// written once decoded, each slice gets a region of its own whose capacity
// ends where it does (an append copies), and a reused destination reuses
// only its own regions. A string or slice you keep keeps its chunk alive:
// at most 2 KiB of other values, as with Decode. The zero Arena is ready to
// use; it must not be used by two goroutines at once.
type Arena struct {
	base     unsafe.Pointer // the current string chunk, len bytes used of cap
	len, cap int
	slabs    []slab // the current backing array per slice type
}

// slab is an Arena's current backing array for fresh slices of one type.
type slab struct {
	plan      *typePlan // the slice type's plan (a pointer compares cheaper than a reflect.Type)
	base      unsafe.Pointer
	used, cap int // in elements
}

// The bounds of an Arena's slices: a slab is slabBytes (or one element),
// slices of more than half of it get their own array, and an Arena keeps
// slabs for at most maxSlabs slice types.
const (
	slabBytes = 2048
	maxSlabs  = 8
)

// carve returns a zeroed region of want elements of esize bytes for a fresh
// slice of tp's type, cut from a's slab for it; ok is false when the slice
// should have an array of its own.
func (a *Arena) carve(tp *typePlan, esize uintptr, want int) (p unsafe.Pointer, ok bool) {
	if want <= 0 || esize == 0 || uintptr(want)*esize > slabBytes/2 {
		return nil, false
	}
	var sl *slab
	for i := range a.slabs {
		if a.slabs[i].plan == tp {
			sl = &a.slabs[i]
			break
		}
	}
	if sl == nil {
		if len(a.slabs) == maxSlabs {
			return nil, false
		}
		a.slabs = append(a.slabs, slab{plan: tp})
		sl = &a.slabs[len(a.slabs)-1]
	}
	if sl.cap-sl.used < want {
		n := int(slabBytes / esize)
		sl.base, sl.used, sl.cap = reflect.MakeSlice(tp.typ, n, n).UnsafePointer(), 0, n
	}
	p = unsafe.Add(sl.base, uintptr(sl.used)*esize)
	sl.used += want
	return p, true
}

// DecodeWith is Decode with the string chunks and slice backing arrays
// taken from, and left for the next call in, a (see Arena); a nil a is
// Decode. The result is the same as Decode's.
func (p *Plan[T]) DecodeWith(doc []byte, dst *T, a *Arena) error { return p.decode(doc, dst, a) }

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
