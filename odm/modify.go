package odm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// FindOneAndUpdate applies update to the first document matching filter
// (in the query.Sort order, if given) and returns it, as it was before the
// update or, with ReturnAfter, after it; with Upsert it inserts one when
// none matches. ErrNotFound when nothing matched and nothing was inserted.
// When Upsert inserted a document and the document before is asked for
// (no ReturnAfter), there was none before: the result is the zero T and a
// nil error. The document is decoded as reads are (the handle's codecs).
// No hooks run.
func (c *Collection[T]) FindOneAndUpdate(ctx context.Context, filter, update any, opts ...query.WriteOption) (T, error) {
	if err := c.usable(); err != nil {
		var zero T
		return zero, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		var zero T
		return zero, cfg.Err
	}
	o := options.FindOneAndUpdate().SetUpsert(cfg.Upsert)
	if cfg.ReturnAfter {
		o.SetReturnDocument(options.After)
	}
	setUpdateOptions(o, cfg)
	opt.SetShape(o, cfg)
	reg, bo := c.codecs.bson()
	u, err := checkUpdate(update, reg, bo)
	if err != nil {
		var zero T
		return zero, err
	}
	stmt := c.updateStmt(nil, u, false, cfg)
	return c.findAndModify(ctx, filter, "update", stmt, cfg, func(wctx context.Context, f any) *mongo.SingleResult {
		return c.coll.FindOneAndUpdate(wctx, f, u, o)
	})
}

// FindOneAndReplace replaces the first document matching filter with doc
// and returns the document before (or, with ReturnAfter, after) the
// replacement; with Upsert it inserts doc when none matches (and, without
// ReturnAfter, returns the zero T and a nil error: there was no document
// before). ErrNotFound when nothing matched and nothing was inserted. doc's _id must
// be the matched document's, or a zero ObjectID, which is left out of the
// replacement (the stored _id stays; doc's is not filled in). BeforeSave
// and Validate run on doc first (WithoutHooks, WithoutValidation skip
// them); AfterSave runs after a replacement.
func (c *Collection[T]) FindOneAndReplace(ctx context.Context, filter any, doc *T, opts ...query.WriteOption) (T, error) {
	if err := c.documents(); err != nil {
		var zero T
		return zero, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		var zero T
		return zero, cfg.Err
	}
	var zero T
	if err := before(ctx, doc, 0, cfg, saveHooks...); err != nil {
		return zero, err
	}
	o := options.FindOneAndReplace().SetUpsert(cfg.Upsert)
	if cfg.ReturnAfter {
		o.SetReturnDocument(options.After)
	}
	opt.SetShape(o, cfg)
	// A zero ObjectID _id in doc means "the matched document's": it is
	// left out of the replacement (an _id that differs is refused by the
	// server as a change of an immutable field).
	var replacement any = doc
	if c.id.isOID && c.idIsZero(doc) {
		raw, err := c.withoutID(doc)
		if err != nil {
			return zero, fmt.Errorf("odm: encode: %w", err)
		}
		replacement = raw
	}
	stmt := cachecore.Stmt{Op: cachecore.OpReplace, Upsert: cfg.Upsert, Collation: nonSimple(cfg)}
	if raw, ok := replacement.(bson.Raw); ok {
		stmt.Doc = raw
	} else {
		stmt.DocFunc = c.docFunc(doc)
	}
	got, err := c.findAndModify(ctx, filter, "replace", stmt, cfg, func(wctx context.Context, f any) *mongo.SingleResult {
		return c.coll.FindOneAndReplace(wctx, f, replacement, o)
	})
	if err != nil {
		return got, err
	}
	return got, after(ctx, doc, 0, cfg, afterSave...)
}

// FindOneAndDelete deletes the first document matching filter (in the
// query.Sort order, if given) and returns it, or ErrNotFound. No hooks run.
func (c *Collection[T]) FindOneAndDelete(ctx context.Context, filter any, opts ...query.WriteOption) (T, error) {
	if err := c.usable(); err != nil {
		var zero T
		return zero, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		var zero T
		return zero, cfg.Err
	}
	o := options.FindOneAndDelete()
	opt.SetShape(o, cfg)
	stmt := cachecore.Stmt{Op: cachecore.OpDelete, Collation: nonSimple(cfg)}
	return c.findAndModify(ctx, filter, "delete", stmt, cfg, func(wctx context.Context, f any) *mongo.SingleResult {
		return c.coll.FindOneAndDelete(wctx, f, o)
	})
}

// findAndModify runs one find-and-modify command (stmt, whose filter it
// sets): its filter checked, the write through the one write path, its
// document decoded with the collection's codecs.
func (c *Collection[T]) findAndModify(ctx context.Context, filter any, what string, stmt cachecore.Stmt, cfg *opt.Config, run func(context.Context, any) *mongo.SingleResult) (T, error) {
	var v T
	f, err := c.filter(filter)
	if err != nil {
		return v, err
	}
	stmt.Filter = c.rawFilter(f)
	ch := change(stmt)
	// The document a find-and-modify returns before its write is the
	// write's pre-image, whole: the entries it would invalidate for want
	// of the document's values are held until it says (no change to the
	// command sent).
	ch.Hold = !cfg.ReturnAfter && cfg.Projection == nil
	var raw bson.Raw
	err = c.do(ctx, ch, func(ctx context.Context) error {
		var err error
		raw, err = run(ctx, f).Raw()
		s := &ch.Stmts[0]
		switch {
		case errors.Is(err, mongo.ErrNoDocuments) && !s.Upsert:
			s.NoChange = true // nothing matched
		case errors.Is(err, mongo.ErrNoDocuments):
			// An upsert that returns no document inserted one (the server
			// returns the document after an upsert unless asked for the
			// one before, which did not exist). The statement keeps its
			// filter: the new document's _id is not in the reply.
			raw, err = nil, nil
		case err == nil:
			// The document it changed, before or after: its _id confines
			// the statement (unless a projection left it out).
			if id, lerr := raw.LookupErr("_id"); lerr == nil {
				s.Filter = idRaw(id)
			}
			if ch.Hold {
				setPreImage(s, raw, nil)
			}
		}
		return err
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return v, fmt.Errorf("odm: find one and %s in %s: %w", what, c.name, query.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("odm: find one and %s in %s: %w", what, c.name, err)
	}
	if raw == nil { // an upsert inserted: there was no document before
		return v, nil
	}
	if err := decode.Unmarshal(raw, &v, c.codecs.decodeOptions()...); err != nil {
		return v, err
	}
	return v, nil
}

// withoutID encodes doc without its _id: by the compiled encoder where it
// stores what the driver would, otherwise by the driver with the handle's
// codecs (an _id in an inlined struct, a registry of its own), the _id then
// cut out.
func (c *Collection[T]) withoutID(doc *T) (bson.Raw, error) {
	if plan := encode.For(reflect.TypeFor[T]()); plan.HasObjectID() && c.encodesNatively() {
		raw, err := plan.Append(nil, unsafe.Pointer(doc), true)
		return bson.Raw(raw), err
	}
	reg, bo := c.codecs.bson()
	raw, err := marshal(doc, reg, bo)
	if err != nil {
		return nil, err
	}
	elems, err := raw.Elements()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, len(raw))
	for _, e := range elems {
		if e.Key() != "_id" {
			out = append(out, e...)
		}
	}
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out, nil
}
