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
