package odm

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestHoldsMap: which values encode in an order this package cannot know
// (a Go map of more than one field, at any depth), and that the common
// filter shapes are walked without allocating (a cached read's filter is
// walked on every hit). Values built by hand: pure code.
func TestHoldsMap(t *testing.T) {
	type inner struct{ M map[string]int }
	type outer struct {
		I   inner
		Any any
		un  map[string]int // not encoded, so not walked
	}
	tests := []struct {
		name string
		give any
		want bool
	}{
		{"nil", nil, false},
		{"bson.D of scalars", bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}, false},
		{"one-field bson.M", bson.M{"status": "paid"}, false},
		{"two-field bson.M", bson.M{"a": 1, "b": 2}, true},
		{"two-field map under bson.D", bson.D{{Key: "mm", Value: bson.M{"a": 1, "b": 2}}}, true},
		{"under $in", bson.D{{Key: "v", Value: bson.D{{Key: "$in", Value: bson.A{bson.M{"a": 1, "b": 2}}}}}}, true},
		{"one-field map holding two", bson.M{"x": map[string]any{"a": 1, "b": 2}}, true},
		{"struct field", outer{I: inner{M: map[string]int{"a": 1, "b": 2}}}, true},
		{"interface field", &outer{Any: bson.M{"a": 1, "b": 2}}, true},
		{"unexported field", outer{un: map[string]int{"a": 1, "b": 2}}, false},
		{"bson.Raw", bson.Raw{5, 0, 0, 0, 0}, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, holdsMap(tt.give, 0), tt.name)
	}
	for _, v := range []any{bson.M{"status": "paid"}, bson.D{{Key: "a", Value: bson.D{{Key: "$gt", Value: 2}}}}} {
		assert.Zero(t, testing.AllocsPerRun(100, func() { holdsMap(v, 0) }), "%v", v)
	}
	assert.True(t, typeMayHoldMap(reflect.TypeFor[outer](), map[reflect.Type]bool{}))
	assert.False(t, typeMayHoldMap(reflect.TypeFor[struct {
		A int
		B []string
		C *struct{ D bson.ObjectID }
	}](), map[reflect.Type]bool{}))
}
