package match

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzMatch feeds arbitrary bytes as a filter and a document: Compile and
// Match must never panic, and a filter Compile accepts answers every
// document.
func FuzzMatch(f *testing.F) {
	seed := func(filter, doc any) {
		fb, _ := bson.Marshal(filter)
		db, _ := bson.Marshal(doc)
		f.Add(fb, db)
	}
	seed(bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "a", Value: bson.A{1, 2}}})
	seed(bson.D{{Key: "a.b", Value: bson.D{{Key: "$gt", Value: 1}}}}, bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "b", Value: 2}}}}})
	seed(bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "a", Value: nil}}, bson.D{{Key: "b", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "c", Value: 1}}}}}}}}}, bson.D{})
	seed(bson.D{{Key: "a", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$size", Value: 2}}}}}}, bson.D{{Key: "a", Value: bson.A{bson.A{1}}}})
	f.Fuzz(func(t *testing.T, filter, doc []byte) {
		m, err := Compile(filter, Options{SimpleStrings: len(doc)%2 == 0})
		if err != nil {
			return
		}
		switch m.Match(doc) {
		case No, Maybe, Yes:
		default:
			t.Fatal("not a Tri")
		}
		_ = m.Paths()
	})
}
