package encode_test

import (
	"bytes"
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/encode"
)

// FuzzEncode decodes fuzzed documents into several struct shapes with the
// driver and checks that encode produces the bytes bson.Marshal produces for
// the resulting values. Run it with
//
//	go test ./internal/encode -run '^$' -fuzz FuzzEncode -fuzztime 10m
func FuzzEncode(f *testing.F) {
	seeds := []any{benchdata.NewSmall(1), benchdata.NewMedium(2), Ints{I: 1, U64: 5}, Omit{S: "s"}, Inner{A: "a", B: []int{1, 2}}}
	for i, s := range seeds {
		b, _ := bson.Marshal(s)
		f.Add(byte(i), b)
	}
	shapes := []func(*testing.T, []byte){fuzzOne[benchdata.Small], fuzzOne[benchdata.Medium], fuzzOne[Ints], fuzzOne[Omit], fuzzOne[Inner]}
	f.Fuzz(func(t *testing.T, shape byte, doc []byte) {
		shapes[int(shape)%len(shapes)](t, doc)
	})
}

func fuzzOne[T any](t *testing.T, doc []byte) {
	// The values come from package decode, which agrees with the driver on
	// well-formed input and refuses the malformed input that can hang the
	// driver's own reader (a hidden negative length, as in the corpus entry
	// 3540a44a05ee0ce2, which hung bson.Unmarshal here).
	var v T
	if decode.Unmarshal(doc, &v) != nil {
		return
	}
	want, werr := bson.Marshal(&v)
	got, gerr := encode.For(reflect.TypeFor[T]()).Append(nil, unsafePtr(&v), false)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("error mismatch: driver %v, encode %v", werr, gerr)
	}
	if werr == nil && !bytes.Equal(want, got) {
		t.Fatalf("bytes differ for %#v\ndriver: %s\nencode: %s", v, bson.Raw(want), bson.Raw(got))
	}
	// With a registry that has a codec of its own for a type these shapes
	// do not reach, the plan is still what that client stores.
	if werr == nil {
		reg := untouchedRegistry()
		if !encode.Native(reflect.TypeFor[T](), reg, nil) {
			return // the shape reaches an interface: odm hands it to the driver
		}
		var buf bytes.Buffer
		enc := bson.NewEncoder(bson.NewDocumentWriter(&buf))
		enc.SetRegistry(reg)
		if err := enc.Encode(&v); err != nil {
			t.Fatalf("driver with a registry: %v", err)
		}
		if !bytes.Equal(buf.Bytes(), got) {
			t.Fatalf("bytes differ from the driver with a registry\ndriver: %s\nencode: %s", bson.Raw(buf.Bytes()), bson.Raw(got))
		}
	}
}

type unreached string

// untouchedRegistry has an encoder for a type no fuzz shape holds.
func untouchedRegistry() *bson.Registry {
	reg := bson.NewRegistry()
	reg.RegisterTypeEncoder(reflect.TypeFor[unreached](), bson.ValueEncoderFunc(func(_ bson.EncodeContext, vw bson.ValueWriter, v reflect.Value) error {
		return vw.WriteString("x" + v.String())
	}))
	return reg
}
