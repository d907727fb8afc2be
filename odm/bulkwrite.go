package odm

import (
	"context"
	"fmt"
	"reflect"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/opt"
	"github.com/databridge-go/databridge/query"
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
// *WriteError naming its index, returned before anything is sent. Upsert applies to every
// replace and update model. The cache is invalidated for what the models
// may change.
func (c *Collection[T]) BulkWrite(ctx context.Context, models []WriteModel, opts ...query.WriteOption) (BulkResult, error) {
	if err := c.usable(); err != nil {
		return BulkResult{}, err
	}
	cfg := writeConfig(opts)
	if cfg.Err != nil {
		return BulkResult{}, cfg.Err
	}
	if len(models) == 0 {
		return BulkResult{}, nil
	}
	b := &bulk[T]{c: c, cfg: cfg, docs: make([]*T, len(models)), fresh: make([]bool, len(models)), wms: make([]mongo.WriteModel, len(models)), stmts: make([]cachecore.Stmt, len(models))}
	for i, wm := range models {
		if err := b.add(ctx, i, wm); err != nil {
			b.clearIDs(nil)
			return BulkResult{}, err
		}
	}
	report := &BulkError{}
	if err := ctx.Err(); err != nil { // nothing is sent
		report.addErr(err)
		b.clearIDs(nil)
		return BulkResult{}, report
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
	var out BulkResult
	if res != nil {
		out = BulkResult{Inserted: res.InsertedCount, Matched: res.MatchedCount, Modified: res.ModifiedCount,
			Deleted: res.DeletedCount, Upserted: res.UpsertedCount, UpsertedIDs: res.UpsertedIDs}
	}
	if report.Err != nil {
		b.clearIDs(report)
	}
	first := b.after(ctx, models, report)
	if report.Err != nil {
		return out, report
	}
	return out, first
}

// bulk is a BulkWrite being prepared: the driver models, and for inserts
// and replacements their documents and which ids odm assigned.
type bulk[T any] struct {
	c     *Collection[T]
	cfg   *opt.Config
	docs  []*T
	fresh []bool
	wms   []mongo.WriteModel
	stmts []cachecore.Stmt // what each model changes, for the caches
}

// change is what the bulk write changes, when a cache has reads of the
// collection to keep.
func (b *bulk[T]) change() *cachecore.Change {
	if !cachecore.Watched(b.c.db, b.c.name) {
		return &cachecore.Change{Wide: true}
	}
	return change(b.stmts...)
}

// add checks model i, runs its Before hooks and builds its driver model.
func (b *bulk[T]) add(ctx context.Context, i int, wm WriteModel) error {
	if wm == nil {
		return &WriteError{Index: i, Err: ErrNilModel}
	}
	m := wm.bulkModel()
	if m.kind == kindInsert || m.kind == kindReplace {
		return b.addDoc(ctx, i, m)
	}
	reg, bo := b.c.codecs.bson()
	f, err := checkFilter(m.filter, reg, bo)
	if err != nil {
		return &WriteError{Index: i, Err: err}
	}
	var u any
	if m.kind == kindUpdateOne || m.kind == kindUpdateMany {
		if u, err = checkUpdate(m.update, reg, bo); err != nil {
			return &WriteError{Index: i, Err: err}
		}
	}
	switch m.kind {
	case kindUpdateOne, kindUpdateMany:
		b.stmts[i] = b.c.updateStmt(f, u, m.kind == kindUpdateMany, b.cfg)
		b.stmts[i].ArrayFilters, b.stmts[i].Collation = false, false // not set on models
	default:
		b.stmts[i] = b.c.deleteStmt(f, m.kind == kindDeleteMany, b.cfg)
		b.stmts[i].Collation = false
	}
	switch m.kind {
	case kindUpdateOne:
		b.wms[i] = mongo.NewUpdateOneModel().SetFilter(f).SetUpdate(u).SetUpsert(b.cfg.Upsert)
	case kindUpdateMany:
		b.wms[i] = mongo.NewUpdateManyModel().SetFilter(f).SetUpdate(u).SetUpsert(b.cfg.Upsert)
	case kindDeleteOne:
		b.wms[i] = mongo.NewDeleteOneModel().SetFilter(f)
	case kindDeleteMany:
		b.wms[i] = mongo.NewDeleteManyModel().SetFilter(f)
	}
	return nil
}

// addDoc adds an insert or a replacement of a *T.
func (b *bulk[T]) addDoc(ctx context.Context, i int, m bulkModel) error {
	if err := b.c.documents(); err != nil {
		return &WriteError{Index: i, Err: err}
	}
	doc, ok := m.doc.(*T)
	if !ok || doc == nil {
		return &WriteError{Index: i, Err: fmt.Errorf("the document is a %T, not a non-nil %v", m.doc, reflect.TypeFor[*T]())}
	}
	b.docs[i] = doc
	var id any
	hooks := saveHooks
	if m.kind == kindInsert {
		var err error
		if id, b.fresh[i], err = b.c.assignID(doc); err != nil {
			return &WriteError{Index: i, Err: err}
		}
		hooks = insertHooks
	} else {
		id = b.c.idOf(doc)
	}
	if err := before(ctx, doc, i, b.cfg, hooks...); err != nil {
		return err
	}
	if m.kind == kindInsert {
		b.stmts[i] = b.c.insertStmt(doc)
		b.wms[i] = mongo.NewInsertOneModel().SetDocument(doc)
	} else {
		b.stmts[i] = b.c.replaceStmt(id, doc, b.cfg.Upsert)
		b.wms[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(doc).SetUpsert(b.cfg.Upsert)
	}
	return nil
}

// clearIDs puts back the zero ids odm assigned to documents not stored
// (all of them when report is nil: nothing was sent).
func (b *bulk[T]) clearIDs(report *BulkError) {
	b.c.clearIDs(func(i int) *T { return b.docs[i] }, b.fresh, report)
}

// after runs the After hooks of the documents written, and returns the
// first hook error.
func (b *bulk[T]) after(ctx context.Context, models []WriteModel, report *BulkError) error {
	if b.cfg.SkipHooks {
		return nil
	}
	var first error
	run := func(i int) {
		if b.docs[i] == nil {
			return
		}
		hooks := afterSave
		if models[i].bulkModel().kind == kindInsert {
			hooks = afterInsert
		}
		if err := after(ctx, b.docs[i], i, b.cfg, hooks...); err != nil && first == nil {
			first = err
		}
	}
	if report.Err == nil {
		for i := range models {
			run(i)
		}
		return first
	}
	for _, i := range report.Written {
		run(i)
	}
	return first
}
