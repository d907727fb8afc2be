package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestAnalyse(t *testing.T) {
	match := bson.D{{Key: "$match", Value: bson.D{{Key: "tenant", Value: "a"}}}}
	for _, tc := range []struct {
		name   string
		stages bson.A
		ok     bool
		reads  []string
		all    bool
	}{
		{"match then group", bson.A{match, bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$status"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: "$total"}}}}}}}, true, []string{"status", "total"}, false},
		{"match alone: the documents themselves", bson.A{match}, true, nil, true},
		{"match, sort, limit: the documents themselves", bson.A{match, bson.D{{Key: "$sort", Value: bson.D{{Key: "createdAt", Value: -1}}}}, bson.D{{Key: "$limit", Value: 5}}}, true, []string{"createdAt"}, true},
		{"an inclusion projection", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "$c.d"}}}}}, true, []string{"a", "b", "c.d"}, false},
		{"an exclusion projection", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "a", Value: 0}}}}}, true, nil, true},
		// MongoDB's $project reads a document of fields as a nested
		// projection: {n: {x: 0}} excludes n.x, and every other field
		// flows on (read as an inclusion of n on a785bb8). Hand-built
		// from the documented semantics: the dev server cannot run it.
		{"a nested exclusion", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "n", Value: bson.D{{Key: "x", Value: 0}}}}}}}, true, nil, true},
		{"a nested exclusion, deeper", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "n", Value: bson.D{{Key: "y", Value: bson.D{{Key: "z", Value: false}}}}}}}}}, true, nil, true},
		{"a nested inclusion", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "n", Value: bson.D{{Key: "x", Value: 1}}}}}}}, true, []string{"n"}, false},
		{"an expression is no nested projection", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$add", Value: bson.A{"$a", 0}}}}}}}}, true, []string{"n", "a"}, false},
		// $getField reads a field of $$CURRENT by its name, no "$path"
		// (read as reading nothing on a785bb8: found by reading the
		// analysis next to the index oracle).
		{"$getField reads a field by name", bson.A{match, bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$getField", Value: "a"}}}}}}}, true, nil, true},
		{"$getField's long form", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "x", Value: bson.D{{Key: "$getField", Value: bson.D{{Key: "field", Value: "a"}}}}}}}}}, true, []string{"x"}, true},
		// {$project: {"m.n": 1}} outputs m: {} for a document whose m
		// holds only other fields, so a write to m.t changes the output
		// (kept on a785bb8: found by TestDifferentialRules, seed 302).
		{"a dotted inclusion reads its top field", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "m.n", Value: 1}}}}}, true, []string{"m"}, false},
		{"{_id: 0} alone excludes", bson.A{match, bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: 0}}}}}, true, []string{"_id"}, true},
		{"$$ROOT reads everything", bson.A{match, bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "docs", Value: bson.D{{Key: "$push", Value: "$$ROOT"}}}}}}}, true, nil, true},
		{"$expr in a later $match", bson.A{match, bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: true}}}}, bson.D{{Key: "$count", Value: "n"}}}, true, nil, true},
		{"count", bson.A{match, bson.D{{Key: "$count", Value: "n"}}}, true, nil, false},
		{"$lookup reads another collection", bson.A{match, bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "x"}}}}}, false, nil, false},
		{"an unknown stage", bson.A{bson.D{{Key: "$facet", Value: bson.D{}}}}, false, nil, false},
		{"a stage of two keys", bson.A{bson.D{{Key: "$match", Value: bson.D{}}, {Key: "$limit", Value: 1}}}, false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, data, err := bson.MarshalValue(tc.stages)
			require.NoError(t, err)
			a, ok := Analyse(bson.RawArray(data))
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, tc.reads, a.Reads)
			assert.Equal(t, tc.all, a.All)
		})
	}
}
