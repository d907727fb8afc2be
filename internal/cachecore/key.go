package cachecore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Key identifies a cached read: everything that decides which documents
// the server returns. The Go result type is not part of it: entries hold raw
// BSON, decoded into the caller's type on every hit, so two types reading
// the same query share one entry.
type Key struct {
	// Scope separates results that the same query text can give
	// differently: the deployment (two servers with the same database and
	// collection names) and the collection's read preference and read
	// concern (a secondary read must never fill what a primary read then
	// gets). Entries of different scopes never meet. odm sets it with
	// Cache.ScopeOf; 0 is a scope of its own.
	Scope uint64
	// Op names what the result is, for results other than a find's
	// documents (query's Count uses "count"): the same filter counted and
	// found never shares an entry.
	Op                   string
	Database, Collection string
	// Also names the other collections ("db.coll") the result depends on,
	// such as those an aggregation's $lookup, $graphLookup or $unionWith
	// reads: a write to any of them invalidates it as a write to
	// Collection does.
	Also        []string
	Filter      any // bson.D, bson.M, map[string]any, bson.Raw, a struct, …
	Sort        any
	Projection  any
	Collation   any
	Hint        any // an index hint can change results (a sparse or partial index)
	Skip, Limit int64

	// Not part of the key: what the invalidation rules need to read the
	// query.

	// Client is the client the load reads through (nil: not known). The
	// rules take a cached document as a fact about a write only when the
	// writer's deployment is the one it was read from (Change.Writers);
	// the write observer learns from the loads it sees which clients read
	// from which servers.
	Client *mongo.Client
	// Encode encodes a query part as the driver sends it (with the
	// collection's registry); nil encodes with bson.Marshal.
	Encode func(v any) (bson.Raw, error)
	// Sent, when not nil, returns Filter as the load sends it, encoded by
	// the caller (odm encodes a filter or pipeline that holds a Go map
	// once, since a map's fields encode in a random order): the rules read
	// it instead of encoding Filter again. It is called only after a load,
	// never on a hit. The key stays Filter's, whose maps it sorts.
	Sent func() any
	// Simple: the query has no collation of its own, or "simple" (the
	// collection's default collation is Shape's). Otherwise the rules
	// treat every string comparison of the entry as undecided.
	Simple bool
	// Shape asks the server what the collection is (its default
	// collation; whether it is a view, and of what). Fetch calls it on a
	// miss, once per collection until a collection-wide invalidation
	// (a drop, a rename, a create). Nil: a collection of unknown collation.
	Shape func(ctx context.Context) (Shape, error)
}

// Shape is what the rules need to know of a collection.
type Shape struct {
	// Simple: the collection compares strings by the simple collation
	// unless a query or write says otherwise (it has no default
	// collation, or does not exist).
	Simple bool
	// View: it is a view, whose pipeline reads the collections of Reads
	// ("db.coll"). Writes are made to those, never to the view: a read of
	// the view is invalidated by any write to them.
	View  bool
	Reads []string
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// canonical returns q's key: a msgpack encoding of its parts
// in which maps have sorted keys and every other value is the exact BSON the
// driver would send. Two queries share a key exactly when the server would
// receive the same query (up to the order of map keys, which the driver does
// not fix either); int32(1) and int64(1) are different BSON and so different
// keys: a miss, never a wrong hit.
func (q Key) canonical() (string, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(buf)

	if err := enc.EncodeArrayLen(12); err != nil {
		return "", err
	}
	_ = enc.EncodeUint(q.Scope)
	_ = enc.EncodeString(q.Op)
	_ = enc.EncodeString(q.Database)
	_ = enc.EncodeString(q.Collection)
	_ = enc.EncodeArrayLen(len(q.Also))
	for _, ns := range q.Also {
		_ = enc.EncodeString(ns)
	}
	_ = enc.EncodeInt(q.Skip)
	_ = enc.EncodeInt(q.Limit)
	for _, v := range []any{q.Filter, q.Sort, q.Projection, q.Collation, q.Hint} {
		if err := encodeCanon(enc, v); err != nil {
			return "", err
		}
	}
	return buf.String(), nil
}

// encodeCanon writes a query part so that equal queries encode equally:
// documents keep their order (bson.D) or sort their keys (maps), and leaves
// are tagged with their BSON type and bytes. It writes straight to the
// encoder (a cache hit computes a key, so this is on the hit path).
func encodeCanon(enc *msgpack.Encoder, v any) error {
	switch x := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bson.D:
		if err := enc.EncodeArrayLen(1 + 2*len(x)); err != nil {
			return err
		}
		_ = enc.EncodeString("D")
		for _, e := range x {
			_ = enc.EncodeString(e.Key)
			if err := encodeCanon(enc, e.Value); err != nil {
				return err
			}
		}
		return nil
	case bson.M:
		return encodeMap(enc, x)
	case map[string]any:
		return encodeMap(enc, x)
	case bson.A:
		return encodeSlice(enc, x)
	case []any:
		return encodeSlice(enc, x)
	case bson.Raw:
		_ = enc.EncodeArrayLen(2)
		_ = enc.EncodeString("R")
		return enc.EncodeBytes(x)
	}
	if w, ok := enc.Writer().(*bytes.Buffer); ok && appendLeaf(w, v) {
		return nil
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return fmt.Errorf("cache: key part %T: %w", v, err)
	}
	_ = enc.EncodeArrayLen(3)
	_ = enc.EncodeString("V")
	_ = enc.EncodeUint(uint64(t))
	return enc.EncodeBytes(data)
}

func encodeMap(enc *msgpack.Encoder, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	_ = enc.EncodeArrayLen(2)
	_ = enc.EncodeString("M")
	if err := enc.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for _, k := range keys {
		_ = enc.EncodeString(k)
		if err := encodeCanon(enc, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func encodeSlice(enc *msgpack.Encoder, a []any) error {
	_ = enc.EncodeArrayLen(1 + len(a))
	_ = enc.EncodeString("A")
	for _, v := range a {
		if err := encodeCanon(enc, v); err != nil {
			return err
		}
	}
	return nil
}

// sent is the filter (or pipeline) as the load sends it.
func (q Key) sent() any {
	if q.Sent != nil {
		return q.Sent()
	}
	return q.Filter
}

// encode encodes a query part (a document) for the rules.
func (q Key) encode(v any) (bson.Raw, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bson.Raw:
		return x, nil
	}
	if q.Encode != nil {
		return q.Encode(v)
	}
	return bson.Marshal(v)
}

// appendLeaf writes the common leaf values (strings, integers, doubles,
// booleans, ObjectIDs) to the key exactly as encodeCanon's general case
// does, ["V", BSON type, BSON bytes] in msgpack, without bson.MarshalValue's
// allocations: a hit computes a key. It reports false for other values.
func appendLeaf(w *bytes.Buffer, v any) bool {
	var num [8]byte
	var t bson.Type
	var data []byte
	switch x := v.(type) {
	case string:
		n := len(x) + 5
		leafHead(w, bson.TypeString, n)
		binary.LittleEndian.PutUint32(num[:4], uint32(len(x)+1))
		w.Write(num[:4])
		w.WriteString(x)
		w.WriteByte(0)
		return true
	case int:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			t, data = bson.TypeInt32, binary.LittleEndian.AppendUint32(num[:0], uint32(int32(x)))
		} else {
			t, data = bson.TypeInt64, binary.LittleEndian.AppendUint64(num[:0], uint64(x))
		}
	case int32:
		t, data = bson.TypeInt32, binary.LittleEndian.AppendUint32(num[:0], uint32(x))
	case int64:
		t, data = bson.TypeInt64, binary.LittleEndian.AppendUint64(num[:0], uint64(x))
	case float64:
		t, data = bson.TypeDouble, binary.LittleEndian.AppendUint64(num[:0], math.Float64bits(x))
	case bool:
		t, data = bson.TypeBoolean, num[:1]
		if x {
			num[0] = 1
		}
	case bson.ObjectID:
		leafHead(w, bson.TypeObjectID, len(x))
		w.Write(x[:])
		return true
	default:
		return false
	}
	leafHead(w, t, len(data))
	w.Write(data)
	return true
}

// leafHead writes the msgpack of ["V", t, and the header of n bytes.
func leafHead(w *bytes.Buffer, t bson.Type, n int) {
	w.Write([]byte{0x93, 0xa1, 'V', byte(t)}) // fixarray 3, fixstr "V", positive fixint
	switch {
	case n < 1<<8:
		w.Write([]byte{0xc4, byte(n)})
	case n < 1<<16:
		w.Write([]byte{0xc5, byte(n >> 8), byte(n)})
	default:
		w.Write([]byte{0xc6, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
}
