package cachecore

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"reflect"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Point reads. A cached read whose filter confines it to documents of known
// _id (a top-level {_id: v}, {_id: {$eq: v}} or {_id: {$in: [...]}}, with
// or without other conditions) depends on those documents only. Its key
// holds, instead of the collection's generation, the generation of the
// collection's writes that were not confined to known ids ("wide" writes)
// and the generations of its ids. A write by _id (odm's Save, Replace and
// Delete, an insert, an update or delete whose filter names its _ids) bumps
// only its ids' generations and the collection's own; so a point read of
// other ids stays a hit, and every other read misses as before.
//
// Ids are kept as idBuckets counters per collection, indexed by a hash of
// the id: two ids in one bucket invalidate each other, never too little.
// Only ids whose equality does not depend on a collation take part
// (ObjectIDs, numbers, binaries; numbers compare by value, so int32(1),
// int64(1) and 1.0 share a bucket); reads and writes by string ids (which a
// collection's default collation could match case-insensitively), or by
// documents, keep the collection-wide rule.

const idBuckets = 4096

var idSeed = maphash.MakeSeed()

// pointBuckets returns the buckets of the ids filter confines its matches
// to, and whether it does.
func pointBuckets(filter any, dst []uint32) ([]uint32, bool) {
	switch f := filter.(type) {
	case bson.D:
		// Every _id key counts (a filter with the key twice is confined to
		// the ids of either): the union of their buckets.
		found := false
		for _, e := range f {
			if e.Key == "_id" {
				var ok bool
				if dst, ok = idValueBuckets(e.Value, dst); !ok {
					return dst, false
				}
				found = true
			}
		}
		return dst, found
	case bson.M:
		if v, ok := f["_id"]; ok {
			return idValueBuckets(v, dst)
		}
	case map[string]any:
		if v, ok := f["_id"]; ok {
			return idValueBuckets(v, dst)
		}
	case bson.Raw:
		elems, err := f.Elements()
		if err != nil {
			return dst, false
		}
		found := false
		for _, e := range elems {
			if e.Key() == "_id" {
				var ok bool
				if dst, ok = idValueBuckets(e.Value(), dst); !ok {
					return dst, false
				}
				found = true
			}
		}
		return dst, found
	}
	return dst, false
}

// idValueBuckets reads the value of a filter's _id: an id, or an $eq or
// $in operator document.
func idValueBuckets(v any, dst []uint32) ([]uint32, bool) {
	if b, ok := bucketOf(v); ok {
		return append(dst, b), true
	}
	var op string
	var arg any
	switch d := v.(type) {
	case bson.D:
		if len(d) != 1 {
			return dst, false
		}
		op, arg = d[0].Key, d[0].Value
	case bson.M:
		if len(d) != 1 {
			return dst, false
		}
		for k, a := range d {
			op, arg = k, a
		}
	case map[string]any:
		if len(d) != 1 {
			return dst, false
		}
		for k, a := range d {
			op, arg = k, a
		}
	case bson.RawValue:
		doc, ok := d.DocumentOK()
		if !ok {
			return dst, false
		}
		elems, err := doc.Elements()
		if err != nil || len(elems) != 1 {
			return dst, false
		}
		op, arg = elems[0].Key(), elems[0].Value()
	default:
		return dst, false
	}
	switch op {
	case "$eq":
		b, ok := bucketOf(arg)
		return append(dst, b), ok
	case "$in":
		return inBuckets(arg, dst)
	}
	return dst, false
}

func inBuckets(arg any, dst []uint32) ([]uint32, bool) {
	switch a := arg.(type) {
	case bson.A:
		return sliceBuckets(a, dst)
	case []any:
		return sliceBuckets(a, dst)
	case bson.RawValue:
		arr, ok := a.ArrayOK()
		if !ok {
			return dst, false
		}
		vals, err := arr.Values()
		if err != nil {
			return dst, false
		}
		for _, v := range vals {
			b, ok := bucketOf(v)
			if !ok {
				return dst, false
			}
			dst = append(dst, b)
		}
		return dst, true
	}
	rv := reflect.ValueOf(arg) // a typed slice, as query.In builds from []bson.ObjectID
	if rv.Kind() != reflect.Slice {
		return dst, false
	}
	for i := range rv.Len() {
		b, ok := bucketOf(rv.Index(i).Interface())
		if !ok {
			return dst, false
		}
		dst = append(dst, b)
	}
	return dst, true
}

func sliceBuckets(a []any, dst []uint32) ([]uint32, bool) {
	for _, v := range a {
		b, ok := bucketOf(v)
		if !ok {
			return dst, false
		}
		dst = append(dst, b)
	}
	return dst, true
}

// bucketOf returns the bucket of an id that takes part in point reads.
func bucketOf(v any) (uint32, bool) {
	var h maphash.Hash
	h.SetSeed(idSeed)
	switch x := v.(type) {
	case bson.ObjectID:
		h.WriteByte(7)
		h.Write(x[:])
	case bson.Binary:
		h.WriteByte(5)
		h.WriteByte(x.Subtype)
		h.Write(x.Data)
	case int:
		return numberBucket(&h, float64(x))
	case int8:
		return numberBucket(&h, float64(x))
	case int16:
		return numberBucket(&h, float64(x))
	case int32:
		return numberBucket(&h, float64(x))
	case int64:
		return numberBucket(&h, float64(x))
	case uint8:
		return numberBucket(&h, float64(x))
	case uint16:
		return numberBucket(&h, float64(x))
	case uint32:
		return numberBucket(&h, float64(x))
	case uint64:
		return numberBucket(&h, float64(x))
	case uint:
		return numberBucket(&h, float64(x))
	case float32:
		return numberBucket(&h, float64(x))
	case float64:
		return numberBucket(&h, x)
	case bson.Decimal128:
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return 0, false
		}
		return numberBucket(&h, f)
	case bson.RawValue:
		// The OK forms: a malformed value is no id, never a panic.
		switch x.Type {
		case bson.TypeObjectID:
			if v, ok := x.ObjectIDOK(); ok {
				return bucketOf(v)
			}
		case bson.TypeInt32:
			if v, ok := x.Int32OK(); ok {
				return bucketOf(v)
			}
		case bson.TypeInt64:
			if v, ok := x.Int64OK(); ok {
				return bucketOf(v)
			}
		case bson.TypeDouble:
			if v, ok := x.DoubleOK(); ok {
				return bucketOf(v)
			}
		case bson.TypeDecimal128:
			if v, ok := x.Decimal128OK(); ok {
				return bucketOf(v)
			}
		case bson.TypeBinary:
			if st, data, ok := x.BinaryOK(); ok {
				return bucketOf(bson.Binary{Subtype: st, Data: data})
			}
		}
		return 0, false
	default:
		return 0, false
	}
	return uint32(h.Sum64() % idBuckets), true
}

// numberBucket hashes a number by value: every numeric type of an equal
// value lands in one bucket (a float64 rounding can only merge buckets).
func numberBucket(h *maphash.Hash, f float64) (uint32, bool) {
	if math.IsNaN(f) {
		return 0, false
	}
	if f == 0 {
		f = 0 // -0 equals 0
	}
	h.WriteByte(1)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
	h.Write(b[:])
	return uint32(h.Sum64() % idBuckets), true
}
