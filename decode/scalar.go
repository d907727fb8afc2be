package decode

import (
	"encoding/binary"
	"math"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Scalars: one BSON value into one Go value of a native kind.

// value decodes the BSON value of type t at pos into p and returns the
// position after it, as the driver's value reader would leave it.
//
// It runs once per decoded value: one switch over every native kind, each
// case a call to that kind's decoder (numbers, then strings and bytes, then
// BSON's own types below; containers in container.go), the uncommon
// conversions delegated. With the case bodies out of line, a decode takes
// slightly fewer instructions than with them here: 154k against 156k per
// 100 small documents, 1,242k against 1,259k medium (callgrind, the command
// in docs/performance.md with GOGC=off, 2026-12-06).
func (s *state) value(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	switch tp.op {
	case opString:
		return s.storeString(tp, t, pos, p)
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
		return s.storeFloat64(tp, t, pos, p)
	case opFloat32:
		return s.storeFloat32(tp, t, pos, p)
	case opBool:
		return s.readBool(t, pos, tp, p)
	case opObjectID:
		return s.storeObjectID(tp, t, pos, p)
	case opTime:
		return s.storeTime(tp, t, pos, p)
	case opDateTime:
		return s.storeDateTime(tp, t, pos, p)
	case opBytes:
		return s.storeBytes(tp, t, pos, p)
	case opStruct:
		return s.document(tp, t, pos, p)
	case opPtr:
		return s.storePointer(tp, t, pos, p)
	case opSlice:
		return s.storeSlice(tp, t, pos, p)
	case opArray:
		return s.storeArray(tp, t, pos, p)
	case opMap:
		return s.storeMap(tp, t, pos, p)
	default:
		return s.delegate(tp, t, pos, p)
	}
}

// Numbers and booleans.

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

// storeFloat64 stores a float64 read the way the driver's float decoder does.
func (s *state) storeFloat64(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	f, next, err := s.readFloat(t, pos, tp)
	if err != nil {
		return 0, err
	}
	*(*float64)(p) = f
	return next, nil
}

// storeFloat32 is storeFloat64 for a float32, which must hold the value
// exactly unless the field truncates.
func (s *state) storeFloat32(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	f, next, err := s.readFloat(t, pos, tp)
	if err != nil {
		return 0, err
	}
	if !tp.truncate && float64(float32(f)) != f {
		return 0, newErr(t, tp.typ, ErrTruncation)
	}
	*(*float32)(p) = float32(f)
	return next, nil
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

// Strings and bytes.

// storeString stores a string; null and undefined store "".
func (s *state) storeString(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
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
	if len(b) == 0 {
		return ""
	}
	s.used += len(b)
	if s.arenaCap-s.arenaLen < len(b) {
		if len(b) >= arenaChunk/2 { // a long string: an allocation of its own
			return string(b)
		}
		// The first chunk is sized for the previous document's strings,
		// later ones for the rest of them; an Arena's, for many documents.
		size := arenaChunk
		if s.shared == nil {
			size = min(arenaChunk, max(s.hint-s.used+len(b), len(b), 32))
		}
		s.arenaBase = unsafe.Pointer(unsafe.SliceData(make([]byte, size)))
		s.arenaLen, s.arenaCap = 0, size
	}
	p := (*byte)(unsafe.Add(s.arenaBase, s.arenaLen))
	copy(unsafe.Slice(p, len(b)), b)
	s.arenaLen += len(b)
	return unsafe.String(p, len(b))
}

// storeBytes copies a binary of the generic subtype into a new []byte;
// null and undefined store nil.
func (s *state) storeBytes(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
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
}

// BSON's own types.

// storeObjectID stores an ObjectID; null and undefined store the zero one.
func (s *state) storeObjectID(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
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
}

// storeTime stores a datetime as a UTC time.Time; null and undefined store
// the zero time.
func (s *state) storeTime(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
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
}

// storeDateTime stores a datetime as a bson.DateTime; null and undefined
// store 0, and any other type is a mismatch.
func (s *state) storeDateTime(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
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
}
