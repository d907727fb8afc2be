package decode_test

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/decode"
)

// Email is a type with a codec of its own in a custom registry: it
// lower-cases on decode.
type Email string

var tEmail = reflect.TypeFor[Email]()

func emailRegistry() *bson.Registry {
	reg := bson.NewRegistry()
	reg.RegisterTypeDecoder(tEmail, bson.ValueDecoderFunc(func(_ bson.DecodeContext, vr bson.ValueReader, v reflect.Value) error {
		s, err := vr.ReadString()
		if err != nil {
			return err
		}
		v.SetString(strings.ToLower(s))
		return nil
	}))
	return reg
}

// typeMapRegistry decodes embedded documents in interface{} values as bson.M.
func typeMapRegistry() *bson.Registry {
	reg := bson.NewRegistry()
	reg.RegisterTypeMapEntry(bson.TypeEmbeddedDocument, reflect.TypeFor[bson.M]())
	return reg
}

// kindRegistry decodes every string-kinded value in upper case.
func kindRegistry() *bson.Registry {
	reg := bson.NewRegistry()
	reg.RegisterKindDecoder(reflect.String, bson.ValueDecoderFunc(func(_ bson.DecodeContext, vr bson.ValueReader, v reflect.Value) error {
		s, err := vr.ReadString()
		if err != nil {
			return err
		}
		v.SetString(strings.ToUpper(s))
		return nil
	}))
	return reg
}

// driverDecode decodes as a mongo.Cursor of a client with reg and opts
// does: the decoder is configured field by field as the driver's own
// getDecoder (mongo/cursor.go, v2.10) configures it. Built by hand because
// that function is unexported; query's TestClientCodecs checks the same
// against a real client's cursor.
func driverDecode(doc []byte, v any, reg *bson.Registry, o *options.BSONOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = decode.ErrDriverPanic
		}
	}()
	dec := bson.NewDecoder(bson.NewDocumentReader(bytes.NewReader(doc)))
	if o != nil {
		if o.AllowTruncatingDoubles {
			dec.AllowTruncatingDoubles()
		}
		if o.BinaryAsSlice {
			dec.BinaryAsSlice()
		}
		if o.DefaultDocumentM {
			dec.DefaultDocumentM()
		}
		if o.DefaultDocumentMap {
			dec.DefaultDocumentMap()
		}
		if o.ObjectIDAsHexString {
			dec.ObjectIDAsHexString()
		}
		if o.UseJSONStructTags {
			dec.UseJSONStructTags()
		}
		if o.UseLocalTimeZone {
			dec.UseLocalTimeZone()
		}
		if o.ZeroMaps {
			dec.ZeroMaps()
		}
		if o.ZeroStructs {
			dec.ZeroStructs()
		}
	}
	if reg != nil {
		dec.SetRegistry(reg)
	}
	return dec.Decode(v)
}

type (
	Contact struct {
		Name  string `bson:"name"`
		Email Email  `bson:"email"`
		Other []Email
		Meta  any       `bson:"meta"`
		At    time.Time `bson:"at"`
		N     int       `bson:"n"`
		ID    string    `bson:"id"`
		Bin   any       `bson:"bin"`
		M     map[string]any
	}
	JSONTagged struct {
		FullName string `json:"full_name"`
		Age      int    `json:"age,omitempty"`
	}
)

func contactDoc() bson.D {
	return bson.D{
		{Key: "name", Value: "Ada"}, {Key: "email", Value: "ADA@Example.com"},
		{Key: "other", Value: bson.A{"X@Y.Z"}},
		{Key: "meta", Value: bson.D{{Key: "k", Value: bson.D{{Key: "deep", Value: int32(1)}}}}},
		{Key: "at", Value: bson.DateTime(1_700_000_000_000)},
		{Key: "n", Value: int32(4)},
		{Key: "id", Value: oid},
		{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{1, 2}}},
		{Key: "m", Value: bson.D{{Key: "d", Value: bson.D{{Key: "e", Value: "f"}}}}},
	}
}

// TestCodecsParity decodes the same documents with decode and with the
// driver configured the same way, for each registry form and each
// BSONOptions field with a decode effect.
func TestCodecsParity(t *testing.T) {
	withID := docOf(contactDoc())
	doc := docOf(slices.DeleteFunc(contactDoc(), func(e bson.E) bool { return e.Key == "id" }))
	fractional := docOf(bson.D{{Key: "n", Value: 4.75}, {Key: "name", Value: "x"}})
	jsonDoc := docOf(bson.D{{Key: "full_name", Value: "Grace"}, {Key: "age", Value: int32(85)}})
	tests := []struct {
		name string
		reg  *bson.Registry
		opts *options.BSONOptions
		doc  []byte
	}{
		{"default", nil, nil, doc},
		{"type codec", emailRegistry(), nil, doc},
		{"type map entry", typeMapRegistry(), nil, doc},
		{"kind codec", kindRegistry(), nil, doc},
		{"UseLocalTimeZone", nil, &options.BSONOptions{UseLocalTimeZone: true}, doc},
		{"DefaultDocumentM", nil, &options.BSONOptions{DefaultDocumentM: true}, doc},
		{"DefaultDocumentMap", nil, &options.BSONOptions{DefaultDocumentMap: true}, doc},
		{"BinaryAsSlice", nil, &options.BSONOptions{BinaryAsSlice: true}, doc},
		{"ObjectIDAsHexString", nil, &options.BSONOptions{ObjectIDAsHexString: true}, withID},
		{"ObjectIDAsHexString off", nil, nil, withID},
		{"AllowTruncatingDoubles", nil, &options.BSONOptions{AllowTruncatingDoubles: true}, fractional},
		{"AllowTruncatingDoubles off", nil, nil, fractional},
		{"ZeroMaps", nil, &options.BSONOptions{ZeroMaps: true}, doc},
		{"ZeroStructs", nil, &options.BSONOptions{ZeroStructs: true}, doc},
		{"UseJSONStructTags", nil, &options.BSONOptions{UseJSONStructTags: true}, jsonDoc},
		{"registry and options together", emailRegistry(), &options.BSONOptions{DefaultDocumentM: true, UseLocalTimeZone: true}, doc},
	}
	failed := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []decode.Option{decode.WithRegistry(tt.reg), decode.WithBSONOptions(tt.opts)}
			for _, typ := range []reflect.Type{reflect.TypeFor[Contact](), reflect.TypeFor[JSONTagged](), reflect.TypeFor[map[string]any](), reflect.TypeFor[bson.D]()} {
				want, got := reflect.New(typ), reflect.New(typ)
				werr := driverDecode(tt.doc, want.Interface(), tt.reg, tt.opts)
				gerr := decode.Into(tt.doc, got.Interface(), opts...)
				if werr != nil {
					assert.Error(t, gerr, "%v: the driver fails (%v)", typ, werr)
					failed++
					continue
				}
				require.NoError(t, gerr, "%v", typ)
				assert.Equal(t, want.Interface(), got.Interface(), "%v", typ)
			}
		})
	}
	assert.LessOrEqual(t, failed, 2, "the rows compare values, not only errors")
}

// TestCodecsKeepNativePaths: a registry that changes nothing a type
// reaches keeps that type on the native decoder, allocation for
// allocation.
func TestCodecsKeepNativePaths(t *testing.T) {
	doc := docOf(bson.D{{Key: "_id", Value: oid}, {Key: "name", Value: "Ada"}, {Key: "email", Value: "a@x"}, {Key: "age", Value: int32(36)}})
	def := decode.MustCompile[Small]()
	withReg := decode.MustCompile[Small](decode.WithRegistry(emailRegistry()), decode.WithBSONOptions(&options.BSONOptions{DefaultDocumentM: true}))
	var v Small
	a := testing.AllocsPerRun(100, func() { _ = def.Decode(doc, &v) })
	b := testing.AllocsPerRun(100, func() { _ = withReg.Decode(doc, &v) })
	assert.Equal(t, a, b, "allocations per decode, default vs a registry Small does not reach")
}

// TestCodecsEffects spells out what the parity table compares, so that a
// decoder ignoring the declaration fails visibly: on 16a31ad decode had no
// way to be told, and gave the default registry's results.
func TestCodecsEffects(t *testing.T) {
	doc := docOf(contactDoc())
	noID := slices.DeleteFunc(contactDoc(), func(e bson.E) bool { return e.Key == "id" })
	var c Contact
	require.NoError(t, decode.Into(docOf(noID), &c, decode.WithRegistry(emailRegistry())))
	assert.Equal(t, Email("ada@example.com"), c.Email, "the registry's Email codec")
	assert.Equal(t, []Email{"x@y.z"}, c.Other)

	c = Contact{}
	require.NoError(t, decode.Into(doc, &c, decode.WithBSONOptions(&options.BSONOptions{UseLocalTimeZone: true, DefaultDocumentM: true, ObjectIDAsHexString: true})))
	assert.Equal(t, time.Local, c.At.Location())
	assert.IsType(t, bson.M{}, c.Meta)
	assert.Equal(t, oid.Hex(), c.ID)

	c = Contact{}
	require.NoError(t, decode.Into(docOf(noID), &c, decode.WithRegistry(typeMapRegistry())))
	assert.IsType(t, bson.M{}, c.Meta)
	assert.IsType(t, bson.M{}, c.M["d"])

	c = Contact{}
	require.ErrorIs(t, decode.Into(doc, &c), decode.ErrTypeMismatch, "an ObjectID into a string needs ObjectIDAsHexString")
	require.NoError(t, decode.Into(docOf(noID), &c))
	assert.Equal(t, Email("ADA@Example.com"), c.Email, "default registry")
	assert.IsType(t, bson.D{}, c.Meta)
}
