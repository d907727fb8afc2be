package odm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/optset"
)

// FindOneAndUpdate applies update to the first document matching filter
// (in the ReadWith sort, if given) and returns it, as it was before the
// update or, with ReturnAfter, after it; with Upsert it inserts one when
// none matches. ErrNotFound when nothing matched and nothing was inserted.
// The document is decoded as reads are (the handle's codecs). No hooks run.
func (c *Collection[T]) FindOneAndUpdate(ctx context.Context, filter, update any, opts ...WriteOption) (T, error) {
	cfg := newWriteConfig(opts)
	o := options.FindOneAndUpdate().SetUpsert(cfg.upsert)
	if cfg.returnAfter {
		o.SetReturnDocument(options.After)
	}
	setUpdateOptions(o, cfg)
	optset.SetShape(o, cfg.shape.Sort, cfg.shape.Projection, cfg.shape.Hint, cfg.shape.Collation)
	reg, bo := c.h.BSON()
	u, err := checkUpdate(update, reg, bo)
	if err != nil {
		var zero T
		return zero, err
	}
	return c.findAndModify(ctx, filter, "update", func(wctx context.Context, f any) *mongo.SingleResult {
		return c.coll.FindOneAndUpdate(wctx, f, u, o)
	})
}

// FindOneAndReplace replaces the first document matching filter with doc
// and returns the document before (or, with ReturnAfter, after) the
// replacement; with Upsert it inserts doc when none matches. doc's _id must
// be the matched document's, or a zero ObjectID, which is left out of the
// replacement (the stored _id stays; doc's is not filled in). BeforeSave
// and Validate run on doc first (WithoutHooks, WithoutValidation skip
// them); AfterSave runs after a replacement.
func (c *Collection[T]) FindOneAndReplace(ctx context.Context, filter any, doc *T, opts ...WriteOption) (T, error) {
	cfg := newWriteConfig(opts)
	var zero T
	if err := before(ctx, doc, 0, cfg, saveHooks...); err != nil {
		return zero, err
	}
	o := options.FindOneAndReplace().SetUpsert(cfg.upsert)
	if cfg.returnAfter {
		o.SetReturnDocument(options.After)
	}
	optset.SetShape(o, cfg.shape.Sort, cfg.shape.Projection, cfg.shape.Hint, cfg.shape.Collation)
	// A zero ObjectID _id in doc means "the matched document's": it is
	// left out of the replacement (an _id that differs is refused by the
	// server as a change of an immutable field).
	var replacement any = doc
	if plan := encode.For(reflect.TypeFor[T]()); c.id.isOID && c.idIsZero(doc) && plan.HasObjectID() && c.encodesNatively() {
		raw, err := plan.Append(nil, unsafe.Pointer(doc), true)
		if err != nil {
			return zero, fmt.Errorf("odm: encode: %w", err)
		}
		replacement = bson.Raw(raw)
	}
	got, err := c.findAndModify(ctx, filter, "replace", func(wctx context.Context, f any) *mongo.SingleResult {
		return c.coll.FindOneAndReplace(wctx, f, replacement, o)
	})
	if err != nil {
		return got, err
	}
	return got, after(ctx, doc, 0, cfg, afterSave...)
}

// FindOneAndDelete deletes the first document matching filter (in the
// ReadWith sort, if given) and returns it, or ErrNotFound. No hooks run.
func (c *Collection[T]) FindOneAndDelete(ctx context.Context, filter any, opts ...WriteOption) (T, error) {
	cfg := newWriteConfig(opts)
	o := options.FindOneAndDelete()
	optset.SetShape(o, cfg.shape.Sort, cfg.shape.Projection, cfg.shape.Hint, cfg.shape.Collation)
	return c.findAndModify(ctx, filter, "delete", func(wctx context.Context, f any) *mongo.SingleResult {
		return c.coll.FindOneAndDelete(wctx, f, o)
	})
}

// findAndModify runs one find-and-modify command: its filter checked, its
// deadline bounded, the cache invalidated for what it may have changed, its
// document decoded with the handle's codecs.
func (c *Collection[T]) findAndModify(ctx context.Context, filter any, what string, run func(context.Context, any) *mongo.SingleResult) (T, error) {
	var v T
	f, err := c.filter(filter)
	if err != nil {
		return v, err
	}
	wctx, cancel := c.bounded(ctx)
	res := run(wctx, f)
	raw, err := res.Raw()
	werr := err
	if errors.Is(err, mongo.ErrNoDocuments) {
		werr = nil // the command ran: the server answered
	}
	c.invalidate(wctx, werr, byFilter(f))
	cancel()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return v, fmt.Errorf("odm: find one and %s in %s: %w", what, c.coll.Name(), ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("odm: find one and %s in %s: %w", what, c.coll.Name(), err)
	}
	reg, bo := c.h.BSON()
	if err := decode.Unmarshal(raw, &v, decode.WithRegistry(reg), decode.WithBSONOptions(bo)); err != nil {
		return v, err
	}
	return v, nil
}
