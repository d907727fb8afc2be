package decode_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/decode"
)

// element appends one BSON element.
func element(b []byte, t bson.Type, key string, value []byte) []byte {
	b = append(b, byte(t))
	b = append(b, key...)
	b = append(b, 0)
	return append(b, value...)
}

// document wraps elements in a document.
func document(elems []byte) []byte {
	d := binary.LittleEndian.AppendUint32(nil, uint32(4+len(elems)+1))
	return append(append(d, elems...), 0)
}

// oldBinary is a subtype-2 binary whose inner length (declared) may
// differ from the bytes that follow it (data).
func oldBinary(declared int32, data []byte) []byte {
	v := binary.LittleEndian.AppendUint32(nil, uint32(4+len(data)))
	v = append(v, 2)
	v = binary.LittleEndian.AppendUint32(v, uint32(declared))
	return append(v, data...)
}

type (
	NamedBytes []byte
	HItem      struct {
		S string `bson:"s"`
	}
)

// hazardTargets decode field "b" as each type the driver reached a hazard
// through.
var hazardTargets = map[string]func([]byte) error{
	"[]byte":      func(d []byte) error { var v struct{ B []byte }; return decode.Unmarshal(d, &v) },
	"string":      func(d []byte) error { var v struct{ B string }; return decode.Unmarshal(d, &v) },
	"bson.Binary": func(d []byte) error { var v struct{ B bson.Binary }; return decode.Unmarshal(d, &v) },
	"any":         func(d []byte) error { var v struct{ B any }; return decode.Unmarshal(d, &v) },
	"NamedBytes":  func(d []byte) error { var v struct{ B NamedBytes }; return decode.Unmarshal(d, &v) },
	"[16]byte":    func(d []byte) error { var v struct{ B [16]byte }; return decode.Unmarshal(d, &v) },
	"map[string]any": func(d []byte) error {
		var v map[string]any
		return decode.Unmarshal(d, &v)
	},
	"bson.D": func(d []byte) error { var v bson.D; return decode.Unmarshal(d, &v) },
}

// noHang runs f with a deadline: a hang fails the test instead of the
// whole run.
func noHang(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("decoding hangs")
		return nil
	}
}

// TestOldBinaryHazards: a subtype-2 binary whose inner length is shorter
// than its bytes made the driver parse the rest as elements of the
// enclosing document (decoding a hidden Z=7), and a negative length hidden
// there could hang it. Such a binary is malformed (the BSON corpus's
// decodeErrors list "subtype 0x02 length too short"): decode reports
// ErrMalformed before the driver sees it, through every type.
func TestOldBinaryHazards(t *testing.T) {
	hiddenInt := element(nil, bson.TypeInt32, "z", []byte{7, 0, 0, 0})
	hiddenNeg := element(nil, bson.TypeString, "q", []byte{0xfb, 0xff, 0xff, 0xff})
	docs := map[string][]byte{
		"inner length too short, hidden element":         document(element(nil, bson.TypeBinary, "b", oldBinary(2, append([]byte{1, 2}, hiddenInt...)))),
		"inner length too short, hidden negative length": document(element(nil, bson.TypeBinary, "b", oldBinary(2, append([]byte{1, 2}, hiddenNeg...)))),
		"inner length too long":                          document(element(nil, bson.TypeBinary, "b", oldBinary(100, []byte{1, 2}))),
		"inner length negative":                          document(element(nil, bson.TypeBinary, "b", oldBinary(-1, []byte{1, 2}))),
		"nested in a delegated map":                      document(element(nil, bson.TypeEmbeddedDocument, "b", document(element(nil, bson.TypeBinary, "1", oldBinary(0, hiddenNeg))))),
	}
	for name, doc := range docs {
		for target, decodeInto := range hazardTargets {
			t.Run(name+"/"+target, func(t *testing.T) {
				err := noHang(t, func() error { return decodeInto(doc) })
				require.Error(t, err)
				var de *decode.Error
				require.ErrorAs(t, err, &de)
				assert.ErrorIs(t, err, decode.ErrMalformed)
			})
		}
	}
	// A well-formed old binary decodes as the driver decodes it.
	good := document(element(nil, bson.TypeBinary, "b", oldBinary(2, []byte{1, 2})))
	checkParity[struct{ B []byte }](t, good)
	checkParity[struct{ B bson.Binary }](t, good)
	checkParity[map[string]any](t, good)
}

// TestDelegatedMapHazards: maps with non-string keys are delegated whole;
// a negative length inside one is refused before the driver sees it, and a
// driver panic ([N]any, which its array decoder cannot fill) is an error.
func TestDelegatedMapHazards(t *testing.T) {
	neg := document(element(nil, bson.TypeEmbeddedDocument, "m", document(
		element(nil, bson.TypeEmbeddedDocument, "1", document(element(nil, bson.TypeString, "s", []byte{0xfb, 0xff, 0xff, 0xff, 0}))))))
	var items struct{ M map[int]HItem }
	err := noHang(t, func() error { return decode.Unmarshal(neg, &items) })
	require.ErrorIs(t, err, decode.ErrMalformed)

	arr := docOf(bson.D{{Key: "a", Value: bson.D{{Key: "1", Value: bson.A{int32(1), "x"}}}}})
	var pairs struct{ A map[int][2]any }
	err = noHang(t, func() error { return decode.Unmarshal(arr, &pairs) })
	require.ErrorIs(t, err, decode.ErrDriverPanic)

	var direct struct{ A [2]any }
	err = decode.Unmarshal(docOf(bson.D{{Key: "a", Value: bson.A{int32(1), "x"}}}), &direct)
	require.ErrorIs(t, err, decode.ErrDriverPanic, "the driver panics on [N]any: an error, never a value it would not give")
}

// UpperKey decodes map keys through encoding.TextUnmarshaler, which the
// driver prefers to the string kind.
type UpperKey string

func (k *UpperKey) UnmarshalText(b []byte) error {
	*k = UpperKey(strings.ToUpper(string(b)))
	return nil
}

func TestTextUnmarshalerMapKeys(t *testing.T) {
	doc := docOf(bson.D{{Key: "m", Value: bson.D{{Key: "ab", Value: int32(1)}}}})
	checkParity[struct{ M map[UpperKey]int }](t, doc)
	var v struct{ M map[UpperKey]int }
	require.NoError(t, decode.Unmarshal(doc, &v))
	assert.Equal(t, map[UpperKey]int{"AB": 1}, v.M)
}

// delegationShapes decode into types whose values decode hands to the
// driver (whole or in part), chosen by the first input byte.
var delegationShapes = []func(t *testing.T, doc []byte){
	fuzzOne[struct{ B []byte }], fuzzOne[struct{ B string }], fuzzOne[struct{ B bson.Binary }],
	fuzzOne[struct{ B any }], fuzzOne[struct{ B NamedBytes }], fuzzOne[struct{ B [16]byte }],
	fuzzOne[map[string]any], fuzzOne[bson.D], fuzzOne[struct{ M map[int]HItem }],
	fuzzOne[struct{ M map[UpperKey]int }], fuzzOne[struct{ A [2]any }], fuzzOne[struct{ A map[int][2]any }],
	fuzzOne[struct{ R bson.Raw }], fuzzOne[struct{ V bson.RawValue }], fuzzOne[struct{ D bson.Decimal128 }],
}

// FuzzDelegation mutates documents aimed at the values decode delegates to
// the driver: decode must never hang or panic, must return *decode.Error,
// and must agree with the driver on every well-formed document (the driver
// is run only on those: on malformed input it has hangs of its own). Run it
// with
//
//	go test ./decode -run '^$' -fuzz FuzzDelegation -fuzztime 10m
func FuzzDelegation(f *testing.F) {
	hiddenNeg := element(nil, bson.TypeString, "q", []byte{0xfb, 0xff, 0xff, 0xff})
	seeds := [][]byte{
		document(element(nil, bson.TypeBinary, "b", oldBinary(2, []byte{1, 2}))),
		document(element(nil, bson.TypeBinary, "b", oldBinary(2, append([]byte{1, 2}, hiddenNeg...)))),
		docOf(bson.D{{Key: "b", Value: bson.Binary{Subtype: 0, Data: make([]byte, 16)}}}),
		docOf(bson.D{{Key: "b", Value: bson.D{{Key: "x", Value: bson.A{int32(1), "s", bson.D{}}}}}}),
		docOf(bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: bson.D{{Key: "s", Value: "x"}}}, {Key: "ab", Value: int32(2)}}}}),
		docOf(bson.D{{Key: "a", Value: bson.A{int32(1), "x"}}}),
		docOf(bson.D{{Key: "a", Value: bson.D{{Key: "1", Value: bson.A{int32(1), int32(2)}}}}}),
		docOf(bson.D{{Key: "r", Value: bson.D{{Key: "k", Value: "v"}}}, {Key: "v", Value: bson.Regex{Pattern: "a", Options: "i"}}, {Key: "d", Value: bson.NewDecimal128(1, 2)}}),
	}
	for i, s := range seeds {
		for shape := range delegationShapes {
			if shape%len(seeds) == i%len(seeds) || shape < 3 {
				f.Add(byte(shape), s)
			}
		}
	}
	f.Fuzz(func(t *testing.T, shape byte, doc []byte) {
		tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("HANG shape=%d doc=%x", shape, doc)) })
		defer tm.Stop()
		delegationShapes[int(shape)%len(delegationShapes)](t, doc)
	})
}
