package query_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/query"
)

// maxDepth is MongoDB's limit on the nesting of a BSON document: the
// document itself is level 1, each document or array in it adds one.
const maxDepth = 100

// deepOr is a filter of levels nested $or ({"$or": [{"$or": [… {"a": 1}]}]}),
// levels >= 1, as raw BSON built in one pass (building it level by level
// copies quadratically). Its depth is 2*levels+1.
func deepOr(levels int) bson.Raw {
	leaf := bson.Raw(must(bson.Marshal(bson.D{{Key: "a", Value: 1}})))
	return nestRaw(leaf, levels, func(inner int) (doc, arr []byte) {
		// {"$or": [<doc>]}: a document holding an array holding the document.
		arr = append(le32(4+1+2+inner+1), 0x03, '0', 0)
		doc = append(le32(4+1+4+(len(arr)+inner+1)+1), 0x04, '$', 'o', 'r', 0)
		return doc, arr
	})
}

// deepArray is {"a": [[[… 1 …]]]} with levels nested arrays, as raw BSON:
// depth levels+1.
func deepArray(levels int) bson.Raw {
	// Inside out: the innermost array is [1].
	inner := append(le32(4+1+2+4+1), 0x10, '0', 0, 1, 0, 0, 0, 0)
	sizes := []int{len(inner)}
	for range levels - 1 {
		sizes = append(sizes, 4+1+2+sizes[len(sizes)-1]+1)
	}
	top := sizes[len(sizes)-1]
	out := append(le32(4+1+2+top+1), 0x04, 'a', 0)
	for i := len(sizes) - 1; i > 0; i-- {
		out = append(out, le32(sizes[i])...)
		out = append(out, 0x04, '0', 0)
	}
	out = append(out, inner...)
	for range levels - 1 {
		out = append(out, 0)
	}
	out = append(out, 0)
	return out
}

// nestRaw wraps leaf in levels pairs of (document, array) headers from
// wrap, writing each byte once.
func nestRaw(leaf []byte, levels int, wrap func(inner int) (doc, arr []byte)) bson.Raw {
	heads := make([][]byte, 0, 2*levels)
	size := len(leaf)
	for range levels {
		doc, arr := wrap(size)
		heads = append(heads, arr, doc)
		size += len(doc) + len(arr) + 2 // each closes with a NUL
	}
	out := make([]byte, 0, size)
	for i := len(heads) - 1; i >= 0; i-- {
		out = append(out, heads[i]...)
	}
	out = append(out, leaf...)
	out = append(out, make([]byte, 2*levels)...)
	return out
}

func le32(n int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(n)) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// deepInputs are filters nested levels deep in each form untrusted input
// takes, with the depth of each.
func deepInputs(levels int) []struct {
	name  string
	give  any
	depth int
} {
	var d any = bson.D{{Key: "a", Value: 1}}
	var m any = bson.M{"a": 1}
	var j any = map[string]any{"a": 1.0}
	var arr any = 1
	var field any = 1
	for range levels {
		d = bson.D{{Key: "$or", Value: bson.A{d}}}
		m = bson.M{"$or": bson.A{m}}
		j = map[string]any{"$or": []any{j}}
		arr = bson.A{arr}
		field = map[string]any{"a": field}
	}
	return []struct {
		name  string
		give  any
		depth int
	}{
		{"raw $or", deepOr(levels), 2*levels + 1},
		{"raw arrays under a field", deepArray(levels), levels + 1},
		{"bson.D $or", d, 2*levels + 1},
		{"bson.M $or", m, 2*levels + 1},
		{"map[string]any $or (encoding/json)", j, 2*levels + 1},
		{"bson.A under a field", bson.D{{Key: "a", Value: arr}}, levels + 1},
		{"documents under a field", map[string]any{"f": field}, levels + 1},
	}
}

// TestSanitizeRefusesDeepInput: an input nested more than 100 levels deep
// (MongoDB refuses such documents, so none is a filter) is refused with
// ErrInvalidValue, and fast: 30,000 levels took 47 s of CPU as raw BSON and
// 0.34 s per call at 5,000 levels as a map before the limit. The work is
// bounded by the limit, not the input: a handful of allocations and well
// under a second on a loaded machine.
func TestSanitizeRefusesDeepInput(t *testing.T) {
	for _, tt := range deepInputs(30_000) {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			f := query.Sanitize(tt.give)
			took := time.Since(start)
			require.ErrorIs(t, f.Err(), query.ErrInvalidValue)
			assert.Contains(t, f.Err().Error(), "100 levels")
			assert.Less(t, took, time.Second, "refused in time bounded by the limit, not the input")
			allocs := testing.AllocsPerRun(3, func() { _ = query.Sanitize(tt.give) })
			assert.LessOrEqual(t, allocs, 10.0, "nothing past the limit is encoded or copied")
		})
	}
}

// TestSanitizeDepthLimit: depth 100 passes, 101 is refused, in every form.
func TestSanitizeDepthLimit(t *testing.T) {
	// Depth 2*levels+1 for $or forms (99, 101, 199, 201), levels+1 for the
	// others (50, 51, 100, 101).
	for _, levels := range []int{49, 50, maxDepth - 1, maxDepth} {
		for _, tt := range deepInputs(levels) {
			t.Run(tt.name, func(t *testing.T) {
				f := query.Sanitize(tt.give)
				if tt.depth > maxDepth {
					require.ErrorIs(t, f.Err(), query.ErrInvalidValue, "depth %d", tt.depth)
					return
				}
				require.NoError(t, f.Err(), "depth %d", tt.depth)
			})
		}
	}
	at := func(levels int) any { // {"$or": […]} nested to depth 2*levels+1, then {"a": {"b": 1}}
		var d any = bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}
		for range levels {
			d = bson.D{{Key: "$or", Value: bson.A{d}}}
		}
		return d
	}
	require.NoError(t, query.Sanitize(at((maxDepth-2)/2)).Err(), "depth 100")
	err := query.Sanitize(at(maxDepth / 2)).Err()
	require.ErrorIs(t, err, query.ErrInvalidValue, "depth 102")
	assert.True(t, strings.Contains(err.Error(), "100 levels"), err.Error())
}

// TestSanitizeAtDepthLimitAgainstTheServer: a filter exactly 100 levels
// deep is a filter: sanitized, it runs and matches.
func TestSanitizeAtDepthLimitAgainstTheServer(t *testing.T) {
	coll := usersColl(t, 1)
	ctx := context.Background()
	// A document whose field "deep" is 99 levels deep: the document is 100.
	var v any = 1
	for range maxDepth - 2 {
		v = bson.D{{Key: "x", Value: v}}
	}
	_, err := coll.InsertOne(ctx, bson.D{{Key: "name", Value: "deep"}, {Key: "deep", Value: v}})
	require.NoError(t, err)
	h := handle[User](t, coll)
	f := query.Sanitize(bson.D{{Key: "deep", Value: v}})
	require.NoError(t, f.Err(), "a filter 100 levels deep")
	got, err := h.FindMany(ctx, f)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "deep", got[0].Name)

	// The same value under $or, nested as deep as fits (the value is 99
	// levels below its field, so one $or level takes the filter past 100).
	or := query.Sanitize(bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "deep", Value: v}}}}})
	require.ErrorIs(t, or.Err(), query.ErrInvalidValue)
}

// TestSanitizeCostIsLinear: the memory Sanitize allocates per input byte
// does not grow with depth (building each level's path string made it
// grow with the depth, and the time with its square).
func TestSanitizeCostIsLinear(t *testing.T) {
	perByte := func(levels int) float64 {
		in := deepOr(levels)
		require.NoError(t, query.Sanitize(in).Err())
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 20
		for range runs {
			_ = query.Sanitize(in)
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / runs / float64(len(in))
	}
	shallow, deep := perByte(6), perByte(49) // depth 13 and 99
	t.Logf("bytes allocated per input byte: %.1f at depth 13, %.1f at depth 99", shallow, deep)
	assert.Less(t, deep, 1.5*shallow, "allocation per input byte grows with depth")
}

// FuzzSanitizeDepth: whatever the shape, in every form untrusted input
// takes and as raw BSON, a filter is refused with ErrInvalidValue exactly
// when it is nested more than 100 levels deep, and both forms agree.
func FuzzSanitizeDepth(f *testing.F) {
	for _, s := range [][]byte{
		{0}, {1, 2, 3, 4, 5}, {0xff, 0xff, 0xff, 0x10}, // 32 levels per byte at most: 3*32+1+1 = 98 deep
		{0xff, 0xff, 0xff, 0x18}, {0xff, 0xff, 0xff, 0x20}, {0xfe, 0xfd, 0xfc, 0xfb, 0xfa},
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, shape []byte, or bool) {
		// Each byte wraps the value built so far, from the inside out, in
		// 1 + b>>3 levels of one of five kinds.
		var v any = "leaf"
		depth := 0 // of v: 0 for a scalar
		for _, b := range shape {
			for range 1 + int(b>>3) {
				switch b % 5 {
				case 0:
					v = bson.A{v}
				case 1:
					v = map[string]any{"a": v}
				case 2:
					v = bson.D{{Key: "a", Value: v}}
				case 3:
					v = []any{1, v}
				case 4:
					v = bson.M{"a": v}
				}
				depth++
			}
		}
		var filter any = bson.D{{Key: "f", Value: v}}
		depth++
		if or {
			filter = map[string]any{"$or": []any{filter}}
			depth += 2
		}
		raw, err := bson.Marshal(filter)
		require.NoError(t, err)
		for _, in := range []any{filter, bson.Raw(raw)} {
			err := query.Sanitize(in).Err()
			if depth > maxDepth {
				require.ErrorIs(t, err, query.ErrInvalidValue, "depth %d", depth)
				require.Contains(t, err.Error(), "100 levels")
			} else {
				require.NoError(t, err, "depth %d", depth)
			}
		}
	})
}
