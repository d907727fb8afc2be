package odm

import (
	"errors"
	"reflect"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Go maps encode in a random field order, and MongoDB compares embedded
// documents field by field, in order: a filter or a document holding a map
// may be encoded one way for the driver and another way for the cache's
// rules, which would then judge a write the server did not run. So a
// filter that holds a map is encoded once (pin) and the same bytes are
// sent and judged, and a document that holds one is not given to the rules
// at all (they take it for "any document"). Found by an independent tester:
// odm's TestMapsAreJudgedAsSent.

// errMapOrder is why a document that holds a map is not given to the
// rules.
var errMapOrder = errors.New("odm: the document holds a map, encoded in an order not known here")

// maxWalk bounds holdsMap's walk; deeper values count as holding a map.
const maxWalk = 100

// holdsMap reports whether v holds a Go map of more than one field the
// encoder would write, at any depth. The common filter types are walked
// without reflect, so that a cached read's filter costs no allocation.
func holdsMap(v any, depth int) bool {
	if depth > maxWalk {
		return true
	}
	switch x := v.(type) {
	case nil, string, bool, int, int32, int64, float64, bson.ObjectID, bson.Raw, []byte:
		return false
	case bson.M:
		return mapHolds(x, depth)
	case map[string]any:
		return mapHolds(x, depth)
	case bson.D:
		for _, e := range x {
			if holdsMap(e.Value, depth+1) {
				return true
			}
		}
		return false
	case bson.A:
		for _, e := range x {
			if holdsMap(e, depth+1) {
				return true
			}
		}
		return false
	case []any:
		return holdsMap(bson.A(x), depth)
	}
	return holdsMapValue(reflect.ValueOf(v), depth)
}

func mapHolds(m map[string]any, depth int) bool {
	if len(m) > 1 {
		return true
	}
	for _, x := range m {
		return holdsMap(x, depth+1)
	}
	return false
}

// holdsMapValue is holdsMap for any other type, by reflect.
func holdsMapValue(v reflect.Value, depth int) bool {
	if depth > maxWalk {
		return true
	}
	switch v.Kind() {
	case reflect.Map:
		return v.Len() > 1 || (v.Len() == 1 && holdsMapValue(v.MapIndex(v.MapKeys()[0]), depth+1))
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && holdsMapValue(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return false // bytes: bson.Raw, binary
		}
		for i := range v.Len() {
			if holdsMapValue(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if t.Field(i).IsExported() && holdsMapValue(v.Field(i), depth+1) {
				return true
			}
		}
	}
	return false
}

// typeMayHoldMap reports whether a value of t can hold a Go map: a map, an
// interface, or a type made of one (seen guards recursive types).
func typeMayHoldMap(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return typeMayHoldMap(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && typeMayHoldMap(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// pinLater returns, when a cached read's filter f holds a map, the func
// that encodes it once (pin) for both its load and its Key.Sent, so that
// the rules read the bytes sent; nil otherwise (f goes as it is). A hit,
// which neither loads nor reads its filter, encodes nothing.
func pinLater(f any, reg *bson.Registry, opts *options.BSONOptions) func() any {
	if !holdsMap(f, 0) {
		return nil
	}
	var once sync.Once
	var pinned any
	return func() any {
		once.Do(func() { pinned, _ = pin(f, reg, opts) })
		return pinned
	}
}

// sending is the filter a load sends: f, or its pinned form.
func sending(f any, pinned func() any) any {
	if pinned != nil {
		return pinned()
	}
	return f
}

// pinPipeline is pin for an aggregation pipeline (a slice of stages): each
// stage is encoded once, into a bson.A of bson.Raw that the driver sends
// as it is.
func pinPipeline(p any, reg *bson.Registry, opts *options.BSONOptions) (any, bool) {
	if !holdsMap(p, 0) {
		return p, false
	}
	rv := reflect.ValueOf(p)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return p, false // the driver will say what is wrong with it
	}
	out := make(bson.A, rv.Len())
	for i := range out {
		raw, err := marshal(rv.Index(i).Interface(), reg, opts)
		if err != nil {
			return p, false
		}
		out[i] = raw
	}
	return out, true
}

// pin returns v encoded, and true, when it holds a map of more than one
// field (so that the driver sends the bytes the rules judge), and v
// otherwise. A value it cannot encode is returned as it is: the driver
// will say why.
func pin(v any, reg *bson.Registry, opts *options.BSONOptions) (any, bool) {
	if !holdsMap(v, 0) {
		return v, false
	}
	raw, err := marshal(v, reg, opts)
	if err != nil {
		return v, false
	}
	return raw, true
}
