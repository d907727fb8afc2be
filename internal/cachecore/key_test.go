package cachecore

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func key(t *testing.T, q Key) string {
	t.Helper()
	k, err := q.canonical()
	require.NoError(t, err)
	return k
}

func TestKeyCanonicalisation(t *testing.T) {
	base := Key{Database: "db", Collection: "c"}
	with := func(f any) Key { q := base; q.Filter = f; return q }
	oid := bson.NewObjectID()

	tests := []struct {
		name string
		a, b Key
		same bool
	}{
		{"same bson.M content, built in another order",
			with(bson.M{"a": 1, "b": "x", "c": bson.M{"d": true, "e": 2.5}}),
			with(bson.M{"c": bson.M{"e": 2.5, "d": true}, "b": "x", "a": 1}), true},
		{"bson.M and map[string]any with the same content", with(bson.M{"a": 1}), with(map[string]any{"a": 1}), true},
		{"bson.D order is part of the query", with(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}}), with(bson.D{{Key: "b", Value: 2}, {Key: "a", Value: 1}}), false},
		{"int32(1) and int64(1) are different BSON", with(bson.M{"a": int32(1)}), with(bson.M{"a": int64(1)}), false},
		{"int and int32 marshal alike", with(bson.M{"a": 1}), with(bson.M{"a": int32(1)}), true},
		{"1 and 1.0", with(bson.M{"a": 1}), with(bson.M{"a": 1.0}), false},
		{"string and symbol-like string", with(bson.M{"a": "1"}), with(bson.M{"a": 1}), false},
		{"different values", with(bson.M{"a": 1}), with(bson.M{"a": 2}), false},
		{"different keys", with(bson.M{"a": 1}), with(bson.M{"b": 1}), false},
		{"map vs D", with(bson.M{"a": 1}), with(bson.D{{Key: "a", Value: 1}}), false},
		{"nested array order", with(bson.M{"a": bson.A{1, 2}}), with(bson.M{"a": bson.A{2, 1}}), false},
		{"ObjectIDs", with(bson.M{"_id": oid}), with(bson.M{"_id": oid}), true},
		{"Decimal128 values differ", with(bson.M{"a": bson.NewDecimal128(1, 1)}), with(bson.M{"a": bson.NewDecimal128(1, 2)}), false},
		{"times", with(bson.M{"t": time.Unix(1, 0)}), with(bson.M{"t": time.Unix(2, 0)}), false},
		{"nil and empty filter", with(nil), with(bson.D{}), false},
		{"different collection", with(bson.M{"a": 1}), Key{Database: "db", Collection: "d", Filter: bson.M{"a": 1}}, false},
		{"different database", with(bson.M{"a": 1}), Key{Database: "x", Collection: "c", Filter: bson.M{"a": 1}}, false},
		{"limit", Key{Database: "db", Collection: "c", Limit: 1}, Key{Database: "db", Collection: "c", Limit: 2}, false},
		{"skip", Key{Database: "db", Collection: "c", Skip: 1}, Key{Database: "db", Collection: "c"}, false},
		{"sort", Key{Database: "db", Collection: "c", Sort: bson.D{{Key: "a", Value: 1}}}, Key{Database: "db", Collection: "c", Sort: bson.D{{Key: "a", Value: -1}}}, false},
		{"projection", Key{Database: "db", Collection: "c", Projection: bson.M{"a": 1}}, Key{Database: "db", Collection: "c"}, false},
		{"collation", Key{Database: "db", Collection: "c", Collation: bson.M{"locale": "fr"}}, Key{Database: "db", Collection: "c"}, false},
		{"hint", Key{Database: "db", Collection: "c", Hint: "sparse_idx"}, Key{Database: "db", Collection: "c"}, false},
		{"count and find of one filter", Key{Op: "count", Database: "db", Collection: "c", Filter: bson.M{"a": 1}}, Key{Database: "db", Collection: "c", Filter: bson.M{"a": 1}}, false},
		{"scope", Key{Scope: 1, Database: "db", Collection: "c"}, Key{Scope: 2, Database: "db", Collection: "c"}, false},
		{"filter moved to projection", Key{Database: "db", Collection: "c", Filter: bson.M{"a": 1}}, Key{Database: "db", Collection: "c", Projection: bson.M{"a": 1}}, false},
		{"db.c vs d.b.c namespace split", Key{Database: "a.b", Collection: "c"}, Key{Database: "a", Collection: "b.c"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // map iteration order is random: try many
				ka, kb := key(t, tt.a), key(t, tt.b)
				if tt.same {
					require.Equal(t, ka, kb)
				} else {
					require.NotEqual(t, ka, kb)
				}
			}
		})
	}
}

func TestKeyUnencodable(t *testing.T) {
	_, err := Key{Filter: bson.M{"f": func() {}}}.canonical()
	assert.Error(t, err)
}

// TestLeafFastPath: the leaves a key writes without bson.MarshalValue are
// byte for byte what the general case writes.
func TestLeafFastPath(t *testing.T) {
	general := func(v any) []byte {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		tp, data, err := bson.MarshalValue(v)
		require.NoError(t, err)
		_ = enc.EncodeArrayLen(3)
		_ = enc.EncodeString("V")
		_ = enc.EncodeUint(uint64(tp))
		require.NoError(t, enc.EncodeBytes(data))
		return buf.Bytes()
	}
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70_000)
	for _, v := range []any{"", "paid", "with\x00nul", "é", long, huge, 0, 1, -1, math.MaxInt32, math.MaxInt32 + 1, math.MinInt32 - 1,
		int32(7), int64(7), int64(math.MinInt64), 0.0, math.Copysign(0, -1), 1.5, math.Inf(1), true, false, bson.NewObjectID()} {
		var buf bytes.Buffer
		require.True(t, appendLeaf(&buf, v), "%T", v)
		assert.Equal(t, general(v), buf.Bytes(), "%T %v", v, v)
	}
	assert.False(t, appendLeaf(&bytes.Buffer{}, uint8(1)))
}
