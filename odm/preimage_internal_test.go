package odm

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestRefused: which errors of a findAndModify prove that it did not run,
// so that the plain command may be sent instead (its outcome is then the
// caller's), and which may hide a write that ran. The driver's errors are
// built by hand: a server cannot be made to answer each of them on demand
// (the dev server has no authorization, sharding or replication).
func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"duplicate key", mongo.CommandError{Code: 11000, Message: "E11000 duplicate key"}, true},
		{"unauthorized", mongo.CommandError{Code: 13, Name: "Unauthorized"}, true},
		{"shard key not found", mongo.CommandError{Code: 61, Name: "ShardKeyNotFound"}, true},
		{"wrapped", fmt.Errorf("odm: %w", mongo.CommandError{Code: 14}), true},
		{"the last try of a retryable write", mongo.CommandError{Code: 91, Labels: []string{"RetryableWriteError"}}, false},
		{"a network error", mongo.CommandError{Code: 0, Labels: []string{"NetworkError"}}, false},
		{"a write concern error: the write ran", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}, false},
		{"a cancelled context", context.Canceled, false},
		{"a deadline", context.DeadlineExceeded, false},
		{"nothing matched", mongo.ErrNoDocuments, false},
		{"no error", nil, false},
		{"another error", errors.New("boom"), false},
	} {
		assert.Equal(t, tc.want, refused(tc.err), tc.name)
	}
	assert.True(t, unprojected(mongo.CommandError{Code: 238, Message: `findAndModify: support for field "fields" with value … is not implemented yet`}))
	assert.False(t, unprojected(mongo.CommandError{Code: 238, Message: `support for field "hint" is not implemented yet`}))
	assert.False(t, unprojected(mongo.CommandError{Code: 11000, Message: "fields"}))
}

// TestNamesOneID: the filters a write with a pre-image may have, and the
// _id an upsert by them inserts. Filters built by hand: pure code.
func TestNamesOneID(t *testing.T) {
	raw := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		filter bson.D
		ok     bool
	}{
		{bson.D{{Key: "_id", Value: 7}}, true},
		{bson.D{{Key: "_id", Value: bson.D{{Key: "$eq", Value: 7}}}}, true},
		{bson.D{{Key: "_id", Value: 7}, {Key: "status", Value: "a"}}, true},
		{bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: 1}}}}, true}, // an embedded document _id
		{bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{7}}}}}, false},
		{bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 7}}}}, false},
		{bson.D{{Key: "_id", Value: bson.A{7}}}, false},
		{bson.D{{Key: "_id", Value: bson.Regex{Pattern: "^7"}}}, false},
		{bson.D{{Key: "_id", Value: bson.D{{Key: "$eq", Value: bson.A{7}}}}}, false},
		{bson.D{{Key: "status", Value: "a"}}, false},
		{bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "_id", Value: 7}}}}}, false},
	} {
		_, ok := namesOneID(raw(tc.filter))
		assert.Equal(t, tc.ok, ok, "%v", tc.filter)
	}
	_, ok := namesOneID(nil)
	assert.False(t, ok, "an unencodable filter")
}

// TestPreUpdatable: the updates whose count of modified documents a
// pre-image gives, and the top-level fields they change (projected).
func TestPreUpdatable(t *testing.T) {
	raw := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	touched, ok := preUpdatable(raw(bson.D{{Key: "$set", Value: bson.D{{Key: "a.b", Value: 1}}}, {Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}},
		{Key: "$unset", Value: bson.D{{Key: "x", Value: ""}}}, {Key: "$setOnInsert", Value: bson.D{{Key: "c", Value: 1}}}}))
	assert.True(t, ok)
	assert.Equal(t, []string{"a", "n", "x", "c"}, touched)
	for _, u := range []any{
		raw(bson.D{{Key: "$push", Value: bson.D{{Key: "a", Value: 1}}}}),
		raw(bson.D{{Key: "$set", Value: bson.D{{Key: "a.$.b", Value: 1}}}}),
		raw(bson.D{{Key: "$set", Value: bson.D{{Key: "a.$[x].b", Value: 1}}}}),
		raw(bson.D{{Key: "$max", Value: bson.D{{Key: "a", Value: 1}}}}),
		raw(bson.D{}),
		bson.A{bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}}, // a pipeline
	} {
		_, ok := preUpdatable(u)
		assert.False(t, ok, "%v", u)
	}
}
