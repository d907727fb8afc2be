package encode

import (
	"reflect"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Native reports whether a Plan's bytes for values of t are what the
// driver stores for a client with registry reg and BSON options opts
// (either may be nil, for the defaults). The Plan encodes as the default
// registry does, so it is not when any encoding option is set, when reg
// encodes a type that t reaches with another codec than the default
// registry's, or when t reaches an interface (whose dynamic values reg may
// encode its own way). Where Native is false, odm hands the values to the
// driver, which encodes them with the client's own settings.
func Native(t reflect.Type, reg *bson.Registry, opts *options.BSONOptions) bool {
	if opts != nil && (opts.ErrorOnInlineDuplicates || opts.IntMinSize || opts.NilByteSliceAsEmpty ||
		opts.NilMapAsEmpty || opts.NilSliceAsEmpty || opts.OmitZeroStruct || opts.OmitEmpty ||
		opts.StringifyMapKeysWithFmt || opts.UseJSONStructTags) {
		return false
	}
	if reg == nil {
		return true
	}
	k := nativeKey{t, reg}
	if v, ok := nativeCache.Load(k); ok {
		return v.(bool)
	}
	v := !reaches(t, map[reflect.Type]bool{}, func(x reflect.Type) bool {
		return x.Kind() == reflect.Interface || customEncoder(reg, x)
	})
	nativeCache.Store(k, v)
	return v
}

type nativeKey struct {
	t   reflect.Type
	reg *bson.Registry
}

var (
	nativeCache     sync.Map // nativeKey → bool
	defaultRegistry = bson.NewRegistry()
)

// reaches reports whether t or a type inside it satisfies hit.
func reaches(t reflect.Type, seen map[reflect.Type]bool, hit func(reflect.Type) bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if hit(t) {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return reaches(t.Elem(), seen, hit)
	case reflect.Map:
		return reaches(t.Key(), seen, hit) || reaches(t.Elem(), seen, hit)
	case reflect.Struct:
		for i := range t.NumField() {
			if sf := t.Field(i); sf.IsExported() || sf.Anonymous {
				if reaches(sf.Type, seen, hit) {
					return true
				}
			}
		}
	}
	return false
}

// customEncoder reports whether reg encodes t with another codec than the
// default registry: the same dynamic type (and, for functions, the same
// function) is taken as the same codec, as in package decode.
func customEncoder(reg *bson.Registry, t reflect.Type) bool {
	a, aerr := reg.LookupEncoder(t)
	b, berr := defaultRegistry.LookupEncoder(t)
	if (aerr == nil) != (berr == nil) {
		return true
	}
	if aerr != nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return true
	}
	return ta != nil && ta.Kind() == reflect.Func && reflect.ValueOf(a).Pointer() != reflect.ValueOf(b).Pointer()
}
