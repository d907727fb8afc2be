package decode_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/decode"
)

// checkParity decodes doc with the driver's bson.Unmarshal and with decode,
// into a zero value and into a value filled with random data (pooled
// destinations depend on the reset), and asserts the same values and the
// same error-ness.
func checkParity[T any](t *testing.T, doc []byte) {
	t.Helper()
	var want T
	werr := driverUnmarshal(doc, &want)

	var got T
	gerr := decode.Unmarshal(doc, &got)
	if werr != nil {
		require.Error(t, gerr, "driver failed with %v; decode must fail too", werr)
		var de *decode.Error
		require.True(t, errors.As(gerr, &de), "error must be a *decode.Error: %T", gerr)
		return
	}
	require.NoError(t, gerr)
	assert.Equal(t, want, got, "zero destination")

	// A destination that already holds values gives the same result.
	r := rand.New(rand.NewSource(1))
	for i := range 3 {
		var dirty T
		fill(reflect.ValueOf(&dirty).Elem(), r, 0)
		require.NoError(t, decode.Unmarshal(doc, &dirty))
		assert.Equal(t, want, dirty, "reused destination %d", i)
	}

	// With an Arena shared by several values (and a reused one), the same
	// again, and no value changes when a later one is decoded or appended
	// to.
	plan := decode.MustCompile[T]()
	var arena decode.Arena
	vals := make([]T, 4)
	for i := range vals {
		if i == 3 {
			fill(reflect.ValueOf(&vals[i]).Elem(), r, 0)
		}
		require.NoError(t, plan.DecodeWith(doc, &vals[i], &arena))
	}
	require.NoError(t, plan.DecodeWith(doc, &vals[3], &arena), "a reused destination")
	appendToSlices(reflect.ValueOf(&vals[1]).Elem())
	for i, v := range vals {
		if i != 1 {
			assert.Equal(t, want, v, "arena value %d", i)
		}
	}
}

// appendToSlices appends a zero element to every top-level slice field of
// the struct v, as a caller may: the neighbours of a slice cut from an Arena
// must not see it.
func appendToSlices(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.CanSet() {
			f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
		}
	}
}

// driverUnmarshal is bson.Unmarshal with a panic of the driver's (it has
// some, such as [N]any) turned into an error, which decode must match.
func driverUnmarshal(doc []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("driver panic: %v", r)
		}
	}()
	return bson.Unmarshal(doc, v)
}

type parityCase struct {
	name string
	doc  []byte
	run  func(*testing.T, []byte)
}

func docOf(d bson.D) []byte {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func c[T any](name string, d bson.D) parityCase {
	return parityCase{name: name, doc: docOf(d), run: checkParity[T]}
}

func raw[T any](name string, b []byte) parityCase {
	return parityCase{name: name, doc: b, run: checkParity[T]}
}

type (
	Small struct {
		ID    bson.ObjectID `bson:"_id"`
		Name  string        `bson:"name"`
		Email string        `bson:"email"`
		Age   int           `bson:"age"`
	}
	Ints struct {
		I   int
		I8  int8
		I16 int16
		I32 int32
		I64 int64
		U   uint
		U8  uint8
		U16 uint16
		U32 uint32
		U64 uint64
	}
	Floats struct {
		F32 float32
		F64 float64
		T32 float32 `bson:",truncate"`
		TI  int     `bson:"ti,truncate"`
	}
	Bools struct{ B bool }
	Strs  struct {
		S string
		B []byte
	}
	Tagged struct {
		A         string `bson:"a,omitempty"`
		B         int64  `bson:",minsize"`
		C         string `bson:"-"`
		CamelCase string
		//lint:ignore U1000 the parity table checks that an unexported field is skipped, as the driver skips it
		unexported string
		Dash       string `bson:"-,omitempty"`
	}
	Address struct {
		Street, City, Zip, Country string
	}
	Item struct {
		SKU   string  `bson:"sku"`
		Qty   int     `bson:"qty"`
		Price float64 `bson:"price"`
	}
	Medium struct {
		ID       bson.ObjectID `bson:"_id"`
		Customer string        `bson:"customer"`
		Email    string        `bson:"email"`
		Status   string        `bson:"status"`
		Total    float64       `bson:"total"`
		Paid     bool          `bson:"paid"`
		Created  time.Time     `bson:"created"`
		Updated  time.Time     `bson:"updated"`
		Tags     []string      `bson:"tags"`
		Address  Address       `bson:"address"`
		Items    []Item        `bson:"items"`
		Notes    string        `bson:"notes"`
		Version  int64         `bson:"version"`
	}
	Nested struct {
		In  Item
		Ptr *Item
		PI  *int
		PS  *string
	}
	Collections struct {
		Strs  []string
		Ints  []int
		Arr   [3]int
		Items []Item
		Ptrs  []*Item
		M     map[string]int
		MI    map[string]*Item
		Any   map[string]any
		Mat   [][]int
	}
	Dynamic struct {
		Any any
		D   bson.D
		M   bson.M
		A   bson.A
	}
	DriverTypes struct {
		OID  bson.ObjectID
		DT   bson.DateTime
		Dec  bson.Decimal128
		TS   bson.Timestamp
		Bin  bson.Binary
		Re   bson.Regex
		Raw  bson.Raw
		RV   bson.RawValue
		Time time.Time
		Sym  bson.Symbol
		JS   bson.JavaScript
		Min  bson.MinKey
		Null bson.Null
	}
	Base struct {
		X string
		Y int
	}
	EmbeddedPlain struct {
		Base
		Z string
	}
	InnerPtr struct {
		P string
		Q int
	}
	Inlined struct {
		Base      `bson:",inline"`
		*InnerPtr `bson:",inline"`
		Z         string
		Extra     map[string]any `bson:",inline"`
	}
	InlineShadow struct {
		Base `bson:",inline"`
		X    string // shadows Base.X: the outer field wins
	}
	DupKeys struct {
		A string `bson:"k"`
		B string `bson:"k"`
	}
	TwoMaps struct {
		M1 map[string]int `bson:",inline"`
		M2 map[string]int `bson:",inline"`
	}
	HasBadNested struct {
		Name string
		Bad  *DupKeys
	}
	Named struct {
		S Status
		L Level
		N []Status
	}
	Status string
	Level  int
	Tree   struct {
		Name     string
		Children []Tree
		Next     *Tree
	}
	CustomHolder struct {
		C  Upper
		CP *Upper
		V  Celsius
	}
	IntKeys struct {
		M map[int]string
	}
	WithIface struct {
		S fmt.Stringer
	}
	Arrays struct {
		B [4]byte
		A [2]string
	}
	// NulName's key holds a NUL: no document key can equal it.
	NulName struct {
		A int32 `bson:"a\x00b"`
		C int32 `bson:"c"`
	}
)

// Upper implements bson.Unmarshaler: the driver decodes it.
type Upper struct{ S string }

func (u *Upper) UnmarshalBSON(b []byte) error {
	var v struct{ S string }
	if err := bson.Unmarshal(b, &v); err != nil {
		return err
	}
	u.S = strings.ToUpper(v.S)
	return nil
}

// Celsius implements bson.ValueUnmarshaler.
type Celsius float64

func (c *Celsius) UnmarshalBSONValue(t byte, b []byte) error {
	if bson.Type(t) != bson.TypeDouble || len(b) != 8 {
		return errors.New("celsius must be a double")
	}
	*c = Celsius(math.Float64frombits(binary.LittleEndian.Uint64(b)) - 273.15)
	return nil
}

var _ bson.Unmarshaler = (*Upper)(nil)
var _ bson.ValueUnmarshaler = (*Celsius)(nil)

var (
	oid = bson.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	now = time.Date(2026, 11, 27, 18, 0, 0, 123e6, time.UTC)
)

func mediumDoc() bson.D {
	return bson.D{
		{Key: "_id", Value: oid}, {Key: "customer", Value: "Ada Lovelace"}, {Key: "email", Value: "ada@example.com"},
		{Key: "status", Value: "paid"}, {Key: "total", Value: 129.5}, {Key: "paid", Value: true},
		{Key: "created", Value: now}, {Key: "updated", Value: now.Add(time.Hour)},
		{Key: "tags", Value: bson.A{"a", "b", "c", "d"}},
		{Key: "address", Value: bson.D{{Key: "street", Value: "1 Main St"}, {Key: "city", Value: "London"}, {Key: "zip", Value: "N1"}, {Key: "country", Value: "UK"}}},
		{Key: "items", Value: bson.A{
			bson.D{{Key: "sku", Value: "A-1"}, {Key: "qty", Value: int32(2)}, {Key: "price", Value: 9.99}},
			bson.D{{Key: "sku", Value: "B-2"}, {Key: "qty", Value: int64(1)}, {Key: "price", Value: int32(20)}},
		}},
		{Key: "notes", Value: strings.Repeat("n", 200)}, {Key: "version", Value: int64(7)},
	}
}

func parityCases() []parityCase {
	i32, i64, f := int32(7), int64(7), 7.0
	return []parityCase{
		// Shapes.
		c[Small]("small", bson.D{{Key: "_id", Value: oid}, {Key: "name", Value: "Ada"}, {Key: "email", Value: "a@x"}, {Key: "age", Value: int32(36)}}),
		c[Medium]("medium", mediumDoc()),
		// The key "a" followed by the int32 98 reads "a\x00b\x00": a field
		// named "a\x00b" must not match it.
		c[NulName]("a field name holding a NUL matches no key", bson.D{{Key: "a", Value: int32(98)}, {Key: "c", Value: int32(1)}}),
		c[Small]("empty document", bson.D{}),
		c[Small]("fields in another order", bson.D{{Key: "age", Value: int32(1)}, {Key: "email", Value: "e"}, {Key: "_id", Value: oid}, {Key: "name", Value: "n"}}),
		c[Small]("unknown keys of every type are skipped", bson.D{
			{Key: "x1", Value: 1.5}, {Key: "x2", Value: "s"}, {Key: "x3", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "x4", Value: bson.A{1, "b"}},
			{Key: "x5", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}, {Key: "x6", Value: bson.Undefined{}}, {Key: "x7", Value: oid},
			{Key: "x8", Value: false}, {Key: "x9", Value: bson.DateTime(5)}, {Key: "x10", Value: nil}, {Key: "x11", Value: bson.Regex{Pattern: "a.*", Options: "i"}},
			{Key: "x12", Value: bson.DBPointer{DB: "db", Pointer: oid}}, {Key: "x13", Value: bson.JavaScript("f()")}, {Key: "x14", Value: bson.Symbol("sym")},
			{Key: "x15", Value: bson.CodeWithScope{Code: "c", Scope: bson.D{{Key: "s", Value: 1}}}}, {Key: "x16", Value: int32(3)},
			{Key: "x17", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "x18", Value: int64(4)}, {Key: "x19", Value: bson.NewDecimal128(1, 2)},
			{Key: "x20", Value: bson.MinKey{}}, {Key: "x21", Value: bson.MaxKey{}}, {Key: "name", Value: "kept"},
		}),

		// Integers.
		c[Ints]("ints from int32", bson.D{{Key: "i", Value: i32}, {Key: "i8", Value: i32}, {Key: "i16", Value: i32}, {Key: "i32", Value: i32}, {Key: "i64", Value: i32}, {Key: "u", Value: i32}, {Key: "u8", Value: i32}, {Key: "u16", Value: i32}, {Key: "u32", Value: i32}, {Key: "u64", Value: i32}}),
		c[Ints]("ints from int64", bson.D{{Key: "i", Value: i64}, {Key: "i8", Value: i64}, {Key: "i16", Value: i64}, {Key: "i32", Value: i64}, {Key: "i64", Value: i64}, {Key: "u", Value: i64}, {Key: "u8", Value: i64}, {Key: "u16", Value: i64}, {Key: "u32", Value: i64}, {Key: "u64", Value: i64}}),
		c[Ints]("ints from whole doubles", bson.D{{Key: "i", Value: f}, {Key: "i8", Value: f}, {Key: "i16", Value: f}, {Key: "i32", Value: f}, {Key: "i64", Value: f}, {Key: "u", Value: f}, {Key: "u8", Value: f}, {Key: "u16", Value: f}, {Key: "u32", Value: f}, {Key: "u64", Value: f}}),
		c[Ints]("ints from booleans", bson.D{{Key: "i", Value: true}, {Key: "i8", Value: false}, {Key: "u64", Value: true}}),
		c[Ints]("ints from null and undefined", bson.D{{Key: "i", Value: nil}, {Key: "u8", Value: bson.Undefined{}}}),
		c[Ints]("int from fractional double fails", bson.D{{Key: "i", Value: 1.5}}),
		c[Ints]("int64 from huge double fails", bson.D{{Key: "i64", Value: 1e19}}),
		c[Ints]("int8 overflow", bson.D{{Key: "i8", Value: int32(128)}}),
		c[Ints]("int8 underflow", bson.D{{Key: "i8", Value: int32(-129)}}),
		c[Ints]("int16 overflow", bson.D{{Key: "i16", Value: int32(40000)}}),
		c[Ints]("int32 overflow", bson.D{{Key: "i32", Value: int64(math.MaxInt32 + 1)}}),
		c[Ints]("int32 min fits", bson.D{{Key: "i32", Value: int64(math.MinInt32)}}),
		c[Ints]("uint from negative fails", bson.D{{Key: "u", Value: int32(-1)}}),
		c[Ints]("uint8 overflow", bson.D{{Key: "u8", Value: int32(256)}}),
		c[Ints]("uint32 max fits", bson.D{{Key: "u32", Value: int64(math.MaxUint32)}}),
		c[Ints]("uint64 from negative int64 fails", bson.D{{Key: "u64", Value: int64(-5)}}),
		c[Ints]("int from string fails", bson.D{{Key: "i", Value: "7"}}),
		c[Ints]("int from document fails", bson.D{{Key: "i", Value: bson.D{}}}),
		c[Ints]("negative doubles", bson.D{{Key: "i", Value: -3.0}, {Key: "i8", Value: -128.0}}),

		// Floats and truncation.
		c[Floats]("floats from ints", bson.D{{Key: "f32", Value: int32(3)}, {Key: "f64", Value: int64(1 << 40)}}),
		c[Floats]("float32 exact", bson.D{{Key: "f32", Value: 0.5}}),
		c[Floats]("float32 precision loss fails", bson.D{{Key: "f32", Value: 0.1}}),
		c[Floats]("float32 truncate flag allows loss", bson.D{{Key: "t32", Value: 0.1}}),
		c[Floats]("int truncate flag allows fraction", bson.D{{Key: "ti", Value: 2.9}}),
		c[Floats]("float from bool", bson.D{{Key: "f64", Value: true}}),
		c[Floats]("float from string fails", bson.D{{Key: "f64", Value: "1"}}),
		c[Floats]("infinity", bson.D{{Key: "f64", Value: math.Inf(-1)}, {Key: "f32", Value: math.Inf(1)}}),

		// Booleans.
		c[Bools]("bool", bson.D{{Key: "b", Value: true}}),
		c[Bools]("bool from int32", bson.D{{Key: "b", Value: int32(2)}}),
		c[Bools]("bool from zero double", bson.D{{Key: "b", Value: 0.0}}),
		c[Bools]("bool from int64", bson.D{{Key: "b", Value: int64(-1)}}),
		c[Bools]("bool from string fails", bson.D{{Key: "b", Value: "true"}}),

		// Strings and bytes.
		c[Strs]("string and binary", bson.D{{Key: "s", Value: "héllo"}, {Key: "b", Value: []byte("raw")}}),
		c[Strs]("empty string and binary", bson.D{{Key: "s", Value: ""}, {Key: "b", Value: []byte{}}}),
		c[Strs]("string from symbol", bson.D{{Key: "s", Value: bson.Symbol("sym")}}),
		c[Strs]("string from generic binary", bson.D{{Key: "s", Value: bson.Binary{Subtype: 0, Data: []byte("bin")}}}),
		c[Strs]("string from UUID binary fails", bson.D{{Key: "s", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}),
		c[Strs]("string from ObjectID fails", bson.D{{Key: "s", Value: oid}}),
		c[Strs]("string from int fails", bson.D{{Key: "s", Value: int32(1)}}),
		c[Strs]("bytes from string", bson.D{{Key: "b", Value: "str"}}),
		c[Strs]("bytes from old binary subtype", bson.D{{Key: "b", Value: bson.Binary{Subtype: 2, Data: []byte("old")}}}),
		c[Strs]("bytes from UUID binary fails", bson.D{{Key: "b", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}),
		c[Strs]("nulls into string and bytes", bson.D{{Key: "s", Value: nil}, {Key: "b", Value: nil}}),
		c[Strs]("bytes from array fails", bson.D{{Key: "b", Value: bson.A{1, 2}}}),

		// Tags.
		c[Tagged]("tags: omitempty, minsize, skip, bare tag, lowercase default", bson.D{{Key: "a", Value: "A"}, {Key: "b", Value: int32(1)}, {Key: "c", Value: "ignored"}, {Key: "camelcase", Value: "cc"}, {Key: "unexported", Value: "no"}, {Key: "-", Value: "dash"}}),
		c[Tagged]("key matched case-insensitively as a fallback", bson.D{{Key: "CamelCase", Value: "cc"}, {Key: "A", Value: "upper"}}),
		c[Tagged]("skipped field's key is ignored", bson.D{{Key: "C", Value: "x"}, {Key: "dash", Value: "y"}}),

		// Nesting.
		c[Nested]("nested struct and pointers", bson.D{{Key: "in", Value: bson.D{{Key: "sku", Value: "s"}}}, {Key: "ptr", Value: bson.D{{Key: "qty", Value: int32(3)}}}, {Key: "pi", Value: int32(4)}, {Key: "ps", Value: "p"}}),
		c[Nested]("null pointers and struct", bson.D{{Key: "in", Value: nil}, {Key: "ptr", Value: nil}, {Key: "pi", Value: nil}, {Key: "ps", Value: bson.Undefined{}}}),
		c[Nested]("struct from array fails", bson.D{{Key: "in", Value: bson.A{}}}),
		c[Nested]("pointer to int from string fails", bson.D{{Key: "pi", Value: "x"}}),
		c[Nested]("duplicate key: nested documents merge", bson.D{{Key: "in", Value: bson.D{{Key: "sku", Value: "s"}}}, {Key: "in", Value: bson.D{{Key: "qty", Value: int32(2)}}}, {Key: "ptr", Value: bson.D{{Key: "sku", Value: "a"}}}, {Key: "ptr", Value: bson.D{{Key: "price", Value: 1.0}}}}),
		c[Small]("duplicate key: last scalar wins", bson.D{{Key: "name", Value: "first"}, {Key: "name", Value: "second"}}),

		// Collections.
		c[Collections]("slices, arrays and maps", bson.D{
			{Key: "strs", Value: bson.A{"a", "b"}}, {Key: "ints", Value: bson.A{int32(1), int64(2), 3.0, true}}, {Key: "arr", Value: bson.A{1, 2}},
			{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: "x"}}, bson.D{{Key: "qty", Value: 1}}}},
			{Key: "ptrs", Value: bson.A{nil, bson.D{{Key: "sku", Value: "p"}}}},
			{Key: "m", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: int64(2)}}},
			{Key: "mi", Value: bson.D{{Key: "k", Value: bson.D{{Key: "sku", Value: "mk"}}}, {Key: "n", Value: nil}}},
			{Key: "any", Value: bson.D{{Key: "d", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "a", Value: bson.A{"s"}}, {Key: "t", Value: bson.DateTime(1)}}},
			{Key: "mat", Value: bson.A{bson.A{1, 2}, bson.A{}, nil}},
		}),
		c[Collections]("empty arrays and documents", bson.D{{Key: "strs", Value: bson.A{}}, {Key: "items", Value: bson.A{}}, {Key: "m", Value: bson.D{}}, {Key: "arr", Value: bson.A{}}}),
		c[Collections]("null collections", bson.D{{Key: "strs", Value: nil}, {Key: "arr", Value: nil}, {Key: "m", Value: nil}, {Key: "items", Value: nil}}),
		c[Collections]("array longer than Go array fails", bson.D{{Key: "arr", Value: bson.A{1, 2, 3, 4}}}),
		c[Collections]("slice element of wrong type fails", bson.D{{Key: "ints", Value: bson.A{1, "two"}}}),
		c[Collections]("map value of wrong type fails", bson.D{{Key: "m", Value: bson.D{{Key: "a", Value: "x"}}}}),
		c[Collections]("slice from document fails", bson.D{{Key: "strs", Value: bson.D{{Key: "0", Value: "a"}}}}),
		c[Collections]("map from array fails", bson.D{{Key: "m", Value: bson.A{}}}),
		c[Collections]("many elements", bson.D{{Key: "ints", Value: func() bson.A {
			a := make(bson.A, 1000)
			for i := range a {
				a[i] = int32(i)
			}
			return a
		}()}}),
		c[Arrays]("byte array from binary, string array", bson.D{{Key: "b", Value: []byte{1, 2}}, {Key: "a", Value: bson.A{"x"}}}),

		// Dynamic values (delegated to the driver).
		c[Dynamic]("any, D, M, A", bson.D{
			{Key: "any", Value: bson.D{{Key: "n", Value: int32(1)}, {Key: "a", Value: bson.A{1.5, "s", nil}}, {Key: "t", Value: now}}},
			{Key: "d", Value: bson.D{{Key: "z", Value: 1}, {Key: "a", Value: 2}}},
			{Key: "m", Value: bson.D{{Key: "k", Value: bson.D{{Key: "x", Value: int64(1)}}}}},
			{Key: "a", Value: bson.A{bson.D{}, bson.A{}}},
		}),
		c[Dynamic]("any scalars", bson.D{{Key: "any", Value: int64(5)}}),
		c[Dynamic]("null dynamic values", bson.D{{Key: "any", Value: nil}, {Key: "d", Value: nil}, {Key: "m", Value: nil}, {Key: "a", Value: nil}}),
		c[DriverTypes]("driver types", bson.D{
			{Key: "oid", Value: oid}, {Key: "dt", Value: bson.DateTime(1234)}, {Key: "dec", Value: bson.NewDecimal128(5, 6)},
			{Key: "ts", Value: bson.Timestamp{T: 10, I: 2}}, {Key: "bin", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}},
			{Key: "re", Value: bson.Regex{Pattern: "^a", Options: "i"}}, {Key: "raw", Value: bson.D{{Key: "r", Value: 1}}},
			{Key: "rv", Value: "value"}, {Key: "time", Value: now}, {Key: "sym", Value: bson.Symbol("s")}, {Key: "js", Value: bson.JavaScript("1")},
			{Key: "min", Value: bson.MinKey{}}, {Key: "null", Value: nil},
		}),
		c[DriverTypes]("ObjectID from hex string", bson.D{{Key: "oid", Value: oid.Hex()}}),
		c[DriverTypes]("ObjectID from bad string fails", bson.D{{Key: "oid", Value: "nope"}}),
		c[DriverTypes]("time from int64 and DateTime from null", bson.D{{Key: "time", Value: int64(1700000000123)}, {Key: "dt", Value: nil}}),
		c[DriverTypes]("time from string", bson.D{{Key: "time", Value: "2024-01-02T03:04:05.000Z"}}),
		c[DriverTypes]("time from timestamp", bson.D{{Key: "time", Value: bson.Timestamp{T: 1700000000}}}),
		c[DriverTypes]("time from bool fails", bson.D{{Key: "time", Value: true}}),
		c[DriverTypes]("negative datetime", bson.D{{Key: "time", Value: bson.DateTime(-1500)}}),
		c[DriverTypes]("DateTime from string fails", bson.D{{Key: "dt", Value: "x"}}),

		// Embedding and inlining.
		c[EmbeddedPlain]("embedded struct without inline is a subdocument", bson.D{{Key: "base", Value: bson.D{{Key: "x", Value: "bx"}}}, {Key: "z", Value: "z"}, {Key: "x", Value: "top"}}),
		c[Inlined]("inline struct, struct pointer and map", bson.D{{Key: "x", Value: "x"}, {Key: "y", Value: int32(2)}, {Key: "p", Value: "p"}, {Key: "z", Value: "z"}, {Key: "other", Value: "o"}, {Key: "n", Value: int32(1)}}),
		c[Inlined]("inline struct pointer absent stays nil", bson.D{{Key: "x", Value: "x"}}),
		c[Inlined]("inline map value of any type", bson.D{{Key: "doc", Value: bson.D{{Key: "a", Value: 1}}}}),
		c[InlineShadow]("outer field shadows inlined one", bson.D{{Key: "x", Value: "outer"}, {Key: "y", Value: int32(1)}}),
		c[DupKeys]("struct with duplicated keys fails", bson.D{{Key: "k", Value: "v"}}),
		c[DupKeys]("struct with duplicated keys fails on empty document", bson.D{}),
		c[TwoMaps]("two inline maps fail", bson.D{}),
		c[HasBadNested]("invalid nested type is fine when absent", bson.D{{Key: "name", Value: "n"}}),
		c[HasBadNested]("invalid nested type is fine when null", bson.D{{Key: "bad", Value: nil}}),
		c[HasBadNested]("invalid nested type fails when present", bson.D{{Key: "bad", Value: bson.D{}}}),

		// Named and recursive types, custom decoders.
		c[Named]("named string and int types", bson.D{{Key: "s", Value: "active"}, {Key: "l", Value: int32(3)}, {Key: "n", Value: bson.A{"a", "b"}}}),
		c[Tree]("recursive type", bson.D{{Key: "name", Value: "root"}, {Key: "children", Value: bson.A{
			bson.D{{Key: "name", Value: "a"}, {Key: "children", Value: bson.A{bson.D{{Key: "name", Value: "a1"}}}}},
			bson.D{{Key: "name", Value: "b"}},
		}}, {Key: "next", Value: bson.D{{Key: "name", Value: "n"}, {Key: "next", Value: bson.D{{Key: "name", Value: "nn"}}}}}}),
		c[CustomHolder]("Unmarshaler and ValueUnmarshaler are delegated", bson.D{{Key: "c", Value: bson.D{{Key: "s", Value: "up"}}}, {Key: "cp", Value: bson.D{{Key: "s", Value: "ptr"}}}, {Key: "v", Value: 300.0}}),
		c[CustomHolder]("ValueUnmarshaler error", bson.D{{Key: "v", Value: "hot"}}),
		c[CustomHolder]("null into Unmarshaler pointer", bson.D{{Key: "cp", Value: nil}}),
		c[Upper]("top-level Unmarshaler", bson.D{{Key: "s", Value: "top"}}),
		c[IntKeys]("map with int keys is delegated", bson.D{{Key: "m", Value: bson.D{{Key: "1", Value: "one"}, {Key: "2", Value: "two"}}}}),
		c[IntKeys]("map with bad int key fails", bson.D{{Key: "m", Value: bson.D{{Key: "x", Value: "one"}}}}),
		c[WithIface]("non-empty interface absent", bson.D{}),
		c[WithIface]("non-empty interface present fails", bson.D{{Key: "s", Value: "x"}}),
		c[map[string]any]("top-level map", bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: bson.D{{Key: "c", Value: "d"}}}}),
		c[bson.D]("top-level D", bson.D{{Key: "a", Value: int32(1)}}),
		c[bson.M]("top-level M", bson.D{{Key: "a", Value: bson.A{1}}}),

		// Malformed bytes.
		raw[Small]("truncated document", docOf(bson.D{{Key: "name", Value: "x"}})[:8]),
		raw[Small]("length larger than input", append([]byte{0xff, 0, 0, 0}, docOf(bson.D{})[4:]...)),
		raw[Small]("too short", []byte{5, 0, 0}),
		raw[Small]("missing terminator", []byte{5, 0, 0, 0, 1}),
		raw[Small]("unknown type byte in decoded field", []byte{12, 0, 0, 0, 0x42, 'n', 'a', 'm', 'e', 0, 0, 0}),
		raw[Bools]("bad boolean byte", []byte{9, 0, 0, 0, 0x08, 'b', 0, 2, 0}),
		raw[Strs]("string without NUL", []byte{15, 0, 0, 0, 0x02, 's', 0, 2, 0, 0, 0, 'a', 'b', 0, 0}[:14]),
		raw[Strs]("string length zero", []byte{13, 0, 0, 0, 0x02, 's', 0, 0, 0, 0, 0, 0, 0}),
		raw[Nested]("nested length too small", []byte{13, 0, 0, 0, 0x03, 'i', 'n', 0, 4, 0, 0, 0, 0}),
	}
}

// TestParityBareTag covers a tag that is only a key (`d`, with no bson:""),
// which the driver accepts and go vet rejects in source, so the type is built
// at run time.
func TestParityBareTag(t *testing.T) {
	typ := reflect.StructOf([]reflect.StructField{
		{Name: "D", Type: reflect.TypeFor[string](), Tag: "d"},
		{Name: "E", Type: reflect.TypeFor[int](), Tag: "e,omitempty"},
	})
	doc := docOf(bson.D{{Key: "d", Value: "dee"}, {Key: "e", Value: int32(5)}})
	want, got := reflect.New(typ), reflect.New(typ)
	require.NoError(t, bson.Unmarshal(doc, want.Interface()))
	require.NoError(t, decode.Into(doc, got.Interface()))
	assert.Equal(t, want.Interface(), got.Interface())
	assert.Equal(t, "dee", got.Elem().Field(0).String())
}

func TestParity(t *testing.T) {
	cases := parityCases()
	require.GreaterOrEqual(t, len(cases), 60)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, tt.doc) })
	}
}

// fill stores random values everywhere in v, unexported fields included, so
// that a decode into it shows whether the reset left anything behind.
func fill(v reflect.Value, r *rand.Rand, depth int) {
	if !v.CanSet() {
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	if depth > 4 {
		return
	}
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(r.Int63n(1e9), 0)))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(r.Intn(100) + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(uint64(r.Intn(100) + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(r.Float64() + 1)
	case reflect.String:
		v.SetString(fmt.Sprintf("dirty%d", r.Intn(1000)))
	case reflect.Interface:
		if v.NumMethod() == 0 {
			v.Set(reflect.ValueOf("dirty"))
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), r, depth+1)
		v.Set(p)
	case reflect.Slice:
		n := r.Intn(6) + 1
		s := reflect.MakeSlice(v.Type(), n, n+r.Intn(4))
		for i := range n {
			fill(s.Index(i), r, depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), r, depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, r, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, r, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), r, depth+1)
		}
	}
}

// Regression tests for fuzzer findings, named after what they found.

// An error under an empty document key panicked while its path was joined.
func TestFuzzFindingEmptyKeyInErrorPath(t *testing.T) {
	doc := []byte("\x18\x00\x00\x00\x03m\x00\x10\x00\x00\x000\x0000000000000")
	var c Collections
	err := decode.Unmarshal(doc, &c)
	require.Error(t, err)
	var de *decode.Error
	require.ErrorAs(t, err, &de)
	checkParity[Collections](t, docOf(bson.D{{Key: "m", Value: bson.D{{Key: "", Value: "x"}}}}))
}
