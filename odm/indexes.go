package odm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Indexer is implemented by model types that declare their collection's
// indexes; it is found by type assertion on T or *T, as hooks are, and
// read by EnsureIndexes.
//
//	func (User) Indexes() []mongo.IndexModel {
//		return []mongo.IndexModel{{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)}}
//	}
type Indexer interface {
	Indexes() []mongo.IndexModel
}

// IndexConflictError reports a declared index that the collection already
// has in another form: the same name with other keys or options, or the
// same keys under another name. Nothing was changed for it: drop or rename
// the old index, or change the declaration.
type IndexConflictError struct {
	Collection string
	Index      mongo.IndexModel // the declaration
	Err        error            // the server's error
}

// Error implements error.
func (e *IndexConflictError) Error() string {
	return fmt.Sprintf("odm: index %v of %s conflicts with an existing index: %v", e.Index.Keys, e.Collection, e.Err)
}

// Unwrap returns the server's error.
func (e *IndexConflictError) Unwrap() error { return e.Err }

// EnsureIndexes creates the indexes T declares (Indexer) that the
// collection does not have yet. It is idempotent: an index that exists as
// declared is left alone, so it can run at every start-up. A declared index
// that exists in another form is an *IndexConflictError (errors.Join of one
// per conflict); the other declarations are still created. A type that
// declares none makes it a no-op.
func (c *Collection[T]) EnsureIndexes(ctx context.Context) error {
	if err := c.usable(); err != nil {
		return err
	}
	var zero T
	ix, ok := any(zero).(Indexer)
	if !ok {
		if ix, ok = any(&zero).(Indexer); !ok {
			return nil
		}
	}
	var errs []error
	models := ix.Indexes()
	for _, m := range models {
		// One command each: a conflict names its index, and the others go on.
		if _, err := c.coll.Indexes().CreateOne(ctx, m); err != nil {
			if isIndexConflict(err) {
				errs = append(errs, &IndexConflictError{Collection: c.coll.Name(), Index: m, Err: err})
				continue
			}
			return errors.Join(append(errs, fmt.Errorf("odm: create index %v on %s: %w", m.Keys, c.coll.Name(), err))...)
		}
	}
	if len(errs) == 0 {
		// Some servers (FerretDB v1.24) accept a declaration that differs
		// from the index of that name and change nothing: check what is
		// there, rather than trust the acknowledgement.
		if err := c.checkIndexes(ctx, models); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// checkIndexes compares each declared index with the one of its name.
func (c *Collection[T]) checkIndexes(ctx context.Context, models []mongo.IndexModel) error {
	specs, err := c.coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("odm: list indexes of %s: %w", c.coll.Name(), err)
	}
	byName := map[string]mongo.IndexSpecification{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	var errs []error
	for _, m := range models {
		keys, err := bson.Marshal(m.Keys)
		if err != nil {
			return fmt.Errorf("odm: index keys %v: %w", m.Keys, err)
		}
		var o options.IndexOptions
		if m.Options != nil {
			for _, set := range m.Options.Opts {
				if err := set(&o); err != nil {
					return err
				}
			}
		}
		name := indexName(keys)
		if o.Name != nil {
			name = *o.Name
		}
		have, ok := byName[name]
		if !ok {
			errs = append(errs, &IndexConflictError{Collection: c.coll.Name(), Index: m, Err: fmt.Errorf("no index named %q after creating it", name)})
			continue
		}
		var why []string
		if !sameKeys(have.KeysDocument, keys) {
			why = append(why, fmt.Sprintf("keys %v, declared %v", have.KeysDocument, bson.Raw(keys)))
		}
		if flag(have.Unique) != flag(o.Unique) {
			why = append(why, fmt.Sprintf("unique %v, declared %v", flag(have.Unique), flag(o.Unique)))
		}
		if flag(have.Sparse) != flag(o.Sparse) {
			why = append(why, fmt.Sprintf("sparse %v, declared %v", flag(have.Sparse), flag(o.Sparse)))
		}
		if ttl(have.ExpireAfterSeconds) != ttl(o.ExpireAfterSeconds) {
			why = append(why, fmt.Sprintf("expireAfterSeconds %d, declared %d", ttl(have.ExpireAfterSeconds), ttl(o.ExpireAfterSeconds)))
		}
		if len(why) > 0 {
			errs = append(errs, &IndexConflictError{Collection: c.coll.Name(), Index: m,
				Err: fmt.Errorf("index %q has %s", name, strings.Join(why, "; "))})
		}
	}
	return errors.Join(errs...)
}

func flag(b *bool) bool { return b != nil && *b }

func ttl(s *int32) int32 {
	if s == nil {
		return -1
	}
	return *s
}

// sameKeys compares key patterns by field order and numeric value (1 and
// 1.0 are one direction), or string value (text, 2dsphere).
func sameKeys(a, b bson.Raw) bool {
	ea, erra := a.Elements()
	eb, errb := b.Elements()
	if erra != nil || errb != nil || len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i].Key() != eb[i].Key() {
			return false
		}
		va, vb := ea[i].Value(), eb[i].Value()
		if fa, ok := va.AsFloat64OK(); ok {
			if fb, ok := vb.AsFloat64OK(); !ok || fa != fb {
				return false
			}
			continue
		}
		if !va.Equal(vb) {
			return false
		}
	}
	return true
}

// indexName is the server's default name of an index: field_direction
// pairs joined with "_".
func indexName(keys bson.Raw) string {
	elems, _ := keys.Elements()
	parts := make([]string, 0, 2*len(elems))
	for _, e := range elems {
		v := e.Value()
		var dir string
		if s, ok := v.StringValueOK(); ok {
			dir = s
		} else if f, ok := v.AsFloat64OK(); ok {
			dir = strconv.FormatFloat(f, 'f', -1, 64)
		} else {
			dir = v.String()
		}
		parts = append(parts, e.Key(), dir)
	}
	return strings.Join(parts, "_")
}

// isIndexConflict reports the server's IndexOptionsConflict (85),
// IndexKeySpecsConflict (86) and IndexAlreadyExists (68).
func isIndexConflict(err error) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	for _, code := range []int{85, 86, 68} {
		if se.HasErrorCode(code) {
			return true
		}
	}
	return false
}
