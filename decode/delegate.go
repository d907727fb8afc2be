package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Values of types this package does not decode itself (interface{}, bson.D,
// bson.Decimal128, bson.Raw, types implementing bson.Unmarshaler or
// bson.ValueUnmarshaler, and conversions such as a string into an ObjectID)
// are handed to the driver. The value is wrapped in a one-field document
// {v: value} and unmarshaled into struct{ V T `bson:"v"` }, so the driver sees
// it exactly as it would inside the caller's struct, with the same decoder
// lookup and the same `truncate` flag.

func wrapperType(t reflect.Type, truncate bool) reflect.Type {
	tag := `bson:"v"`
	if truncate {
		tag = `bson:"v,truncate"`
	}
	return reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: reflect.StructTag(tag)}})
}

func (s *state) delegate(tp *typePlan, t bson.Type, pos int, p unsafe.Pointer) (int, error) {
	n, err := s.valueSize(t, pos)
	if err != nil {
		return 0, err
	}
	end := pos + n
	if end > len(s.data) {
		return 0, truncated(t, tp)
	}
	if err := validateValue(s.data, t, pos, end, s.depth); err != nil {
		return 0, err
	}
	size := 4 + 1 + 2 + n + 1
	buf := make([]byte, 0, size)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(size))
	buf = append(buf, byte(t), 'v', 0)
	buf = append(buf, s.data[pos:end]...)
	buf = append(buf, 0)

	dst := reflect.NewAt(tp.typ, p).Elem()
	w := reflect.New(tp.wrapper)
	w.Elem().Field(0).Set(dst) // the driver decodes into the existing value
	if err := tp.env.unmarshal(buf, w.Interface()); err != nil {
		err = unwrapDriver(err)
		if tp.op != opDelegate {
			// A kind decoded natively met a BSON type it does not take
			// natively, and the driver has no conversion either.
			err = fmt.Errorf("%w: %w", ErrTypeMismatch, err)
		}
		return 0, newErr(t, tp.typ, err)
	}
	dst.Set(w.Elem().Field(0))
	return end, nil
}

// unwrapDriver drops the driver's "error decoding key v" wrapper of a
// delegated value; the path is ours to report.
func unwrapDriver(err error) error {
	var de *bson.DecodeError
	if errors.As(err, &de) && len(de.Keys()) == 1 && de.Keys()[0] == "v" {
		if inner := errors.Unwrap(de); inner != nil {
			return inner
		}
	}
	return err
}

// ErrDriverPanic is wrapped by the error of a value whose decoding panicked
// inside the driver (for example an array of interfaces, [N]any, which the
// driver's array decoder cannot fill): the panic is an error here.
var ErrDriverPanic = errors.New("the driver panicked decoding this value")

// unmarshalSafely is bson.Unmarshal with the driver's panics turned into
// errors.
func unmarshalSafely(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDriverPanic, r)
		}
	}()
	return bson.Unmarshal(data, v)
}
