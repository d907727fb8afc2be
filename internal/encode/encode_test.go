package encode_test

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/encode"
)

func check[T any](name string, v T) func(*testing.T) {
	return func(t *testing.T) {
		want, werr := bson.Marshal(&v)
		got, gerr := encode.For(reflect.TypeFor[T]()).Append(nil, unsafePtr(&v), false)
		if werr != nil {
			assert.Error(t, gerr)
			return
		}
		require.NoError(t, gerr)
		assert.Equal(t, bson.Raw(want).String(), bson.Raw(got).String())
		assert.Equal(t, want, got, name)
	}
}

type (
	Ints struct {
		I   int
		I8  int8
		I16 int16
		I32 int32
		I64 int64
		M64 int64 `bson:",minsize"`
		U   uint
		U8  uint8
		U16 uint16
		U32 uint32
		M32 uint32 `bson:"m32,minsize"`
		U64 uint64
	}
	Omit struct {
		S  string         `bson:"s,omitempty"`
		I  int            `bson:"i,omitempty"`
		B  bool           `bson:"b,omitempty"`
		F  float64        `bson:"f,omitempty"`
		T  time.Time      `bson:"t,omitempty"`
		PT *time.Time     `bson:"pt,omitempty"`
		O  bson.ObjectID  `bson:"o,omitempty"`
		Sl []string       `bson:"sl,omitempty"`
		P  *int           `bson:"p,omitempty"`
		M  map[string]int `bson:"m,omitempty"`
		In Inner          `bson:"in,omitempty"`
	}
	Inner struct {
		A string
		B []int
	}
	Mixed struct {
		ID    bson.ObjectID   `bson:"_id"`
		Bytes []byte          `bson:"bytes"`
		Nil   []byte          `bson:"nil"`
		Ptr   *Inner          `bson:"ptr"`
		NilP  *Inner          `bson:"nilp"`
		Items []Inner         `bson:"items"`
		Empty []Inner         `bson:"empty"`
		NilS  []string        `bson:"nils"`
		Any   any             `bson:"any"`
		D     bson.D          `bson:"d"`
		Dec   bson.Decimal128 `bson:"dec"`
		Num   json.Number     `bson:"num"`
		Map   map[string]int  `bson:"map"`
		Arr   [2]int          `bson:"arr"`
		DT    bson.DateTime   `bson:"dt"`
		F32   float32         `bson:"f32"`
		Named Level           `bson:"named"`
		Embed
		skip string
		Dash string `bson:"-"`
	}
	Level  int
	Embed  struct{ E string }
	Inline struct {
		Embed `bson:",inline"`
		X     int
	}
)

func TestParity(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)
	one := 1
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"small", check("small", benchdata.NewSmall(3))},
		{"medium", check("medium", benchdata.NewMedium(7))},
		{"ints", check("ints", Ints{I: 5, I8: -8, I16: 16, I32: 32, I64: 64, M64: 7, U: 1, U8: 8, U16: 16, U32: 32, M32: 5, U64: 64})},
		{"big ints", check("big", Ints{I: math.MaxInt64, I64: math.MinInt64, M64: math.MaxInt64, U32: math.MaxUint32, M32: math.MaxUint32, U64: math.MaxInt64})},
		{"uint64 overflow", check("overflow", Ints{U64: math.MaxUint64})},
		{"omitempty all empty", check("empty", Omit{})},
		{"omitempty all set", check("set", Omit{S: "s", I: 1, B: true, F: 1.5, T: now, PT: &now, O: bson.NewObjectID(), Sl: []string{"x"}, P: &one, M: map[string]int{"k": 1}, In: Inner{A: "a"}})},
		{"omitempty zero pointer target", check("zero ptr", Omit{PT: &time.Time{}, P: new(int)})},
		{"mixed", check("mixed", Mixed{ID: bson.NewObjectID(), Bytes: []byte("raw"), Ptr: &Inner{A: "p", B: []int{1}}, Items: []Inner{{A: "x"}, {B: []int{}}},
			Empty: []Inner{}, Any: bson.D{{Key: "z", Value: 1}}, D: bson.D{{Key: "a", Value: "b"}}, Dec: bson.NewDecimal128(1, 2), Num: "12",
			Map: map[string]int{"one": 1}, Arr: [2]int{1, 2}, DT: 42, F32: 0.25, Named: 3, Embed: Embed{E: "e"}, skip: "x", Dash: "y"})},
		{"inline delegates", check("inline", Inline{Embed: Embed{E: "e"}, X: 1})},
		{"zero values", check("zero", Mixed{})},
		{"negative zero is empty", check("negzero", Omit{F: math.Copysign(0, -1)})},
		{"long slice", check("long", Inner{B: make([]int, 1500)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestOmitZeroID(t *testing.T) {
	s := benchdata.NewSmall(1)
	p := encode.For(reflect.TypeFor[benchdata.Small]())
	require.True(t, p.HasObjectID())
	with, err := p.Append(nil, unsafePtr(&s), true)
	require.NoError(t, err)
	_, err = bson.Raw(with).LookupErr("_id")
	assert.NoError(t, err, "a non-zero _id is kept")
	s.ID = bson.ObjectID{}
	without, err := p.Append(nil, unsafePtr(&s), true)
	require.NoError(t, err)
	_, err = bson.Raw(without).LookupErr("_id")
	assert.Error(t, err, "a zero ObjectID _id is left out")
	assert.Equal(t, "user 1", bson.Raw(without).Lookup("name").StringValue())
}

func BenchmarkEncode(b *testing.B) {
	m := benchdata.NewMedium(1)
	b.Run("lib=databridge", func(b *testing.B) {
		p := encode.For(reflect.TypeFor[benchdata.Medium]())
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = p.Append(buf[:0], unsafePtr(&m), false)
		}
	})
	b.Run("lib=marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = bson.Marshal(&m)
		}
	})
}

func TestNative(t *testing.T) {
	type withEmail struct {
		E []unreached
	}
	type withAny struct{ A any }
	reg := untouchedRegistry()
	assert.True(t, encode.Native(reflect.TypeFor[Ints](), nil, nil), "defaults")
	assert.True(t, encode.Native(reflect.TypeFor[Ints](), reg, nil), "a registry the type does not reach")
	assert.False(t, encode.Native(reflect.TypeFor[withEmail](), reg, nil), "a codec reached through a slice")
	assert.False(t, encode.Native(reflect.TypeFor[withAny](), reg, nil), "an interface under a custom registry")
	assert.False(t, encode.Native(reflect.TypeFor[Ints](), nil, &options.BSONOptions{IntMinSize: true}), "an encoding option")
	assert.True(t, encode.Native(reflect.TypeFor[Ints](), nil, &options.BSONOptions{UseLocalTimeZone: true}), "a decoding option only")
}
