package decode_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/databridge-go/databridge/decode"
)

const batch = 100

// benchDocs returns a batch of documents of the named shape, as the driver
// hands them out (one bson.Raw per document).
func benchDocs(shape string) []bson.Raw {
	docs := make([]bson.Raw, batch)
	for i := range docs {
		var d bson.D
		switch shape {
		case "small":
			d = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: fmt.Sprintf("user %d", i)},
				{Key: "email", Value: fmt.Sprintf("user%d@example.com", i)}, {Key: "age", Value: int32(20 + i%50)}}
		case "medium":
			d = mediumDoc()
			d[0].Value = bson.NewObjectID()
			d[1].Value = fmt.Sprintf("customer %d", i)
			d[10].Value = bson.A{ // five items
				bson.D{{Key: "sku", Value: "A-1"}, {Key: "qty", Value: int32(2)}, {Key: "price", Value: 9.99}},
				bson.D{{Key: "sku", Value: "B-2"}, {Key: "qty", Value: int32(1)}, {Key: "price", Value: 20.0}},
				bson.D{{Key: "sku", Value: "C-3"}, {Key: "qty", Value: int32(5)}, {Key: "price", Value: 1.5}},
				bson.D{{Key: "sku", Value: "D-4"}, {Key: "qty", Value: int32(1)}, {Key: "price", Value: 100.0}},
				bson.D{{Key: "sku", Value: "E-5"}, {Key: "qty", Value: int32(3)}, {Key: "price", Value: 7.25}},
			}
		}
		docs[i] = docOf(d)
	}
	return docs
}

// BenchmarkDecode decodes a 100-document batch per op. lib=walk is the floor:
// a bare bsoncore element walk that copies strings and decodes nothing.
func BenchmarkDecode(b *testing.B) {
	for _, shape := range []string{"small", "medium"} {
		docs := benchDocs(shape)
		b.Run("doc="+shape, func(b *testing.B) {
			switch shape {
			case "small":
				benchLibs[Small](b, docs)
			case "medium":
				benchLibs[Medium](b, docs)
			}
		})
	}
}

func benchLibs[T any](b *testing.B, docs []bson.Raw) {
	perDoc := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(docs)), "ns/doc")
	}
	b.Run("lib=databridge", func(b *testing.B) {
		plan := decode.MustCompile[T]()
		out := make([]T, len(docs))
		b.ReportAllocs()
		for b.Loop() {
			for i, d := range docs {
				if err := plan.Decode(d, &out[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		perDoc(b)
	})
	// Fresh destinations, as FindMany decodes into: every slice is new,
	// without and with an Arena shared by the batch (as a cursor does).
	for _, arena := range []bool{false, true} {
		name := "lib=databridge-fresh"
		if arena {
			name += "-arena"
		}
		b.Run(name, func(b *testing.B) {
			plan := decode.MustCompile[T]()
			out := make([]T, len(docs))
			b.ReportAllocs()
			for b.Loop() {
				clear(out)
				var a *decode.Arena
				if arena {
					a = new(decode.Arena)
				}
				for i, d := range docs {
					if err := plan.DecodeWith(d, &out[i], a); err != nil {
						b.Fatal(err)
					}
				}
			}
			perDoc(b)
		})
	}
	b.Run("lib=databridge-zerocopy", func(b *testing.B) {
		plan := decode.MustCompile[T](decode.ZeroCopy())
		out := make([]T, len(docs))
		b.ReportAllocs()
		for b.Loop() {
			for i, d := range docs {
				if err := plan.Decode(d, &out[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		perDoc(b)
	})
	b.Run("lib=unmarshal", func(b *testing.B) {
		out := make([]T, len(docs))
		b.ReportAllocs()
		for b.Loop() {
			for i, d := range docs {
				if err := bson.Unmarshal(d, &out[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		perDoc(b)
	})
	b.Run("lib=cursorall", func(b *testing.B) {
		anyDocs := make([]any, len(docs))
		for i, d := range docs {
			anyDocs[i] = d
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			cur, err := mongo.NewCursorFromDocuments(anyDocs, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			var out []T
			if err := cur.All(ctx, &out); err != nil {
				b.Fatal(err)
			}
		}
		perDoc(b)
	})
	b.Run("lib=walk", func(b *testing.B) {
		b.ReportAllocs()
		var sink int
		for b.Loop() {
			for _, d := range docs {
				sink += walk(bsoncore.Document(d))
			}
		}
		perDoc(b)
		_ = sink
	})
}

// walk visits every element, copying strings: the least work any decoder
// that owns its strings must do.
func walk(doc bsoncore.Document) int {
	n := 0
	rem := doc[4 : len(doc)-1]
	for len(rem) > 0 {
		e, r, ok := bsoncore.ReadElement(rem)
		if !ok {
			panic("bad element")
		}
		rem = r
		v := e.Value()
		switch v.Type {
		case bsoncore.TypeString:
			n += len(strings.Clone(v.StringValue()))
		case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
			n += walk(bsoncore.Document(v.Data))
		default:
			n++
		}
	}
	return n
}

// BenchmarkRegistry decodes the medium batch with no declaration, with a
// declared registry that has a codec for a type Medium does not hold, and
// with decoding options that touch nothing Medium holds natively: each must
// keep the native decoder's cost (codecs=…), against the driver configured
// the same way (lib=driver).
func BenchmarkRegistry(b *testing.B) {
	docs := benchDocs("medium")
	reg := emailRegistry()
	for _, tt := range []struct {
		name string
		opts []decode.Option
	}{
		{"codecs=none", nil},
		{"codecs=untouched-registry", []decode.Option{decode.WithRegistry(reg)}},
	} {
		b.Run(tt.name+"/lib=databridge", func(b *testing.B) {
			plan := decode.MustCompile[Medium](tt.opts...)
			out := make([]Medium, len(docs))
			b.ReportAllocs()
			for b.Loop() {
				for i, d := range docs {
					if err := plan.Decode(d, &out[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
	b.Run("codecs=untouched-registry/lib=driver", func(b *testing.B) {
		out := make([]Medium, len(docs))
		b.ReportAllocs()
		for b.Loop() {
			for i, d := range docs {
				out[i] = Medium{}
				if err := driverDecode(d, &out[i], reg, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
