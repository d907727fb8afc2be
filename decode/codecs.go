package decode

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A client connected with options.Client().SetRegistry(reg) or
// SetBSONOptions(opts) decodes differently from bson.Unmarshal: custom
// codecs, type-map entries, local time zones, bson.M for nested documents…
// The driver gives no way to read those settings back from a client, so a
// caller declares them (WithRegistry, WithBSONOptions; the query package
// takes them once per client), and decode then produces what the driver
// would with them:
//
//   - a type whose codec in reg differs from the default registry's (a
//     registered type or kind codec) is handed to the driver with reg;
//   - every delegated value (interface{} and its type map, bson.M, a
//     conversion such as an ObjectID into a string with
//     ObjectIDAsHexString) is decoded by a decoder configured as the
//     driver configures its own for the client;
//   - AllowTruncatingDoubles is the truncate flag on every field;
//     UseLocalTimeZone hands time.Time values to the driver;
//     UseJSONStructTags hands structs to the driver;
//   - ZeroMaps and ZeroStructs change nothing: Decode resets first.
//
// Types the registry does not change keep the native decoder.

// env is what a plan follows besides the Go type: the registry and the
// decoding flags of a client's BSONOptions. The zero env is the driver's
// default.
type env struct {
	reg   *bson.Registry // nil: the default registry
	flags decodeFlags
}

type decodeFlags uint16

const (
	flagTruncate decodeFlags = 1 << iota
	flagBinaryAsSlice
	flagDefaultDocumentM
	flagDefaultDocumentMap
	flagObjectIDAsHex
	flagJSONTags
	flagLocalTime
	flagZeroMaps
	flagZeroStructs
)

func flagsOf(o *options.BSONOptions) decodeFlags {
	if o == nil {
		return 0
	}
	var f decodeFlags
	set := func(on bool, bit decodeFlags) {
		if on {
			f |= bit
		}
	}
	set(o.AllowTruncatingDoubles, flagTruncate)
	set(o.BinaryAsSlice, flagBinaryAsSlice)
	set(o.DefaultDocumentM, flagDefaultDocumentM)
	set(o.DefaultDocumentMap, flagDefaultDocumentMap)
	set(o.ObjectIDAsHexString, flagObjectIDAsHex)
	set(o.UseJSONStructTags, flagJSONTags)
	set(o.UseLocalTimeZone, flagLocalTime)
	set(o.ZeroMaps, flagZeroMaps)
	set(o.ZeroStructs, flagZeroStructs)
	return f
}

// WithRegistry makes the plan decode as the driver does with reg, the
// registry given to options.Client().SetRegistry (or to a database's or
// collection's options). Default: the driver's default registry, as
// bson.Unmarshal uses.
func WithRegistry(reg *bson.Registry) Option {
	return optionFunc(func(c *config) { c.env.reg = reg })
}

// WithBSONOptions makes the plan decode as the driver does for a client
// connected with SetBSONOptions(opts); its encoding fields are ignored
// here. Default: none set, as bson.Unmarshal.
func WithBSONOptions(opts *options.BSONOptions) Option {
	return optionFunc(func(c *config) { c.env.flags = flagsOf(opts) })
}

// unmarshal decodes data into v as the driver does in this env, its panics
// turned into errors.
func (e env) unmarshal(data []byte, v any) (err error) {
	if e == (env{}) {
		return unmarshalSafely(data, v)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDriverPanic, r)
		}
	}()
	// As the driver's own getDecoder (mongo/cursor.go) configures it.
	dec := bson.NewDecoder(bson.NewDocumentReader(bytes.NewReader(data)))
	f := e.flags
	if f&flagTruncate != 0 {
		dec.AllowTruncatingDoubles()
	}
	if f&flagBinaryAsSlice != 0 {
		dec.BinaryAsSlice()
	}
	if f&flagDefaultDocumentM != 0 {
		dec.DefaultDocumentM()
	}
	if f&flagDefaultDocumentMap != 0 {
		dec.DefaultDocumentMap()
	}
	if f&flagObjectIDAsHex != 0 {
		dec.ObjectIDAsHexString()
	}
	if f&flagJSONTags != 0 {
		dec.UseJSONStructTags()
	}
	if f&flagLocalTime != 0 {
		dec.UseLocalTimeZone()
	}
	if f&flagZeroMaps != 0 {
		dec.ZeroMaps()
	}
	if f&flagZeroStructs != 0 {
		dec.ZeroStructs()
	}
	if e.reg != nil {
		dec.SetRegistry(e.reg)
	}
	return dec.Decode(v)
}

// delegates reports whether values of t must go to the driver in this env
// although the default env decodes them natively.
func (e env) delegates(t reflect.Type) bool {
	switch {
	case e.flags&flagLocalTime != 0 && t == tTime:
		return true
	case e.flags&flagJSONTags != 0 && t.Kind() == reflect.Struct:
		return true
	case e.reg != nil:
		return customDecoder(e.reg, t)
	}
	return false
}

var (
	defaultRegistry = bson.NewRegistry()
	customMu        sync.Mutex
	customCache     = map[customKey]bool{}
)

type customKey struct {
	reg *bson.Registry
	t   reflect.Type
}

// customDecoder reports whether reg decodes t with another codec than the
// default registry does: a type or kind codec registered on it.
func customDecoder(reg *bson.Registry, t reflect.Type) bool {
	k := customKey{reg, t}
	customMu.Lock()
	defer customMu.Unlock()
	if v, ok := customCache[k]; ok {
		return v
	}
	a, aerr := reg.LookupDecoder(t)
	b, berr := defaultRegistry.LookupDecoder(t)
	v := (aerr == nil) != (berr == nil) || (aerr == nil && !sameCodec(a, b))
	customCache[k] = v
	return v
}

// sameCodec reports whether two codecs looked up in two registries are the
// same implementation: the same dynamic type and, for function codecs, the
// same function. (The default registry's codecs carry no configuration of
// their own, so equal types behave alike.)
func sameCodec(a, b any) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta != nil && ta.Kind() == reflect.Func {
		return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
	}
	return true
}
