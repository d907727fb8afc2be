package decode_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/databridge-go/databridge/decode"
)

// fuzzShapes are the struct shapes the fuzzer decodes into, chosen by the
// first input byte.
var fuzzShapes = []func(t *testing.T, doc []byte){
	fuzzOne[Small], fuzzOne[Medium], fuzzOne[Collections], fuzzOne[Nested],
	fuzzOne[Ints], fuzzOne[Floats], fuzzOne[Inlined], fuzzOne[Dynamic],
	fuzzOne[Tree], fuzzOne[DriverTypes], fuzzOne[Strs], fuzzOne[Named],
}

// FuzzDecode mutates valid documents and checks that decode never panics
// and, for every well-formed document, agrees with bson.Unmarshal on the
// value and on whether it is an error. Run it with
//
//	go test ./decode -run '^$' -fuzz FuzzDecode -fuzztime 10m
//
// Its seed corpus (the parity table's documents, and testdata/fuzz) runs in
// the normal test suite.
func FuzzDecode(f *testing.F) {
	for i, tt := range parityCases() {
		f.Add(byte(i%len(fuzzShapes)), tt.doc)
		f.Add(byte(1), tt.doc) // Medium sees every document too
	}
	f.Fuzz(func(t *testing.T, shape byte, doc []byte) {
		tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("HANG shape=%d doc=%x", shape, doc)) })
		defer tm.Stop()
		fuzzShapes[int(shape)%len(fuzzShapes)](t, doc)
	})
}

func fuzzOne[T any](t *testing.T, doc []byte) {
	var got T
	gerr := decode.Unmarshal(doc, &got)
	if gerr != nil {
		var de *decode.Error
		if !errors.As(gerr, &de) {
			t.Fatalf("error is %T, not *decode.Error: %v", gerr, gerr)
		}
	}
	// The driver is only a reliable oracle for well-formed BSON: on some
	// malformed input (a negative length in a skipped value) its reader
	// moves backwards, and it accepts some malformed values (an embedded
	// document without its terminator into bson.Raw, an unterminated
	// string inside code with scope) that decode refuses. There we only
	// require no panic, no hang and a *decode.Error. Well-formedness is
	// checked in full (decode.WellFormed, which the corpus test checks
	// against the BSON specification's decodeErrors), not only at the top
	// level as bsoncore's Validate does.
	if bsoncore.Document(doc).Validate() != nil || decode.WellFormed(doc) != nil {
		return
	}
	var want T
	werr := driverUnmarshal(doc, &want) // its panics ([N]any) are errors decode must match
	switch {
	case werr != nil && gerr == nil:
		t.Fatalf("driver failed (%v) but decode succeeded: %#v", werr, got)
	case werr == nil && gerr != nil:
		t.Fatalf("decode failed (%v) but driver succeeded: %#v", gerr, want)
	case werr == nil && !sameValue(want, got):
		t.Fatalf("values differ\ndriver: %#v\ndecode: %#v", want, got)
	}
	// Decoding again into the now-filled value must give the same result.
	if gerr == nil {
		if err := decode.Unmarshal(doc, &got); err != nil || !sameValue(want, got) {
			t.Fatalf("second decode into a used value differs (err %v)\ndriver: %#v\ndecode: %#v", err, want, got)
		}
		// With an Arena shared by two fresh values and a used one, as a
		// cursor decodes: the same value every time, earlier ones intact.
		plan := decode.MustCompile[T]()
		var arena decode.Arena
		var a, b T
		for _, dst := range []*T{&a, &b, &got, &a} {
			if err := plan.DecodeWith(doc, dst, &arena); err != nil || !sameValue(want, *dst) {
				t.Fatalf("decode with an Arena differs (err %v)\ndriver: %#v\ndecode: %#v", err, want, *dst)
			}
		}
		if !sameValue(want, b) {
			t.Fatalf("a value decoded with an Arena changed when later ones were decoded\ndriver: %#v\ndecode: %#v", want, b)
		}
	}
}

// sameValue is reflect.DeepEqual, except that NaNs compare equal.
func sameValue(a, b any) bool {
	return reflect.DeepEqual(a, b) || deepEqualNaN(reflect.ValueOf(a), reflect.ValueOf(b))
}

func deepEqualNaN(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return deepEqualNaN(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return false
		}
		fallthrough
	case reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !deepEqualNaN(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !deepEqualNaN(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !deepEqualNaN(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	if a.CanInterface() && b.CanInterface() {
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	// Unexported fields: compare through a copy made addressable.
	ac, bc := reflect.New(a.Type()).Elem(), reflect.New(b.Type()).Elem()
	ac.Set(reflect.NewAt(a.Type(), unsafePtr(a)).Elem())
	bc.Set(reflect.NewAt(b.Type(), unsafePtr(b)).Elem())
	return reflect.DeepEqual(ac.Interface(), bc.Interface())
}

func unsafePtr(v reflect.Value) unsafe.Pointer {
	if v.CanAddr() {
		return unsafe.Pointer(v.UnsafeAddr())
	}
	c := reflect.New(v.Type())
	return c.UnsafePointer()
}
