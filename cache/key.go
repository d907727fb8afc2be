package cache

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Query identifies a cached read: everything that decides which documents
// the server returns. The Go result type is not part of it: entries hold raw
// BSON, decoded into the caller's type on every hit, so two types reading
// the same query share one entry.
type Query struct {
	Database, Collection string
	Filter               any // bson.D, bson.M, map[string]any, bson.Raw, a struct, …
	Sort                 any
	Projection           any
	Collation            any
	Skip, Limit          int64
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// canonical returns q's key at generation g: a msgpack encoding of its parts
// in which maps have sorted keys and every other value is the exact BSON the
// driver would send. Two queries share a key exactly when the server would
// receive the same query (up to the order of map keys, which the driver does
// not fix either); int32(1) and int64(1) are different BSON and so different
// keys: a miss, never a wrong hit.
func (q Query) canonical(g uint64) (string, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(buf)
	enc.SetSortMapKeys(true)

	parts := []any{q.Database, q.Collection, g, q.Skip, q.Limit}
	for _, v := range []any{q.Filter, q.Sort, q.Projection, q.Collation} {
		c, err := canon(v)
		if err != nil {
			return "", err
		}
		parts = append(parts, c)
	}
	if err := enc.Encode(parts); err != nil {
		return "", fmt.Errorf("cache: encode key: %w", err)
	}
	return buf.String(), nil
}

// canon turns a query part into values msgpack encodes deterministically:
// documents keep their order (bson.D) or sort their keys (maps); leaves are
// tagged with their BSON type and bytes.
func canon(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bson.D:
		out := make([]any, 0, 1+2*len(x))
		out = append(out, "D")
		for _, e := range x {
			c, err := canon(e.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, e.Key, c)
		}
		return out, nil
	case bson.M:
		return canonMap(x)
	case map[string]any:
		return canonMap(x)
	case bson.A:
		return canonSlice(x)
	case []any:
		return canonSlice(x)
	case bson.Raw:
		return []any{"R", []byte(x)}, nil
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return nil, fmt.Errorf("cache: key part %T: %w", v, err)
	}
	return []any{"V", byte(t), data}, nil
}

func canonMap(m map[string]any) (any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		c, err := canon(v)
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return []any{"M", out}, nil
}

func canonSlice(a []any) (any, error) {
	out := make([]any, 0, 1+len(a))
	out = append(out, "A")
	for _, v := range a {
		c, err := canon(v)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
