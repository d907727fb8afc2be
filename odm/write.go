package odm

import (
	"context"
	"fmt"
	"reflect"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// Save inserts doc if its _id is a zero ObjectID (writing a new ObjectID
// into it) and otherwise upserts it by _id: see the package documentation
// for the identity rule of each _id type. Hook order: BeforeSave,
// BeforeInsert (new documents), Validate, the write, AfterInsert (new
// documents), AfterSave. With WithoutValidation and WithoutHooks, Save is one
// driver call.
func (c *Collection[T]) Save(ctx context.Context, doc *T, opts ...query.WriteOption) error {
	if err := c.document(doc); err != nil {
		return err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return cfg.Err
	}
	if cfg.SkipHooks && cfg.SkipValidation && c.idIsZero(doc) && c.encodesNatively() {
		if plan := encode.For(reflect.TypeFor[T]()); plan.HasObjectID() {
			return c.insertEncoded(ctx, doc, plan)
		}
	}
	id, isNew, err := c.assignID(doc)
	if err != nil {
		return err
	}
	hooks := saveHooks
	if isNew {
		hooks = saveInsertHooks
	}
	if err := before(ctx, doc, 0, cfg, hooks...); err != nil {
		if isNew {
			c.clearID(doc)
		}
		return err
	}
	ch := change(c.insertStmt(doc))
	if !isNew {
		ch = change(c.replaceStmt(id, doc, true))
	}
	var pre func(context.Context, []string) error
	if !isNew {
		pre = c.preReplace(ctx, ch, bson.D{{Key: "_id", Value: id}}, doc, true, new(*mongo.UpdateResult))
	}
	err = c.doPre(ctx, ch, func(ctx context.Context) error {
		if isNew {
			_, err := c.coll.InsertOne(ctx, doc)
			return err
		}
		res, err := c.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
		updated(&ch.Stmts[0], res, err)
		return err
	}, pre)
	if err != nil {
		if isNew && !keepID(err) {
			c.clearID(doc)
		}
		return fmt.Errorf("odm: save into %s: %w", c.name, err)
	}
	if isNew {
		return after(ctx, doc, 0, cfg, afterInsertSave...)
	}
	return after(ctx, doc, 0, cfg, afterSave...)
}

// insertEncoded is the fast path's insert of a new document: encoded by the
// compiled encoder without its zero _id, so that the driver adds one cheaply
// (it decodes any _id it finds back through a new decoder); the id is then
// written back from the result. One driver call.
func (c *Collection[T]) insertEncoded(ctx context.Context, doc *T, plan *encode.Plan) error {
	raw, err := plan.Append(make([]byte, 0, 256), unsafe.Pointer(doc), true)
	if err != nil {
		return fmt.Errorf("odm: encode: %w", err)
	}
	var res *mongo.InsertOneResult
	ch := change(cachecore.Stmt{Op: cachecore.OpInsert})
	err = c.do(ctx, ch, func(ctx context.Context) error {
		var err error
		res, err = c.coll.InsertOne(ctx, bson.Raw(raw))
		if res != nil {
			// The document as stored: the driver's _id, then the rest.
			ch.Stmts[0].Doc = withID(raw, res.InsertedID)
		}
		return err
	})
	if res != nil {
		if oid, ok := res.InsertedID.(bson.ObjectID); ok {
			c.setID(doc, oid)
		}
	}
	if err != nil {
		return fmt.Errorf("odm: save into %s: %w", c.name, err)
	}
	return nil
}

// Insert inserts doc, writing a new ObjectID into a zero _id. Hook order:
// BeforeInsert, Validate, the insert, AfterInsert.
func (c *Collection[T]) Insert(ctx context.Context, doc *T, opts ...query.WriteOption) error {
	if err := c.document(doc); err != nil {
		return err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return cfg.Err
	}
	_, fresh, err := c.assignID(doc)
	if err != nil {
		return err
	}
	if err := before(ctx, doc, 0, cfg, insertHooks...); err != nil {
		if fresh {
			c.clearID(doc)
		}
		return err
	}
	err = c.do(ctx, change(c.insertStmt(doc)), func(ctx context.Context) error {
		_, err := c.coll.InsertOne(ctx, doc)
		return err
	})
	if err != nil {
		if fresh && !keepID(err) {
			c.clearID(doc)
		}
		return fmt.Errorf("odm: insert into %s: %w", c.name, err)
	}
	return after(ctx, doc, 0, cfg, afterInsert...)
}

// Replace replaces the stored document with doc's _id, or returns
// query.ErrNotFound. Hook order: BeforeSave, Validate, the write, AfterSave.
func (c *Collection[T]) Replace(ctx context.Context, doc *T, opts ...query.WriteOption) error {
	if err := c.document(doc); err != nil {
		return err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return cfg.Err
	}
	if err := before(ctx, doc, 0, cfg, saveHooks...); err != nil {
		return err
	}
	id := c.idOf(doc)
	var res *mongo.UpdateResult
	ch := change(c.replaceStmt(id, doc, false))
	f := bson.D{{Key: "_id", Value: id}}
	err := c.doPre(ctx, ch, func(ctx context.Context) error {
		var err error
		res, err = c.coll.ReplaceOne(ctx, f, doc)
		updated(&ch.Stmts[0], res, err)
		return err
	}, c.preReplace(ctx, ch, f, doc, false, &res))
	if err != nil {
		return fmt.Errorf("odm: replace in %s: %w", c.name, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("odm: replace in %s: no document with _id %v: %w", c.name, id, query.ErrNotFound)
	}
	return after(ctx, doc, 0, cfg, afterSave...)
}

// UpdateOne applies update (e.g. bson.D{{"$set", …}}) to the first document
// matching filter; with Upsert, it inserts one when none matches. No hooks
// run: there is no document value to run them on. The result is the
// driver's, as the server reported it (MatchedCount, ModifiedCount,
// UpsertedCount, UpsertedID), also with an error when the driver gave one
// (an UpdateMany that failed partway reports what it changed).
func (c *Collection[T]) UpdateOne(ctx context.Context, filter, update any, opts ...query.WriteOption) (*mongo.UpdateResult, error) {
	return c.update(ctx, filter, update, false, opts)
}

// UpdateMany applies update to every document matching filter; with
// Upsert, it inserts one when none matches. No hooks run. The result is the
// driver's, as UpdateOne's.
func (c *Collection[T]) UpdateMany(ctx context.Context, filter, update any, opts ...query.WriteOption) (*mongo.UpdateResult, error) {
	return c.update(ctx, filter, update, true, opts)
}

func (c *Collection[T]) update(ctx context.Context, filter, update any, many bool, opts []query.WriteOption) (*mongo.UpdateResult, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	f, u, err := c.filterUpdate(filter, update)
	if err != nil {
		return nil, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	var res *mongo.UpdateResult
	what := "update one"
	if many {
		what = "update many"
	}
	ch := change(c.updateStmt(f, u, many, cfg))
	var pre func(context.Context, []string) error
	if !many {
		pre = c.preUpdate(ctx, cfg, ch, f, u, &res)
	}
	err = c.doPre(ctx, ch, func(ctx context.Context) error {
		var err error
		defer func() { updated(&ch.Stmts[0], res, err) }()
		if many {
			o := options.UpdateMany().SetUpsert(cfg.Upsert)
			setUpdateOptions(o, cfg)
			res, err = c.coll.UpdateMany(ctx, f, u, o)
		} else {
			o := options.UpdateOne().SetUpsert(cfg.Upsert)
			setUpdateOptions(o, cfg)
			res, err = c.coll.UpdateOne(ctx, f, u, o)
		}
		return err
	}, pre)
	if err != nil {
		return res, fmt.Errorf("odm: %s in %s: %w", what, c.name, err)
	}
	return res, nil
}

// updateBuilder is a driver option builder of an update (UpdateOne,
// UpdateMany, FindOneAndUpdate).
type updateBuilder[B any] interface {
	opt.HintCollation[B]
	opt.Letter[B]
	SetArrayFilters([]any) B
}

// setUpdateOptions sets the write options an update takes.
func setUpdateOptions[B updateBuilder[B]](o B, cfg *opt.Config) {
	if cfg.ArrayFilters != nil {
		o.SetArrayFilters(cfg.ArrayFilters)
	}
	opt.SetLet(o, cfg)
	opt.SetHintCollation(o, cfg)
}

// Delete deletes the stored document with doc's _id, or returns
// query.ErrNotFound. Hook order: BeforeDelete, the delete, AfterDelete.
func (c *Collection[T]) Delete(ctx context.Context, doc *T, opts ...query.WriteOption) error {
	if err := c.document(doc); err != nil {
		return err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return cfg.Err
	}
	cfg.SkipValidation = true
	if err := before(ctx, doc, 0, cfg, deleteHooks...); err != nil {
		return err
	}
	id := c.idOf(doc)
	var res *mongo.DeleteResult
	ch := change(cachecore.Stmt{Op: cachecore.OpDelete, Filter: c.idFilter(id)})
	f := bson.D{{Key: "_id", Value: id}}
	err := c.doPre(ctx, ch, func(ctx context.Context) error {
		var err error
		res, err = c.coll.DeleteOne(ctx, f)
		deleted(&ch.Stmts[0], res, err)
		return err
	}, c.preDelete(ctx, nil, ch, f, &res))
	if err != nil {
		return fmt.Errorf("odm: delete in %s: %w", c.name, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("odm: delete in %s: no document with _id %v: %w", c.name, id, query.ErrNotFound)
	}
	return after(ctx, doc, 0, cfg, afterDeleteHooks...)
}

// DeleteOne deletes the first document matching filter. No hooks run. The
// result is the driver's (DeletedCount), also with an error when the
// driver gave one.
func (c *Collection[T]) DeleteOne(ctx context.Context, filter any, opts ...query.WriteOption) (*mongo.DeleteResult, error) {
	return c.delete(ctx, filter, false, opts)
}

// DeleteMany deletes every document matching filter. No hooks run. The
// result is the driver's, as DeleteOne's.
func (c *Collection[T]) DeleteMany(ctx context.Context, filter any, opts ...query.WriteOption) (*mongo.DeleteResult, error) {
	return c.delete(ctx, filter, true, opts)
}

func (c *Collection[T]) delete(ctx context.Context, filter any, many bool, opts []query.WriteOption) (*mongo.DeleteResult, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	f, err := c.filter(filter)
	if err != nil {
		return nil, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	var res *mongo.DeleteResult
	ch := change(c.deleteStmt(f, many, cfg))
	var pre func(context.Context, []string) error
	if !many {
		pre = c.preDelete(ctx, cfg, ch, f, &res)
	}
	err = c.doPre(ctx, ch, func(ctx context.Context) error {
		var err error
		defer func() { deleted(&ch.Stmts[0], res, err) }()
		if many {
			o := options.DeleteMany()
			opt.SetHintCollation(o, cfg)
			opt.SetLet(o, cfg)
			res, err = c.coll.DeleteMany(ctx, f, o)
		} else {
			o := options.DeleteOne()
			opt.SetHintCollation(o, cfg)
			opt.SetLet(o, cfg)
			res, err = c.coll.DeleteOne(ctx, f, o)
		}
		return err
	}, pre)
	if err != nil {
		return res, fmt.Errorf("odm: delete in %s: %w", c.name, err)
	}
	return res, nil
}

// filter checks a write's filter (see checkFilter) with the collection's
// codecs.
func (c *Collection[T]) filter(filter any) (any, error) {
	reg, opts := c.codecs.bson()
	return checkFilter(filter, reg, opts)
}

// filterUpdate checks an update's filter and update document.
func (c *Collection[T]) filterUpdate(filter, update any) (f, u any, err error) {
	if f, err = c.filter(filter); err != nil {
		return nil, nil, err
	}
	reg, opts := c.codecs.bson()
	if u, err = checkUpdate(update, reg, opts); err != nil {
		return nil, nil, err
	}
	return f, u, nil
}

// encodesNatively reports whether the compiled encoder stores what the
// driver would with the collection's registry and BSON options; where not,
// the values go to the driver, which encodes them with its own settings.
func (c *Collection[T]) encodesNatively() bool {
	reg, opts := c.codecs.bson()
	return encode.Native(reflect.TypeFor[T](), reg, opts)
}
