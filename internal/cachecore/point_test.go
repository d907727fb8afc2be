package cachecore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestPointBuckets: which filters count as point reads (or confined
// writes), and which ids share a bucket. Pure bookkeeping, no server.
func TestPointBuckets(t *testing.T) {
	oid, other := bson.NewObjectID(), bson.NewObjectID()
	rawFilter, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{oid, int32(3)}}}}})
	tests := []struct {
		name  string
		give  any
		point bool
		n     int
	}{
		{"{_id: oid}", bson.D{{Key: "_id", Value: oid}}, true, 1},
		{"{_id: {$eq: oid}}", bson.D{{Key: "_id", Value: bson.D{{Key: "$eq", Value: oid}}}}, true, 1},
		{"{_id: {$in: [..]}}", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{oid, other}}}}}, true, 2},
		{"$in of a typed slice", bson.M{"_id": bson.M{"$in": []bson.ObjectID{oid, other}}}, true, 2},
		{"with other conditions", bson.D{{Key: "status", Value: "a"}, {Key: "_id", Value: int64(7)}}, true, 1},
		{"raw command filter", bson.Raw(rawFilter), true, 2},
		{"empty $in", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}}, true, 0},
		{"string id (collation-dependent)", bson.D{{Key: "_id", Value: "abc"}}, false, 0},
		{"document id", bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: 1}}}}, false, 0},
		{"range on _id", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: oid}}}}, false, 0},
		{"two operators", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 1}, {Key: "$lte", Value: 1}}}}, false, 0},
		{"$in with a string", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{oid, "x"}}}}}, false, 0},
		{"no _id", bson.D{{Key: "name", Value: "x"}}, false, 0},
		{"nil", nil, false, 0},
		{"_id twice: both count", bson.D{{Key: "_id", Value: int32(1)}, {Key: "_id", Value: int32(2)}}, true, 2},
		{"_id twice, one not point", bson.D{{Key: "_id", Value: int32(1)}, {Key: "_id", Value: "x"}}, false, 0},
		{"NaN", bson.D{{Key: "_id", Value: bson.D{{Key: "$eq", Value: nan()}}}}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := pointBuckets(tt.give, nil)
			assert.Equal(t, tt.point, ok)
			if ok {
				assert.Len(t, b, tt.n)
			}
		})
	}
	// Numbers compare by value: every numeric type of one value, one bucket.
	want, _ := bucketOf(int32(42))
	for _, v := range []any{int64(42), 42.0, float32(42), uint8(42), 42, bson.NewDecimal128(0x3040000000000000, 42)} {
		got, ok := bucketOf(v)
		assert.True(t, ok, "%T", v)
		assert.Equal(t, want, got, "%T(%v)", v, v)
	}
	z, _ := bucketOf(0.0)
	nz, _ := bucketOf(negZero())
	assert.Equal(t, z, nz, "-0 equals 0")
}

func nan() float64 { var z float64; return z / z }

func negZero() float64 { var z float64; return -z }

// TestPointBucketsMalformed: a raw id value too short for its type is no
// id (the read or write is collection-wide), never a panic.
func TestPointBucketsMalformed(t *testing.T) {
	for _, typ := range []bson.Type{bson.TypeObjectID, bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128, bson.TypeBinary} {
		_, ok := bucketOf(bson.RawValue{Type: typ, Value: []byte{1}})
		assert.False(t, ok, "%v", typ)
	}
}
