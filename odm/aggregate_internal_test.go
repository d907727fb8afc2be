package odm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestDependencies reads, from pipelines built by hand (no server), the
// collections each depends on and the one it writes.
func TestDependencies(t *testing.T) {
	tests := []struct {
		name   string
		give   any
		reads  []string
		target string
	}{
		{"match only", mongo.Pipeline{{{Key: "$match", Value: bson.D{}}}}, nil, ""},
		{"lookup", bson.A{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "orders"}, {Key: "localField", Value: "_id"}, {Key: "foreignField", Value: "u"}, {Key: "as", Value: "o"}}}}}, []string{"app.orders"}, ""},
		{"lookup with a sub-pipeline that unions", bson.A{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "a"}, {Key: "as", Value: "x"},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: "b"}}}}}}}}}}, []string{"app.a", "app.b"}, ""},
		{"graphLookup", bson.A{bson.D{{Key: "$graphLookup", Value: bson.D{{Key: "from", Value: "tree"}}}}}, []string{"app.tree"}, ""},
		{"unionWith by name", bson.A{bson.D{{Key: "$unionWith", Value: "c"}}}, []string{"app.c"}, ""},
		{"facet", bson.A{bson.D{{Key: "$facet", Value: bson.D{
			{Key: "x", Value: bson.A{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "f1"}}}}}},
			{Key: "y", Value: bson.A{bson.D{{Key: "$unionWith", Value: "f2"}}}},
		}}}}, []string{"app.f1", "app.f2"}, ""},
		{"out", bson.A{bson.D{{Key: "$match", Value: bson.D{}}}, bson.D{{Key: "$out", Value: "dst"}}}, nil, "app.dst"},
		{"merge into another database", bson.A{bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "db", Value: "w"}, {Key: "coll", Value: "h"}}}}}}}, nil, "w.h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := dependencies("app", tt.give)
			require.NoError(t, err)
			assert.Equal(t, tt.reads, d.Reads)
			assert.Equal(t, tt.target, d.Target)
		})
	}
	_, err := dependencies("app", bson.D{{Key: "$match", Value: 1}})
	assert.Error(t, err, "a pipeline that is not an array")
	_, err = dependencies("app", bson.A{bson.D{{Key: "$lookup", Value: 1}}})
	assert.Error(t, err, "a malformed stage")
}
