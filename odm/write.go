package odm

import (
	"context"
	"fmt"
	"reflect"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/optset"
)

// Save inserts doc if its _id is a zero ObjectID (writing a new ObjectID
// into it) and otherwise upserts it by _id: see the package documentation
// for the identity rule of each _id type. Hook order: BeforeSave,
// BeforeInsert (new documents), Validate, the write, AfterInsert (new
// documents), AfterSave. With WithoutValidation and WithoutHooks, Save is one
// driver call.
func (c *Collection[T]) Save(ctx context.Context, doc *T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	if cfg.skipHooks && cfg.skipValidation && c.idIsZero(doc) && c.encodesNatively() {
		if plan := encode.For(reflect.TypeFor[T]()); plan.HasObjectID() {
			return c.insertEncoded(ctx, doc, plan)
		}
	}
	id, isNew, err := c.assignID(doc)
	if err != nil {
		return err
	}
	if !cfg.skipHooks || !cfg.skipValidation {
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
	}
	wctx, cancel := c.bounded(ctx)
	if isNew {
		_, err = c.coll.InsertOne(wctx, doc)
	} else {
		_, err = c.coll.ReplaceOne(wctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
	}
	c.invalidate(wctx, err, byID(id))
	cancel()
	if err != nil {
		if isNew && !keepID(err) {
			c.clearID(doc)
		}
		return fmt.Errorf("odm: save into %s: %w", c.coll.Name(), err)
	}
	if cfg.skipHooks {
		return nil
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
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.InsertOne(wctx, bson.Raw(raw))
	if res != nil {
		c.invalidate(wctx, err, byID(res.InsertedID))
	} else {
		c.invalidate(wctx, err, anything) // the driver's id is not known
	}
	cancel()
	if res != nil {
		if oid, ok := res.InsertedID.(bson.ObjectID); ok {
			c.setID(doc, oid)
		}
	}
	if err != nil {
		return fmt.Errorf("odm: save into %s: %w", c.coll.Name(), err)
	}
	return nil
}

// Insert inserts doc, writing a new ObjectID into a zero _id. Hook order:
// BeforeInsert, Validate, the insert, AfterInsert.
func (c *Collection[T]) Insert(ctx context.Context, doc *T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
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
	wctx, cancel := c.bounded(ctx)
	_, err = c.coll.InsertOne(wctx, doc)
	c.invalidate(wctx, err, byID(c.idOf(doc)))
	cancel()
	if err != nil {
		if fresh && !keepID(err) {
			c.clearID(doc)
		}
		return fmt.Errorf("odm: insert into %s: %w", c.coll.Name(), err)
	}
	return after(ctx, doc, 0, cfg, afterInsert...)
}

// Replace replaces the stored document with doc's _id, or returns
// ErrNotFound. Hook order: BeforeSave, Validate, the write, AfterSave.
func (c *Collection[T]) Replace(ctx context.Context, doc *T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	if err := before(ctx, doc, 0, cfg, saveHooks...); err != nil {
		return err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.ReplaceOne(wctx, bson.D{{Key: "_id", Value: c.idOf(doc)}}, doc)
	c.invalidate(wctx, err, byID(c.idOf(doc)))
	cancel()
	if err != nil {
		return fmt.Errorf("odm: replace in %s: %w", c.coll.Name(), err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("odm: replace in %s: no document with _id %v: %w", c.coll.Name(), c.idOf(doc), ErrNotFound)
	}
	return after(ctx, doc, 0, cfg, afterSave...)
}

// UpdateResult is the outcome of UpdateOne and UpdateMany.
type UpdateResult struct {
	Matched, Modified int64 // documents the filter matched, and those the update changed
	UpsertedID        any   // the _id of the document an Upsert inserted; nil if none
}

// DeleteResult is the outcome of DeleteOne and DeleteMany.
type DeleteResult struct {
	Deleted int64 // documents deleted
}

func updateResult(res *mongo.UpdateResult) UpdateResult {
	return UpdateResult{Matched: res.MatchedCount, Modified: res.ModifiedCount, UpsertedID: res.UpsertedID}
}

// UpdateOne applies update (e.g. bson.D{{"$set", …}}) to the first document
// matching filter; with Upsert, it inserts one when none matches. No hooks
// run: there is no document value to run them on.
func (c *Collection[T]) UpdateOne(ctx context.Context, filter, update any, opts ...WriteOption) (UpdateResult, error) {
	return c.updateFiltered(ctx, filter, update, false, opts)
}

// UpdateMany applies update to every document matching filter; with
// Upsert, it inserts one when none matches. No hooks run.
func (c *Collection[T]) UpdateMany(ctx context.Context, filter, update any, opts ...WriteOption) (UpdateResult, error) {
	return c.updateFiltered(ctx, filter, update, true, opts)
}

func (c *Collection[T]) updateFiltered(ctx context.Context, filter, update any, many bool, opts []WriteOption) (UpdateResult, error) {
	f, u, err := c.filterUpdate(filter, update)
	if err != nil {
		return UpdateResult{}, err
	}
	cfg := newWriteConfig(opts)
	wctx, cancel := c.bounded(ctx)
	var res *mongo.UpdateResult
	what := "update one"
	if many {
		o := options.UpdateMany().SetUpsert(cfg.upsert)
		setUpdateOptions(o, cfg)
		res, err = c.coll.UpdateMany(wctx, f, u, o)
		what = "update many"
	} else {
		o := options.UpdateOne().SetUpsert(cfg.upsert)
		setUpdateOptions(o, cfg)
		res, err = c.coll.UpdateOne(wctx, f, u, o)
	}
	c.invalidate(wctx, err, byFilter(f))
	cancel()
	if err != nil {
		return UpdateResult{}, fmt.Errorf("odm: %s in %s: %w", what, c.coll.Name(), err)
	}
	return updateResult(res), nil
}

// updateBuilder is a driver option builder of an update (UpdateOne,
// UpdateMany, FindOneAndUpdate).
type updateBuilder[B any] interface {
	optset.HintCollation[B]
	optset.Letter[B]
	SetArrayFilters([]any) B
}

// setUpdateOptions sets the write options an update takes.
func setUpdateOptions[B updateBuilder[B]](o B, cfg writeConfig) {
	if cfg.arrayFilters != nil {
		o.SetArrayFilters(cfg.arrayFilters)
	}
	optset.SetLet(o, cfg.let)
	optset.SetHintCollation(o, cfg.shape.Hint, cfg.shape.Collation)
}

// Delete deletes the stored document with doc's _id, or returns
// ErrNotFound. Hook order: BeforeDelete, the delete, AfterDelete.
func (c *Collection[T]) Delete(ctx context.Context, doc *T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	cfg.skipValidation = true
	if err := before(ctx, doc, 0, cfg, deleteHooks...); err != nil {
		return err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.DeleteOne(wctx, bson.D{{Key: "_id", Value: c.idOf(doc)}})
	c.invalidate(wctx, err, byID(c.idOf(doc)))
	cancel()
	if err != nil {
		return fmt.Errorf("odm: delete in %s: %w", c.coll.Name(), err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("odm: delete in %s: no document with _id %v: %w", c.coll.Name(), c.idOf(doc), ErrNotFound)
	}
	return after(ctx, doc, 0, cfg, afterDeleteHooks...)
}

// DeleteOne deletes the first document matching filter. No hooks run.
func (c *Collection[T]) DeleteOne(ctx context.Context, filter any, opts ...WriteOption) (DeleteResult, error) {
	return c.deleteFiltered(ctx, filter, false, opts)
}

// DeleteMany deletes every document matching filter. No hooks run.
func (c *Collection[T]) DeleteMany(ctx context.Context, filter any, opts ...WriteOption) (DeleteResult, error) {
	return c.deleteFiltered(ctx, filter, true, opts)
}

func (c *Collection[T]) deleteFiltered(ctx context.Context, filter any, many bool, opts []WriteOption) (DeleteResult, error) {
	f, err := c.filter(filter)
	if err != nil {
		return DeleteResult{}, err
	}
	cfg := newWriteConfig(opts)
	wctx, cancel := c.bounded(ctx)
	var res *mongo.DeleteResult
	if many {
		o := options.DeleteMany()
		optset.SetHintCollation(o, cfg.shape.Hint, cfg.shape.Collation)
		optset.SetLet(o, cfg.let)
		res, err = c.coll.DeleteMany(wctx, f, o)
	} else {
		o := options.DeleteOne()
		optset.SetHintCollation(o, cfg.shape.Hint, cfg.shape.Collation)
		optset.SetLet(o, cfg.let)
		res, err = c.coll.DeleteOne(wctx, f, o)
	}
	c.invalidate(wctx, err, byFilter(f))
	cancel()
	if err != nil {
		return DeleteResult{}, fmt.Errorf("odm: delete in %s: %w", c.coll.Name(), err)
	}
	return DeleteResult{Deleted: res.DeletedCount}, nil
}

// filter checks a write's filter (see checkFilter) with the collection's
// codecs.
func (c *Collection[T]) filter(filter any) (any, error) {
	reg, opts := c.h.BSON()
	return checkFilter(filter, reg, opts)
}

// filterUpdate checks an update's filter and update document.
func (c *Collection[T]) filterUpdate(filter, update any) (f, u any, err error) {
	if f, err = c.filter(filter); err != nil {
		return nil, nil, err
	}
	reg, opts := c.h.BSON()
	if u, err = checkUpdate(update, reg, opts); err != nil {
		return nil, nil, err
	}
	return f, u, nil
}
