package cachecore

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// msgpackStmt is a statement as a msgpack descriptor would carry it: the
// same fields, its BSON parts (filter, update, documents) as binary.
type msgpackStmt struct {
	Op          int      `msgpack:"o"`
	Doc         []byte   `msgpack:"d,omitempty"`
	Filter      []byte   `msgpack:"f,omitempty"`
	Update      []byte   `msgpack:"u,omitempty"`
	UpdateType  byte     `msgpack:"ut,omitempty"`
	Multi       bool     `msgpack:"m,omitempty"`
	Upsert      bool     `msgpack:"up,omitempty"`
	NoChange    bool     `msgpack:"n,omitempty"`
	NotUpserted bool     `msgpack:"nu,omitempty"`
	PreImage    []byte   `msgpack:"p,omitempty"`
	PreFields   []string `msgpack:"pf,omitempty"`
}

// BenchmarkDescriptorEncoding compares the descriptor's encoding, BSON
// (AppendDescriptor, what a cache publishes) with msgpack (the same
// fields, BSON parts as binary), on the writes of BenchmarkPublishCost:
// encoding and decoding time, and size. The statements are built by hand,
// in the form odm reports them (pure code: no server).
func BenchmarkDescriptorEncoding(b *testing.B) {
	raw := func(v any) bson.Raw {
		r, err := bson.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	id := bson.NewObjectID()
	doc := raw(bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "a name of twenty chars"}, {Key: "score", Value: 7}, {Key: "tags", Value: bson.A{"x", "y"}}})
	writes := []struct {
		name string
		ch   Change
	}{
		{"updateone", Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpUpdate, Filter: raw(bson.D{{Key: "_id", Value: id}}),
			Update: bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw(bson.D{{Key: "$set", Value: bson.D{{Key: "score", Value: 7}}}})}}}}},
		{"save-preimage", Change{DB: "db", Coll: "c", Stmts: []Stmt{{Op: OpReplace, Filter: raw(bson.D{{Key: "_id", Value: id}}), Doc: doc, Upsert: true, NotUpserted: true, PreImage: doc}}}},
	}
	for _, w := range writes {
		b.Run("write="+w.name+"/enc=bson", func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				out, _ = AppendDescriptor(out[:0], &w.ch, MaxDescriptor)
			}
			b.ReportMetric(float64(len(out)), "bytes")
		})
		b.Run("write="+w.name+"/enc=msgpack", func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				stmts := make([]msgpackStmt, len(w.ch.Stmts))
				for i, s := range w.ch.Stmts {
					stmts[i] = msgpackStmt{Op: int(s.Op), Doc: s.Doc, Filter: s.Filter, Update: s.Update.Value, UpdateType: byte(s.Update.Type),
						Multi: s.Multi, Upsert: s.Upsert, NoChange: s.NoChange, NotUpserted: s.NotUpserted, PreImage: s.PreImage, PreFields: s.PreImageFields}
				}
				var err error
				if out, err = msgpack.Marshal(struct {
					V int           `msgpack:"v"`
					S []msgpackStmt `msgpack:"s"`
				}{1, stmts}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out)), "bytes")
		})
		desc, _ := AppendDescriptor(nil, &w.ch, MaxDescriptor)
		b.Run("write="+w.name+"/dec=bson", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := ChangeOfDescriptor("db", "c", desc); !ok {
					b.Fatal("unread")
				}
			}
		})
	}
}
