package match

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// benchFilters are filters a cached read might hold, one per family of
// operators, evaluated against benchDoc.
var benchFilters = []struct{ name, filter string }{
	{"eq", `{"tenant": 3, "status": "paid"}`},
	{"range", `{"n": {"$gte": 2, "$lt": 10}, "d.e": {"$gt": 1.5}}`},
	{"in", `{"status": {"$in": ["paid", "shipped", "open"]}, "tags": {"$nin": ["x", "y"]}}`},
	{"logical", `{"$or": [{"a": 1}, {"b": {"$exists": true}}], "$nor": [{"c": {"$type": "string"}}]}`},
	{"array", `{"items": {"$elemMatch": {"sku": "b", "qty": {"$gt": 1}}}, "tags": {"$size": 3, "$all": ["a", "c"]}}`},
	{"not", `{"n": {"$not": {"$gt": 5}}, "status": {"$ne": "void"}}`},
}

const benchDoc = `{"_id": 1, "tenant": 3, "status": "paid", "n": 4, "d": {"e": 2.5}, "a": 2, "b": null, "c": 7,
	"tags": ["a", "b", "c"], "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}`

func benchRaw(b *testing.B, ext string) bson.Raw {
	b.Helper()
	var d bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(ext), false, &d); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkMatch is Filter.Match, which the cache runs on its write path.
func BenchmarkMatch(b *testing.B) {
	doc := benchRaw(b, benchDoc)
	for _, bf := range benchFilters {
		b.Run("filter="+bf.name, func(b *testing.B) {
			f, err := Compile(benchRaw(b, bf.filter), Options{SimpleStrings: true})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Match(doc)
			}
		})
	}
}

// BenchmarkCompile is Compile, run once per cached read.
func BenchmarkCompile(b *testing.B) {
	for _, bf := range benchFilters {
		b.Run("filter="+bf.name, func(b *testing.B) {
			raw := benchRaw(b, bf.filter)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(raw, Options{SimpleStrings: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
