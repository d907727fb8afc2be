package decode

import (
	"reflect"
	"sync"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The decoding state machine: one state per Decode call, resetting and
// reusing the destination.

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
	// The chunk the strings of this call are copied into: its base, and
	// the bytes used and available. Not a []byte: appending to a slice
	// field writes its pointer each time, and a pointer write costs a
	// write barrier while the garbage collector marks (about 8% of
	// decoding's instructions into fresh values); base changes only with
	// the chunk.
	arenaBase unsafe.Pointer
	arenaLen  int
	arenaCap  int
	shared    *Arena // where the chunk came from, for many documents; or nil
	hint      int    // expected string bytes of the whole call
	used      int    // string bytes copied so far
	depth     int
	saved     []saved
	pooled    *[]saved // where saved came from, returned when done
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
