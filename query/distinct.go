package query

import (
	"context"
	"encoding/binary"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/decode"
)

// valueOf is a one-field document, to decode a single value with decode's
// semantics (and the handle's codecs).
type valueOf[V any] struct {
	V V `bson:"v"`
}

// Distinct returns the distinct values of field among the documents of h's
// collection that match filter, decoded into V as a field of type V would
// be (with the handle's codecs). A field name that could be read as an
// operator is refused with ErrInvalidField, as filters refuse it. Collation
// and MaxTime apply; the other options are ignored.
//
//	teams, err := query.Distinct[string](ctx, users, "team", query.Gte("age", 18))
func Distinct[V, T any](ctx context.Context, h Handle[T], field string, filter any, opts ...Option) ([]V, error) {
	if h.coll == nil {
		return nil, ErrNotRegistered
	}
	if err := checkField(field); err != nil {
		return nil, fmt.Errorf("query: distinct: %w", err)
	}
	c := newConfig(opts)
	ctx, cancel := c.withMaxTime(ctx)
	defer cancel()
	f, err := normFilter(filter)
	if err != nil {
		return nil, err
	}
	o := options.Distinct()
	if c.collation != nil {
		o.SetCollation(c.collation)
	}
	res := h.coll.Distinct(ctx, field, f, o)
	arr, err := res.Raw()
	if err != nil {
		return nil, fmt.Errorf("query: distinct %s in %s: %w", field, h.coll.Name(), err)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("query: distinct %s in %s: %w", field, h.coll.Name(), err)
	}
	plan, err := decode.Compile[valueOf[V]](h.codecsInUse().decodeOptions()...)
	if err != nil {
		return nil, err
	}
	out := make([]V, len(vals))
	var buf []byte
	for i, v := range vals {
		buf = wrapValue(buf[:0], v)
		var w valueOf[V]
		if err := plan.Decode(buf, &w); err != nil {
			return nil, fmt.Errorf("query: distinct %s, value %d: %w", field, i, err)
		}
		out[i] = w.V
	}
	return out, nil
}

// wrapValue appends the document {v: value}.
func wrapValue(dst []byte, v bson.RawValue) []byte {
	size := 4 + 1 + 2 + len(v.Value) + 1
	dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
	dst = append(dst, byte(v.Type), 'v', 0)
	dst = append(dst, v.Value...)
	return append(dst, 0)
}

// EstimatedCount returns the collection's document count from its metadata
// (no filter, no scan): fast, and possibly off after an unclean shutdown or
// in a sharded cluster with orphaned documents. MaxTime applies.
func (h Handle[T]) EstimatedCount(ctx context.Context, opts ...Option) (int64, error) {
	if h.coll == nil {
		return 0, ErrNotRegistered
	}
	c := newConfig(opts)
	ctx, cancel := c.withMaxTime(ctx)
	defer cancel()
	n, err := h.coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("query: estimated count of %s: %w", h.coll.Name(), err)
	}
	return n, nil
}
