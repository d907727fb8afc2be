package decode

import (
	"reflect"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Containers: pointers, BSON arrays into slices and arrays, and documents
// into maps, each element decoded by value.

// storePointer decodes into the pointer's element, allocating it when nil;
// null and undefined store nil.
func (s *state) storePointer(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
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
}

// storeSlice decodes an array into a slice; null and undefined store nil.
func (s *state) storeSlice(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch t {
	case bson.TypeArray:
		return s.slice(tp, pos, p)
	case bson.TypeNull, bson.TypeUndefined:
		*(*sliceHeader)(p) = sliceHeader{}
		return pos, nil
	}
	return s.delegate(tp, t, pos, p)
}

// storeArray decodes an array into a Go array; null and undefined zero it.
func (s *state) storeArray(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch t {
	case bson.TypeArray:
		return s.array(tp, pos, p)
	case bson.TypeNull, bson.TypeUndefined:
		typedClear(tp.typ, p)
		return pos, nil
	}
	return s.delegate(tp, t, pos, p)
}

// storeMap decodes a document into a map; null and undefined store nil,
// and any other type is a mismatch.
func (s *state) storeMap(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch t {
	case bson.TypeEmbeddedDocument:
		return s.mapValue(tp, pos, p)
	case bson.TypeNull, bson.TypeUndefined:
		*(*unsafe.Pointer)(p) = nil
		return pos, nil
	}
	return 0, mismatch(t, tp.typ)
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
			carved := false
			if capacity == 0 {
				// A fresh slice: count the elements for an exact allocation,
				// or a region of an Arena's slab.
				want = s.countElements(pos, end)
				if s.shared != nil {
					if base, carved = s.shared.carve(tp, esize, want); carved {
						capacity = want
					}
				}
			}
			if !carved {
				base, capacity = grow(tp.typ, base, n, want)
			}
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
