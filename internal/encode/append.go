package encode

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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
// one switch over every native kind, run once per encoded value; the longer
// kinds are appended by the functions after it (numbers, strings and
// binaries, arrays), small enough that most inline here.
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
		return appendInt64(dst, key, int64(*(*int)(fp)), true), nil
	case eInt64:
		return appendInt64(dst, key, *(*int64)(fp), minSize), nil
	case eUint8:
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(*(*uint8)(fp))), nil
	case eUint16:
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(*(*uint16)(fp))), nil
	case eUint32:
		return appendUint64(dst, key, uint64(*(*uint32)(fp)), minSize)
	case eUint64:
		return appendUint64(dst, key, *(*uint64)(fp), minSize)
	case eFloat32:
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeDouble, key), math.Float64bits(float64(*(*float32)(fp)))), nil
	case eFloat64:
		return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeDouble, key), math.Float64bits(*(*float64)(fp))), nil
	case eString:
		return appendString(dst, key, *(*string)(fp)), nil
	case eBytes:
		return appendBinary(dst, key, *(*[]byte)(fp)), nil
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
		return appendArray(dst, key, el, minSize, (*sliceHeader)(fp))
	}
	return dst, fmt.Errorf("encode: unsupported op %d", op)
}

// appendInt64 appends i as an int32 when small allows it and i fits (the
// driver's choice for int, and for int64 with minsize), else as an int64.
func appendInt64(dst []byte, key string, i int64, small bool) []byte {
	if small && i >= math.MinInt32 && i <= math.MaxInt32 {
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(i))
	}
	return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeInt64, key), uint64(i))
}

// appendUint64 appends u as the driver does an unsigned integer: an int32
// with minsize when it fits, else an int64, and an error past MaxInt64.
func appendUint64(dst []byte, key string, u uint64, minSize bool) ([]byte, error) {
	if minSize && u <= math.MaxInt32 {
		return appendInt32(elem(dst, bson.TypeInt32, key), int32(u)), nil
	}
	if u > math.MaxInt64 {
		return dst, fmt.Errorf("%d overflows int64", u)
	}
	return binary.LittleEndian.AppendUint64(elem(dst, bson.TypeInt64, key), u), nil
}

// appendString appends s as a string: its length with the NUL, its bytes,
// the NUL.
func appendString(dst []byte, key string, s string) []byte {
	dst = appendInt32(elem(dst, bson.TypeString, key), int32(len(s)+1))
	dst = append(dst, s...)
	return append(dst, 0)
}

// appendBinary appends b as a binary of the generic subtype, or null when
// b is nil.
func appendBinary(dst []byte, key string, b []byte) []byte {
	if b == nil {
		return elem(dst, bson.TypeNull, key)
	}
	dst = appendInt32(elem(dst, bson.TypeBinary, key), int32(len(b)))
	dst = append(dst, 0)
	return append(dst, b...)
}

// appendArray appends the slice h of el values as an array, or null when
// it is nil.
func appendArray(dst []byte, key string, el *node, minSize bool, h *sliceHeader) ([]byte, error) {
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
