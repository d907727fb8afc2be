package odm

import (
	"context"
	"fmt"
	"reflect"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// WriteModel is one write of a BulkWrite: InsertModel, ReplaceModel,
// UpdateOneModel, UpdateManyModel, DeleteOneModel or DeleteManyModel.
type WriteModel interface{ bulkModel() bulkModel }

type bulkKind int

const (
	kindInsert bulkKind = iota
	kindReplace
	kindUpdateOne
	kindUpdateMany
	kindDeleteOne
	kindDeleteMany
)

type bulkModel struct {
	kind           bulkKind
	doc            any // *T, for inserts and replaces
	filter, update any
}

func (m bulkModel) bulkModel() bulkModel { return m }

// InsertModel inserts doc (a *T of the collection's T), with the insert
// hooks and Validate, and a new ObjectID for a zero one, as Insert does.
func InsertModel(doc any) WriteModel { return bulkModel{kind: kindInsert, doc: doc} }

// ReplaceModel replaces the stored document with doc's _id (doc is a *T),
// with BeforeSave, Validate and AfterSave, as Replace does; with the
// BulkWrite's Upsert option it inserts doc when none has that _id.
func ReplaceModel(doc any) WriteModel { return bulkModel{kind: kindReplace, doc: doc} }

// UpdateOneModel applies update to the first document matching filter.
func UpdateOneModel(filter, update any) WriteModel {
	return bulkModel{kind: kindUpdateOne, filter: filter, update: update}
}

// UpdateManyModel applies update to every document matching filter.
func UpdateManyModel(filter, update any) WriteModel {
	return bulkModel{kind: kindUpdateMany, filter: filter, update: update}
}

// DeleteOneModel deletes the first document matching filter.
func DeleteOneModel(filter any) WriteModel { return bulkModel{kind: kindDeleteOne, filter: filter} }

// DeleteManyModel deletes every document matching filter.
func DeleteManyModel(filter any) WriteModel { return bulkModel{kind: kindDeleteMany, filter: filter} }

// BulkResult counts what a BulkWrite did.
type BulkResult struct {
	Inserted, Matched, Modified, Deleted, Upserted int64
	UpsertedIDs                                    map[int64]any // by model index
}

// BulkWrite sends models in one driver BulkWrite, ordered (stopping at the
// first failure) or, with Unordered, not. The hooks and Validate of inserts
// and replacements run for every one before anything is sent (WithoutHooks,
// WithoutValidation skip them), and their After hooks for those written.
// If not every model was applied, the error is a *BulkError with the same
// classification as InsertMany's: written, rejected by the server, unknown
// (sent without a reply), or not sent. A malformed model (nil, a document
// of the wrong type, a filter that says nothing, an invalid update) is a
// *ModelError, returned before anything is sent. Upsert applies to every
// replace and update model. The cache is invalidated for what the models
// may change.
func (c *Collection[T]) BulkWrite(ctx context.Context, models []WriteModel, opts ...WriteOption) (BulkResult, error) {
	cfg := newWriteConfig(opts)
	if len(models) == 0 {
		return BulkResult{}, nil
	}
	docs := make([]*T, len(models))
	fresh := make([]bool, len(models))
	wms := make([]mongo.WriteModel, len(models))
	var ids []any
	confined := true
	doc := func(i int) *T { return docs[i] }
	clear := func() { c.clearIDs(doc, fresh, nil) }
	reg, bo := c.h.BSON()
	for i, wm := range models {
		if wm == nil {
			clear()
			return BulkResult{}, &ModelError{Index: i, Err: ErrNilModel}
		}
		m := wm.bulkModel()
		switch m.kind {
		case kindInsert, kindReplace:
			doc, ok := m.doc.(*T)
			if !ok || doc == nil {
				clear()
				return BulkResult{}, &ModelError{Index: i, Err: fmt.Errorf("the document is a %T, not a non-nil %v", m.doc, reflect.TypeFor[*T]())}
			}
			docs[i] = doc
			var id any
			var err error
			hooks := saveHooks
			if m.kind == kindInsert {
				if id, fresh[i], err = c.assignID(doc); err != nil {
					clear()
					return BulkResult{}, &ModelError{Index: i, Err: err}
				}
				hooks = insertHooks
			} else {
				id = c.idOf(doc)
			}
			if err := before(ctx, doc, i, cfg, hooks...); err != nil {
				clear()
				return BulkResult{}, err
			}
			ids = append(ids, id)
			if m.kind == kindInsert {
				wms[i] = mongo.NewInsertOneModel().SetDocument(doc)
			} else {
				wms[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(doc).SetUpsert(cfg.upsert)
			}
		default:
			f, err := checkFilter(m.filter, reg, bo)
			if err != nil {
				clear()
				return BulkResult{}, &ModelError{Index: i, Err: err}
			}
			var u any
			if m.kind == kindUpdateOne || m.kind == kindUpdateMany {
				if u, err = checkUpdate(m.update, reg, bo); err != nil {
					clear()
					return BulkResult{}, &ModelError{Index: i, Err: err}
				}
			}
			confined = false // the filters' ids are not tracked here: collection-wide
			switch m.kind {
			case kindUpdateOne:
				wms[i] = mongo.NewUpdateOneModel().SetFilter(f).SetUpdate(u).SetUpsert(cfg.upsert)
			case kindUpdateMany:
				wms[i] = mongo.NewUpdateManyModel().SetFilter(f).SetUpdate(u).SetUpsert(cfg.upsert)
			case kindDeleteOne:
				wms[i] = mongo.NewDeleteOneModel().SetFilter(f)
			case kindDeleteMany:
				wms[i] = mongo.NewDeleteManyModel().SetFilter(f)
			}
		}
	}
	report := &BulkError{}
	if err := ctx.Err(); err != nil { // nothing is sent
		report.addErr(err)
		clear()
		return BulkResult{}, report
	}
	w := anything
	if confined {
		w = byID(ids...)
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.BulkWrite(wctx, wms, options.BulkWrite().SetOrdered(!cfg.unordered))
	c.invalidate(wctx, err, w)
	cancel()
	report.record(0, len(models), err, cfg.unordered)
	var out BulkResult
	if res != nil {
		out = BulkResult{Inserted: res.InsertedCount, Matched: res.MatchedCount, Modified: res.ModifiedCount,
			Deleted: res.DeletedCount, Upserted: res.UpsertedCount, UpsertedIDs: res.UpsertedIDs}
	}
	if report.Err != nil {
		c.clearIDs(doc, fresh, report)
	}
	if cfg.skipHooks {
		if report.Err != nil {
			return out, report
		}
		return out, nil
	}
	var first error
	run := func(i int) {
		if docs[i] == nil {
			return
		}
		hooks := afterSave
		if models[i].bulkModel().kind == kindInsert {
			hooks = afterInsert
		}
		if err := after(ctx, docs[i], i, cfg, hooks...); err != nil && first == nil {
			first = err
		}
	}
	if report.Err == nil {
		for i := range models {
			run(i)
		}
		return out, first
	}
	for _, i := range report.Written {
		run(i)
	}
	return out, report
}
