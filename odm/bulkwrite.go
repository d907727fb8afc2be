package odm

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
)

// BulkWrite sends the driver's write models in one driver BulkWrite,
// ordered (stopping at the first failure) or, with Unordered, not:
//
//	res, err := users.BulkWrite(ctx, []mongo.WriteModel{
//		mongo.NewInsertOneModel().SetDocument(&u),
//		mongo.NewUpdateOneModel().SetFilter(query.Eq("_id", id)).SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}),
//		mongo.NewDeleteManyModel().SetFilter(query.Eq("status", "gone")),
//	})
//
// Each model is one of the driver's six (*mongo.InsertOneModel,
// ReplaceOneModel, UpdateOneModel, UpdateManyModel, DeleteOneModel,
// DeleteManyModel), with its own options (Upsert, Collation, Hint,
// ArrayFilters, Sort) as the driver reads them; odm.Upsert sets Upsert on
// every replace and update model. An insert's Document and a replacement's
// Replacement must be a *T: the hooks and Validate of inserts and
// replacements run for every one before anything is sent (WithoutHooks,
// WithoutValidation skip them), and their After hooks for those written; an
// insert gets a new ObjectID for a zero one, as Insert does. A
// ReplaceOneModel without a Filter replaces the document with the
// replacement's _id, as Replace does. Filters are checked as every write's
// are (query.ErrNoFilters for one that says nothing; bson.D{} is every
// document).
//
// If not every model was applied, the error is a *BulkError with the same
// classification as InsertMany's: written, rejected by the server, unknown
// (sent without a reply), or not sent; the result counts what the server
// reported. A malformed model (nil, a document that is not a *T, a filter
// that says nothing, an invalid update, another model type) is a
// *WriteError naming its index, returned before anything is sent, with a
// nil result; no models at all fail as the driver fails them
// (mongo.ErrEmptySlice). The cache is invalidated for what the models may
// change.
func (c *Collection[T]) BulkWrite(ctx context.Context, models []mongo.WriteModel, opts ...query.WriteOption) (*mongo.BulkWriteResult, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return nil, cfg.Err
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("odm: bulk write of no models: %w", mongo.ErrEmptySlice) // as the driver
	}
	b := &bulk[T]{c: c, cfg: cfg, docs: make([]*T, len(models)), fresh: make([]bool, len(models)), inserts: make([]bool, len(models)),
		wms: make([]mongo.WriteModel, len(models)), stmts: make([]cachecore.Stmt, len(models))}
	for i, wm := range models {
		if err := b.add(ctx, i, wm); err != nil {
			b.clearIDs(nil)
			return nil, err
		}
	}
	report := &BulkError{}
	if err := ctx.Err(); err != nil { // nothing is sent
		report.addErr(err)
		b.clearIDs(nil)
		return nil, report
	}
	ch := b.change()
	var res *mongo.BulkWriteResult
	err := c.do(ctx, ch, func(ctx context.Context) error {
		var err error
		res, err = c.coll.BulkWrite(ctx, b.wms, options.BulkWrite().SetOrdered(!cfg.Unordered))
		if res != nil {
			for i, id := range res.UpsertedIDs {
				if int(i) < len(ch.Stmts) {
					s := &ch.Stmts[i]
					s.Upserted = true
					if t, v, err := bson.MarshalValue(id); err == nil {
						s.UpsertedID = bson.RawValue{Type: t, Value: v}
					}
				}
			}
			if err == nil {
				nothing := res.ModifiedCount == 0 && res.DeletedCount == 0 && res.UpsertedCount == 0
				for i := range ch.Stmts {
					s := &ch.Stmts[i]
					if s.Op != cachecore.OpInsert && !s.Upserted {
						s.NotUpserted = true
						s.NoChange = nothing
					}
				}
			}
		}
		return err
	})
	report.record(0, len(models), err, cfg.Unordered)
	if report.Err != nil {
		b.clearIDs(report)
	}
	first := b.after(ctx, report)
	if report.Err != nil {
		return res, report
	}
	return res, first
}

// bulk is a BulkWrite being prepared: the driver models, and for inserts
// and replacements their documents and which ids odm assigned.
type bulk[T any] struct {
	c       *Collection[T]
	cfg     *opt.Config
	docs    []*T
	fresh   []bool
	inserts []bool // which models insert (their After hooks are the insert's)
	wms     []mongo.WriteModel
	stmts   []cachecore.Stmt // what each model changes, for the caches
}

// change is what the bulk write changes, when a cache has reads of the
// collection to keep.
func (b *bulk[T]) change() *cachecore.Change {
	if !cachecore.Watched(b.c.db, b.c.name) {
		return &cachecore.Change{Wide: true}
	}
	return change(b.stmts...)
}

// add checks model i, runs its Before hooks and builds the driver model
// sent (a copy: the caller's is never changed).
func (b *bulk[T]) add(ctx context.Context, i int, wm mongo.WriteModel) error {
	var err error
	switch m := wm.(type) {
	case *mongo.InsertOneModel:
		if m != nil {
			err = b.addInsert(ctx, i, m)
		}
	case *mongo.ReplaceOneModel:
		if m != nil {
			err = b.addReplace(ctx, i, m)
		}
	case *mongo.UpdateOneModel:
		if m != nil {
			err = b.addUpdate(i, m.Filter, m.Update, false, b.flags(m.Upsert, m.Collation, m.ArrayFilters), func(f, u any, upsert *bool) mongo.WriteModel {
				c := *m
				c.Filter, c.Update, c.Upsert = f, u, upsert
				return &c
			})
		}
	case *mongo.UpdateManyModel:
		if m != nil {
			err = b.addUpdate(i, m.Filter, m.Update, true, b.flags(m.Upsert, m.Collation, m.ArrayFilters), func(f, u any, upsert *bool) mongo.WriteModel {
				c := *m
				c.Filter, c.Update, c.Upsert = f, u, upsert
				return &c
			})
		}
	case *mongo.DeleteOneModel:
		if m != nil {
			err = b.addDelete(i, m.Filter, false, m.Collation, func(f any) mongo.WriteModel { c := *m; c.Filter = f; return &c })
		}
	case *mongo.DeleteManyModel:
		if m != nil {
			err = b.addDelete(i, m.Filter, true, m.Collation, func(f any) mongo.WriteModel { c := *m; c.Filter = f; return &c })
		}
	case nil:
	default:
		err = fmt.Errorf("a %T is not one of the driver's six write models", wm)
	}
	if err == nil && b.wms[i] == nil {
		err = ErrNilModel
	}
	var he *HookError
	if err != nil && !errors.As(err, &he) {
		return &WriteError{Index: i, Err: err}
	}
	return err
}

// modelFlags are a model's own options as the rules read them.
type modelFlags struct {
	upsert       *bool // as sent: the model's, or true with odm.Upsert
	arrayFilters bool
	collation    bool
}

// flags returns a model's flags, with odm.Upsert applied.
func (b *bulk[T]) flags(upsert *bool, col *options.Collation, af []any) modelFlags {
	if b.cfg.Upsert {
		t := true
		upsert = &t
	}
	return modelFlags{upsert: upsert, arrayFilters: af != nil, collation: col != nil && col.Locale != "simple"}
}

// addUpdate adds an update of what filter matches.
func (b *bulk[T]) addUpdate(i int, filter, update any, many bool, fl modelFlags, model func(f, u any, upsert *bool) mongo.WriteModel) error {
	reg, bo := b.c.codecs.bson()
	f, err := checkFilter(filter, reg, bo)
	if err != nil {
		return err
	}
	u, err := checkUpdate(update, reg, bo)
	if err != nil {
		return err
	}
	s := b.c.updateStmt(f, u, many, b.cfg)
	s.Upsert = fl.upsert != nil && *fl.upsert
	s.ArrayFilters, s.Collation = fl.arrayFilters, fl.collation
	b.stmts[i], b.wms[i] = s, model(f, u, fl.upsert)
	return nil
}

// addDelete adds a delete of what filter matches.
func (b *bulk[T]) addDelete(i int, filter any, many bool, col *options.Collation, model func(f any) mongo.WriteModel) error {
	reg, bo := b.c.codecs.bson()
	f, err := checkFilter(filter, reg, bo)
	if err != nil {
		return err
	}
	s := b.c.deleteStmt(f, many, b.cfg)
	s.Collation = col != nil && col.Locale != "simple"
	b.stmts[i], b.wms[i] = s, model(f)
	return nil
}

// document returns a model's document as a *T.
func (b *bulk[T]) document(doc any) (*T, error) {
	if err := b.c.documents(); err != nil {
		return nil, err
	}
	d, ok := doc.(*T)
	if !ok || d == nil {
		return nil, fmt.Errorf("the document is a %T, not a non-nil %v", doc, reflect.TypeFor[*T]())
	}
	return d, nil
}

// addInsert adds an insert of a *T, with the insert hooks.
func (b *bulk[T]) addInsert(ctx context.Context, i int, m *mongo.InsertOneModel) error {
	doc, err := b.document(m.Document)
	if err != nil {
		return err
	}
	b.docs[i], b.inserts[i] = doc, true
	if _, b.fresh[i], err = b.c.assignID(doc); err != nil {
		return err
	}
	if err := before(ctx, doc, i, b.cfg, insertHooks...); err != nil {
		return err
	}
	b.stmts[i] = b.c.insertStmt(doc)
	b.wms[i] = mongo.NewInsertOneModel().SetDocument(doc)
	return nil
}

// addReplace adds a replacement by a *T, with the save hooks: of what its
// Filter matches, or, without one, of the document with its _id.
func (b *bulk[T]) addReplace(ctx context.Context, i int, m *mongo.ReplaceOneModel) error {
	doc, err := b.document(m.Replacement)
	if err != nil {
		return err
	}
	b.docs[i] = doc
	fl := b.flags(m.Upsert, m.Collation, nil)
	var f any
	if m.Filter == nil {
		f = bson.D{{Key: "_id", Value: b.c.idOf(doc)}}
	} else {
		reg, bo := b.c.codecs.bson()
		if f, err = checkFilter(m.Filter, reg, bo); err != nil {
			return err
		}
	}
	if err := before(ctx, doc, i, b.cfg, saveHooks...); err != nil {
		return err
	}
	s := cachecore.Stmt{Op: cachecore.OpReplace, Filter: b.c.rawFilter(f), DocFunc: b.c.docFunc(doc),
		Upsert: fl.upsert != nil && *fl.upsert, Collation: fl.collation}
	c := *m
	c.Filter, c.Replacement, c.Upsert = f, doc, fl.upsert
	b.stmts[i], b.wms[i] = s, &c
	return nil
}

// clearIDs puts back the zero ids odm assigned to documents not stored
// (all of them when report is nil: nothing was sent).
func (b *bulk[T]) clearIDs(report *BulkError) {
	b.c.clearIDs(func(i int) *T { return b.docs[i] }, b.fresh, report)
}

// after runs the After hooks of the documents written, and returns the
// first hook error.
func (b *bulk[T]) after(ctx context.Context, report *BulkError) error {
	if b.cfg.SkipHooks {
		return nil
	}
	var first error
	run := func(i int) {
		if b.docs[i] == nil {
			return
		}
		hooks := afterSave
		if b.inserts[i] {
			hooks = afterInsert
		}
		if err := after(ctx, b.docs[i], i, b.cfg, hooks...); err != nil && first == nil {
			first = err
		}
	}
	if report.Err == nil {
		for i := range b.docs {
			run(i)
		}
		return first
	}
	for _, i := range report.Written {
		run(i)
	}
	return first
}
