package odm

import (
	"context"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/opt"
)

// What each write tells the caches: its statements as the server receives
// them (filters and updates encoded with the collection's codecs), refined
// by the reply (what it matched, modified, deleted or upserted). The
// invalidation rules (package internal/cachecore) read them to invalidate
// only the cached reads the write can change.

// change is the change of a write of stmts.
func change(stmts ...cachecore.Stmt) *cachecore.Change { return &cachecore.Change{Stmts: stmts} }

// encoded encodes a query part as the driver does with the collection's
// codecs.
func (c *Collection[T]) encoded(v any) (bson.Raw, error) {
	if raw, ok := v.(bson.Raw); ok {
		return raw, nil
	}
	reg, opts := c.codecs.bson()
	return marshal(v, reg, opts)
}

// rawFilter is a write's filter as the server receives it; nil when it
// cannot be encoded here (the driver will say why), which the rules read as
// "any document".
func (c *Collection[T]) rawFilter(f any) bson.Raw {
	if holdsMap(f, 0) {
		return nil // pin could not encode it: the driver's order is not known here
	}
	raw, err := c.encoded(f)
	if err != nil {
		return nil
	}
	return raw
}

// idRaw is {_id: id} for an encoded id.
func idRaw(id bson.RawValue) bson.Raw {
	out := make([]byte, 0, len(id.Value)+10)
	out = append(out, 0, 0, 0, 0, byte(id.Type), '_', 'i', 'd', 0)
	out = append(out, id.Value...)
	out = append(out, 0)
	n := len(out)
	out[0], out[1], out[2], out[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return out
}

// idFilter is {_id: id}.
func (c *Collection[T]) idFilter(id any) bson.Raw {
	return c.rawFilter(bson.D{{Key: "_id", Value: id}})
}

// docFunc encodes doc when a rule needs it (before the write returns).
func (c *Collection[T]) docFunc(doc *T) func() (bson.Raw, error) {
	return func() (bson.Raw, error) {
		if c.docMaps && holdsMap(doc, 0) {
			return nil, errMapOrder // the driver encodes its maps in an order not known here
		}
		return c.encoded(doc)
	}
}

// insertStmt is the insert of doc.
func (c *Collection[T]) insertStmt(doc *T) cachecore.Stmt {
	return cachecore.Stmt{Op: cachecore.OpInsert, DocFunc: c.docFunc(doc)}
}

// replaceStmt is the replacement of the document with doc's _id by doc.
func (c *Collection[T]) replaceStmt(id any, doc *T, upsert bool) cachecore.Stmt {
	return cachecore.Stmt{Op: cachecore.OpReplace, Filter: c.idFilter(id), DocFunc: c.docFunc(doc), Upsert: upsert}
}

// updateStmt is an update (u as checkUpdate returns it: a document or a
// pipeline) of what f matches.
func (c *Collection[T]) updateStmt(f, u any, multi bool, cfg *opt.Config) cachecore.Stmt {
	s := cachecore.Stmt{Op: cachecore.OpUpdate, Filter: c.rawFilter(f), Multi: multi, Upsert: cfg.Upsert,
		ArrayFilters: cfg.ArrayFilters != nil, Collation: nonSimple(cfg)}
	if raw, ok := u.(bson.Raw); ok {
		s.Update = bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw}
	} else {
		s.Update = bson.RawValue{Type: bson.TypeArray} // a pipeline: any path may change
	}
	return s
}

// deleteStmt is a delete of what f matches.
func (c *Collection[T]) deleteStmt(f any, multi bool, cfg *opt.Config) cachecore.Stmt {
	return cachecore.Stmt{Op: cachecore.OpDelete, Filter: c.rawFilter(f), Multi: multi, Collation: nonSimple(cfg)}
}

// nonSimple reports whether the write compares strings by a collation
// other than the simple one.
func nonSimple(cfg *opt.Config) bool {
	return cfg.Collation != nil && cfg.Collation.Locale != "simple"
}

// updated refines an update or replacement statement by its result (of a
// call that returned no error: with one, a statement of many documents may
// have changed some).
func updated(s *cachecore.Stmt, res *mongo.UpdateResult, err error) {
	if res == nil || err != nil {
		return
	}
	if res.UpsertedID != nil {
		s.Upserted = true
		if t, v, err := bson.MarshalValue(res.UpsertedID); err == nil {
			s.UpsertedID = bson.RawValue{Type: t, Value: v}
		}
		return
	}
	s.NotUpserted = true
	s.NoChange = res.MatchedCount == 0 || res.ModifiedCount == 0
}

// deleted refines a delete statement by its result (of a call that
// returned no error).
func deleted(s *cachecore.Stmt, res *mongo.DeleteResult, err error) {
	if res != nil && err == nil && res.DeletedCount == 0 {
		s.NoChange = true
	}
}

// withID is doc (encoded without an _id) as stored with the _id id: the
// _id first, as the server stores it.
func withID(doc bson.Raw, id any) bson.Raw {
	t, v, err := bson.MarshalValue(id)
	if err != nil || len(doc) < 5 {
		return nil
	}
	out := make([]byte, 0, len(doc)+len(v)+5)
	out = append(out, 0, 0, 0, 0, byte(t), '_', 'i', 'd', 0)
	out = append(out, v...)
	out = append(out, doc[4:]...)
	n := len(out)
	out[0], out[1], out[2], out[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return out
}

// shape asks the server what the collection is: its default collation,
// and, for a view, the collections its pipeline reads (views of views
// resolved to the collections under them).
func (c *Collection[T]) shape(ctx context.Context) (cachecore.Shape, error) {
	db := c.coll.Database()
	specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "name", Value: c.name}}, bson.D{{Key: "type", Value: "view"}},
	}}})
	if err != nil {
		return cachecore.Shape{}, err
	}
	views := map[string]bson.Raw{}
	var own *mongo.CollectionSpecification
	for _, s := range specs {
		if s.Type == "view" {
			views[s.Name] = s.Options
		}
		if s.Name == c.name {
			own = &s
		}
	}
	if own == nil {
		return cachecore.Shape{Simple: true}, nil // it does not exist (yet): no default collation
	}
	if own.Type != "view" {
		loc, _ := own.Options.Lookup("collation", "locale").StringValueOK()
		return cachecore.Shape{Simple: loc == "" || loc == "simple"}, nil
	}
	sh := cachecore.Shape{View: true}
	seen := map[string]bool{}
	var resolve func(name string, depth int) error
	resolve = func(name string, depth int) error {
		opts, isView := views[name]
		if !isView {
			ns := c.db + "." + name
			if !slices.Contains(sh.Reads, ns) {
				sh.Reads = append(sh.Reads, ns)
			}
			return nil
		}
		if seen[name] || depth > 20 {
			return nil
		}
		seen[name] = true
		on, _ := opts.Lookup("viewOn").StringValueOK()
		if err := resolve(on, depth+1); err != nil {
			return err
		}
		p, _ := opts.Lookup("pipeline").ArrayOK()
		deps, err := dependencies(c.db, p)
		if err != nil {
			return err
		}
		for _, ns := range deps.Reads {
			db, coll, _ := strings.Cut(ns, ".")
			if db == c.db {
				if err := resolve(coll, depth+1); err != nil {
					return err
				}
			} else if !slices.Contains(sh.Reads, ns) {
				sh.Reads = append(sh.Reads, ns)
			}
		}
		return nil
	}
	return sh, resolve(c.name, 0)
}
