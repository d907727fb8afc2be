package match_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/match"
)

// TestEveryOperatorCompiles compiles a filter using each operator of the
// table where it belongs, and the same name where it does not (a field
// operator at the top level, an operator on filters on a field), which is
// refused.
func TestEveryOperatorCompiles(t *testing.T) {
	tests := map[string]struct{ give, misplaced string }{
		"$and":       {`{"$and": [{"a": 1}]}`, `{"a": {"$and": [{"a": 1}]}}`},
		"$or":        {`{"$or": [{"a": 1}]}`, `{"a": {"$or": [{"a": 1}]}}`},
		"$nor":       {`{"$nor": [{"a": 1}]}`, `{"a": {"$nor": [{"a": 1}]}}`},
		"$not":       {`{"a": {"$not": {"$gt": 1}}}`, `{"$not": {"a": 1}}`},
		"$eq":        {`{"a": {"$eq": 1}}`, `{"$eq": 1}`},
		"$ne":        {`{"a": {"$ne": 1}}`, `{"$ne": 1}`},
		"$gt":        {`{"a": {"$gt": 1}}`, `{"$gt": 1}`},
		"$gte":       {`{"a": {"$gte": 1}}`, `{"$gte": 1}`},
		"$lt":        {`{"a": {"$lt": 1}}`, `{"$lt": 1}`},
		"$lte":       {`{"a": {"$lte": 1}}`, `{"$lte": 1}`},
		"$in":        {`{"a": {"$in": [1]}}`, `{"$in": [1]}`},
		"$nin":       {`{"a": {"$nin": [1]}}`, `{"$nin": [1]}`},
		"$exists":    {`{"a": {"$exists": true}}`, `{"$exists": true}`},
		"$type":      {`{"a": {"$type": "int"}}`, `{"$type": "int"}`},
		"$size":      {`{"a": {"$size": 1}}`, `{"$size": 1}`},
		"$all":       {`{"a": {"$all": [1]}}`, `{"$all": [1]}`},
		"$elemMatch": {`{"a": {"$elemMatch": {"$gt": 1}}}`, `{"$elemMatch": {"a": 1}}`},
	}
	ops := match.Operators()
	assert.True(t, slices.IsSorted(ops), "sorted")
	ops[0] = "changed"
	assert.NotContains(t, match.Operators(), "changed", "a new slice each call")
	for _, name := range match.Operators() {
		tt, ok := tests[name]
		if !assert.True(t, ok, "%s is in the table: add it here", name) {
			continue
		}
		_, err := match.Compile(ext(t, tt.give), match.Options{})
		assert.NoError(t, err, tt.give)
		_, err = match.Compile(ext(t, tt.misplaced), match.Options{})
		assert.ErrorIs(t, err, match.ErrUnanalysable, tt.misplaced)
		delete(tests, name)
	}
	assert.Empty(t, tests, "operators tested here but not in the table")
}

func ext(t *testing.T, s string) bson.Raw {
	t.Helper()
	var d bson.Raw
	require.NoError(t, bson.UnmarshalExtJSON([]byte(s), false, &d), s)
	return d
}
