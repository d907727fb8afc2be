package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/query"
)

// fromJSON decodes untrusted JSON the way a service would: into a bson.M
// through the driver's extended-JSON reader.
func fromJSON(t testing.TB, s string) bson.M {
	t.Helper()
	var m bson.M
	require.NoError(t, bson.UnmarshalExtJSON([]byte(s), false, &m), s)
	return m
}

func marshalFilter(t *testing.T, f query.Filter) string {
	t.Helper()
	raw, err := bson.Marshal(f)
	require.NoError(t, err)
	return bson.Raw(raw).String()
}

func TestSanitize(t *testing.T) {
	for _, tt := range []struct {
		name string
		give any
		want string // relaxed extended JSON of the result
	}{
		{"operator under a field is matched literally", fromJSON(t, `{"name": {"$ne": ""}}`), `{"name": {"$eq": {"$ne": ""}}}`},
		{"plain value", bson.D{{Key: "name", Value: "ada"}, {Key: "age", Value: 3}}, `{"name": {"$eq": "ada"},"age": {"$eq": {"$numberInt":"3"}}}`},
		{"regular expression is literal under $eq", bson.D{{Key: "name", Value: bson.Regex{Pattern: ".*"}}}, `{"name": {"$eq": {"$regularExpression":{"pattern":".*","options":""}}}}`},
		{"$or of filters", bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "a", Value: 1}}, bson.M{"b": bson.M{"$gt": 1}}}}},
			`{"$or": [{"a": {"$eq": {"$numberInt":"1"}}},{"b": {"$eq": {"$gt": {"$numberInt":"1"}}}}]}`},
		{"nested $and in $nor", bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "x", Value: nil}}}}}}}},
			`{"$nor": [{"$and": [{"x": {"$eq": null}}]}]}`},
		{"dotted path", bson.D{{Key: "a.b", Value: "c"}}, `{"a.b": {"$eq": "c"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := query.Sanitize(tt.give)
			require.NoError(t, f.Err())
			assert.JSONEq(t, tt.want, marshalFilter(t, f))
		})
	}
}

func TestSanitizeRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		give any
		is   error  // nil: an *OperatorError
		op   string // the operator an *OperatorError names
	}{
		{"$where", fromJSON(t, `{"$where": "sleep(1000)"}`), nil, "$where"},
		{"$expr", bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$a", "$b"}}}}}, nil, "$expr"},
		{"$function inside $or", bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "$function", Value: "x"}}}}}, nil, "$function"},
		{"$jsonSchema", bson.D{{Key: "$jsonSchema", Value: bson.D{}}}, nil, "$jsonSchema"},
		{"$text", bson.D{{Key: "$text", Value: bson.D{{Key: "$search", Value: "x"}}}}, nil, "$text"},
		{"$comment", bson.D{{Key: "$comment", Value: "x"}}, nil, "$comment"},
		{"operator path segment", bson.D{{Key: "a.$ne", Value: 1}}, query.ErrInvalidField, ""},
		{"empty path segment", bson.D{{Key: "a..b", Value: 1}}, query.ErrInvalidField, ""},
		{"NUL in a field (the driver refuses to encode it)", bson.D{{Key: "a\x00", Value: 1}}, query.ErrInvalidValue, ""},
		{"empty $or", bson.D{{Key: "$or", Value: bson.A{}}}, query.ErrNoFilters, ""},
		{"empty filter in $and", bson.D{{Key: "$and", Value: bson.A{bson.D{}}}}, query.ErrNoFilters, ""},
		{"$or of a non-array", bson.D{{Key: "$or", Value: "x"}}, query.ErrInvalidValue, ""},
		{"$or of a non-document", bson.D{{Key: "$or", Value: bson.A{1}}}, query.ErrInvalidValue, ""},
		{"not a document", "name", query.ErrInvalidValue, ""},
		{"invalid BSON", bson.Raw{1, 2, 3}, query.ErrInvalidValue, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := query.Sanitize(tt.give)
			err := f.Err()
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			var oe *query.OperatorError
			if tt.op != "" {
				require.ErrorAs(t, err, &oe)
				assert.Equal(t, tt.op, oe.Operator)
				assert.Contains(t, err.Error(), tt.op)
			} else {
				assert.False(t, errors.As(err, &oe))
			}
			_, merr := bson.Marshal(f)
			assert.Error(t, merr, "a refused filter never marshals")
			if tt.is != nil {
				assert.ErrorIs(t, merr, tt.is)
			}
		})
	}
}

// TestSanitizeAgainstTheServer: untrusted filters that match every
// document as given match only literally once sanitized, and a refused one
// sends nothing.
func TestSanitizeAgainstTheServer(t *testing.T) {
	coll := usersColl(t, 10)
	h := handle[User](t, coll)
	ctx := context.Background()
	for _, give := range []string{
		`{"name": {"$ne": ""}}`,
		`{"name": {"$gt": ""}}`,
		`{"$or": [{"name": {"$exists": true}}]}`,
	} {
		t.Run(give, func(t *testing.T) {
			raw, err := h.FindMany(ctx, fromJSON(t, give))
			require.NoError(t, err)
			require.Len(t, raw, 10, "the unsanitized filter matches every document")
			got, err := h.FindMany(ctx, query.Sanitize(fromJSON(t, give)))
			require.NoError(t, err)
			assert.Empty(t, got, "sanitized, it matches only a name equal to the document")
		})
	}
	got, err := h.FindMany(ctx, query.Sanitize(fromJSON(t, `{"name": "user003"}`)))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "user003", got[0].Name)

	_, err = h.FindMany(ctx, query.Sanitize(fromJSON(t, `{"$where": "true"}`)))
	var oe *query.OperatorError
	require.ErrorAs(t, err, &oe)
}

// FuzzSanitize: whatever the input, a sanitized filter holds operators only
// where Sanitize puts them: $and, $or and $nor where the input had them,
// and a single $eq under each field; what is under $eq is a value,
// whatever its keys.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		`{"name": {"$ne": ""}}`, `{"$where": "1"}`, `{"$or": [{"a": 1}, {"b": {"$gt": 2}}]}`,
		`{"$and": [{"$nor": [{"x": {"$in": [1]}}]}]}`, `{"a.b": {"c": {"$regex": "."}}}`, `{}`, `{"$or": []}`,
	} {
		f.Add([]byte(s))
	}
	// Past MongoDB's 100 levels: refused.
	f.Add([]byte(strings.Repeat(`{"$or": [`, 60) + `{"a": 1}` + strings.Repeat(`]}`, 60)))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m bson.M
		if json.Valid(in) {
			if err := bson.UnmarshalExtJSON(in, false, &m); err == nil {
				check(t, bson.Raw(mustMarshal(t, m)), query.Sanitize(m))
			}
		}
		check(t, bson.Raw(in), query.Sanitize(bson.Raw(in))) // the bytes as BSON, mostly invalid
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := bson.Marshal(v)
	if err != nil {
		t.Skip()
	}
	return b
}

func check(t *testing.T, in bson.Raw, f query.Filter) {
	t.Helper()
	if f.Err() != nil {
		return
	}
	out, err := bson.Marshal(f)
	if err != nil {
		t.Fatalf("a filter without error does not marshal: %v", err)
	}
	if err := literal(bson.Raw(out), in, ""); err != nil {
		t.Fatalf("%v\nin:  %v\nout: %v", err, in, bson.Raw(out))
	}
}

// literal checks out, a sanitized filter, against in, its input.
func literal(out, in bson.Raw, path string) error {
	elems, err := out.Elements()
	if err != nil {
		return err
	}
	for _, el := range elems {
		k := el.Key()
		switch {
		case k == "$and" || k == "$or" || k == "$nor":
			src, err := in.LookupErr(k)
			if err != nil {
				return fmt.Errorf("%s%s in the output, not in the input", path, k)
			}
			outs, _ := el.Value().Array().Values()
			ins, _ := src.Array().Values()
			if len(outs) == 0 || len(outs) != len(ins) {
				return fmt.Errorf("%s%s: %d filters out of %d", path, k, len(outs), len(ins))
			}
			for i := range outs {
				if err := literal(outs[i].Document(), ins[i].Document(), fmt.Sprintf("%s%s.%d.", path, k, i)); err != nil {
					return err
				}
			}
		case strings.HasPrefix(k, "$"):
			return fmt.Errorf("operator %s%s in the output", path, k)
		default:
			doc, ok := el.Value().DocumentOK()
			if !ok {
				return fmt.Errorf("%s%s is not under $eq", path, k)
			}
			ops, _ := doc.Elements()
			if len(ops) != 1 || ops[0].Key() != "$eq" {
				return fmt.Errorf("%s%s is not a single $eq: %v", path, k, doc)
			}
			if src, err := in.LookupErr(k); err != nil || !src.Equal(ops[0].Value()) {
				return fmt.Errorf("%s%s: $eq of another value than the input's", path, k)
			}
		}
	}
	return nil
}
