package decode_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/decode"
)

// TestAllocBudget makes "allocations only for what the result owns" a tested
// claim: decoding into a reused destination costs one allocation for all the
// strings of a document (their chunk is sized from the previous documents),
// and none in zero-copy mode, including slices whose capacity is reused.
func TestAllocBudget(t *testing.T) {
	small := docOf(bson.D{{Key: "_id", Value: oid}, {Key: "name", Value: "Ada"}, {Key: "email", Value: "a@x"}, {Key: "age", Value: int32(36)}})
	medium := docOf(mediumDoc()) // 3 + 4 tags + 4 address + 2 skus + notes = 14 strings

	tests := []struct {
		name     string
		doc      []byte
		decode   func(doc []byte) error
		maxAlloc float64
	}{
		{"small copies 2 strings", small, decoder[Small](), 1},
		{"small zero-copy", small, decoder[Small](decode.ZeroCopy()), 0},
		{"medium copies 14 strings", medium, decoder[Medium](), 1},
		{"medium zero-copy", medium, decoder[Medium](decode.ZeroCopy()), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.decode(tt.doc)) // warm: plan, slice capacity
			allocs := testing.AllocsPerRun(100, func() {
				if err := tt.decode(tt.doc); err != nil {
					t.Fatal(err)
				}
			})
			assert.LessOrEqual(t, allocs, tt.maxAlloc)
		})
	}
}

func decoder[T any](opts ...decode.Option) func([]byte) error {
	plan := decode.MustCompile[T](opts...)
	var dst T
	return func(doc []byte) error { return plan.Decode(doc, &dst) }
}

// TestArenaSharesStringChunks: with an Arena the strings of many documents
// share chunks (a 2 KiB chunk holds about fifty small documents' strings),
// and a string decoded earlier is never overwritten by a later document.
func TestArenaSharesStringChunks(t *testing.T) {
	plan := decode.MustCompile[Small]()
	docs := make([][]byte, 100)
	for i := range docs {
		docs[i] = docOf(bson.D{{Key: "_id", Value: oid}, {Key: "name", Value: "user " + string(rune('a'+i%26))},
			{Key: "email", Value: "u@example.com"}, {Key: "age", Value: int32(i)}})
	}
	out := make([]Small, len(docs))
	var arena decode.Arena
	allocs := testing.AllocsPerRun(20, func() {
		for i, d := range docs {
			if err := plan.DecodeWith(d, &out[i], &arena); err != nil {
				t.Fatal(err)
			}
		}
	})
	assert.LessOrEqual(t, allocs, 3.0, "100 documents' strings in a few chunks, not one each")

	// Every value is what Decode gives, after all of them were decoded.
	for i, d := range docs {
		var want Small
		require.NoError(t, plan.Decode(d, &want))
		assert.Equal(t, want, out[i], "document %d", i)
	}
	assert.NoError(t, plan.DecodeWith(docs[0], &out[0], nil), "a nil Arena is Decode")

	// Medium documents: their strings and their short slices (tags, items)
	// come from the Arena too.
	mplan := decode.MustCompile[Medium]()
	medium := docOf(mediumDoc())
	mout := make([]Medium, 100)
	allocs = testing.AllocsPerRun(20, func() {
		clear(mout) // fresh destinations: every slice is a new one
		for i := range mout {
			if err := mplan.DecodeWith(medium, &mout[i], &arena); err != nil {
				t.Fatal(err)
			}
		}
	})
	assert.LessOrEqual(t, allocs, 30.0, "100 medium documents in a few dozen chunks and slabs, not 3 allocations each")
	var want Medium
	require.NoError(t, mplan.Decode(medium, &want))
	for i := range mout {
		require.Equal(t, want, mout[i], "document %d", i)
	}
}
