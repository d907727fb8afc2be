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

	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/outcome"
)

// InsertMany inserts docs, writing new ObjectIDs into zero _ids.
// BeforeInsert and Validate run for every document before anything is sent;
// AfterInsert runs for every document written.
//
// Documents go out in driver calls of InsertBatch documents (10,000 by
// default), each acknowledged before the next. If not every document is
// written, the error is a *BulkError that says which were (Written), which
// the server rejected (Failed; see Unordered) and which were sent without a
// reply (Unknown). Documents are never reported written unless the server
// acknowledged them.
//
// Documents are encoded by a compiled encoder. When no BeforeInsert hook
// runs, zero ObjectID _ids are assigned by the driver and written back from
// its reply (2.6x less client CPU than the driver's InsertMany of the same
// structs; the driver decodes every _id it is given back through a new
// decoder). Ids of Unknown documents on this path stay zero, as there was no
// reply to read them from: callers who must look such documents up after a
// failure set the ids before the call, at the driver's cost. With hooks,
// odm assigns the ids first so that hooks see them.
func (c *Collection[T]) InsertMany(ctx context.Context, docs []T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	if len(docs) == 0 {
		return nil
	}
	batch := make([]any, len(docs))
	plan := encode.For(reflect.TypeFor[T]())
	_, hooked := any((*T)(nil)).(BeforeInsertHook)
	fast := plan.HasObjectID() && (cfg.skipHooks || !hooked) && c.encodesNatively()
	var missing []bool // documents whose id the driver assigns
	var fresh []bool   // documents whose id odm assigned
	if fast {
		missing = make([]bool, len(docs))
	} else {
		fresh = make([]bool, len(docs))
	}
	var buf []byte
	for i := range docs {
		if fast {
			missing[i] = c.idIsZero(&docs[i])
		} else {
			var err error
			if _, fresh[i], err = c.assignID(&docs[i]); err != nil {
				c.clearIDs(elems(docs), fresh, nil)
				return fmt.Errorf("odm: document %d: %w", i, err)
			}
		}
		if err := before(ctx, &docs[i], i, cfg, insertHooks...); err != nil {
			c.clearIDs(elems(docs), fresh, nil)
			return err
		}
		if !fast || !missing[i] {
			// A document with its own id goes to the driver as it is: the
			// driver decodes the _id of every document it is given back
			// out of its encoding (mongo.ensureID), and reading a
			// pre-encoded one costs more than encoding the struct.
			batch[i] = &docs[i]
			continue
		}
		start := len(buf)
		var err error
		if buf, err = plan.Append(buf, unsafe.Pointer(&docs[i]), true); err != nil {
			return fmt.Errorf("odm: encode document %d: %w", i, err)
		}
		// Earlier documents keep pointing into the old array if buf grows.
		batch[i] = bson.Raw(buf[start:len(buf):len(buf)])
	}
	report := c.insertBatches(ctx, docs, batch, missing, cfg) // invalidates per batch
	if report.Err != nil {
		c.clearIDs(elems(docs), fresh, report)
	}
	return finish(ctx, report, docs, cfg, func(int) []hook { return afterInsert })
}

// clearIDs puts back the zero ObjectIDs odm assigned (fresh[i]) to the
// documents a bulk write did not store: all of them when report is nil
// (nothing was sent), else those neither written nor of unknown fate.
func (c *Collection[T]) clearIDs(doc func(i int) *T, fresh []bool, report *BulkError) {
	var keep map[int]bool
	if report != nil {
		keep = make(map[int]bool, len(report.Written)+len(report.Unknown))
		for _, i := range report.Written {
			keep[i] = true
		}
		for _, i := range report.Unknown {
			keep[i] = true
		}
	}
	for i, f := range fresh {
		if f && !keep[i] {
			c.clearID(doc(i))
		}
	}
}

// elems returns the accessor of docs' elements that clearIDs takes.
func elems[T any](docs []T) func(int) *T { return func(i int) *T { return &docs[i] } }

// insertBatches sends batch in driver calls of cfg.batchSize documents and
// records the fate of every document in the returned report (whose Err is
// nil when all were written). Ids the driver assigned (missing[i]) are
// written back into docs from each reply.
func (c *Collection[T]) insertBatches(ctx context.Context, docs []T, batch []any, missing []bool, cfg writeConfig) *BulkError {
	report := &BulkError{}
	opts := options.InsertMany().SetOrdered(!cfg.unordered)
	for lo := 0; lo < len(batch); lo += cfg.batchSize {
		hi := min(lo+cfg.batchSize, len(batch))
		if err := ctx.Err(); err != nil { // nothing more is sent
			report.addErr(err)
			break
		}
		wctx, cancel := c.bounded(ctx)
		res, err := c.coll.InsertMany(wctx, batch[lo:hi], opts)
		c.invalidate(wctx, err, c.batchIDs(docs[lo:hi], missing, lo))
		cancel()
		written, stop := report.record(lo, hi, err, cfg.unordered)
		if res != nil && missing != nil {
			// The driver's ids are those of the written documents, in order.
			for k, id := range res.InsertedIDs {
				i := lo + k // written is nil when the whole batch was
				if written != nil {
					if k >= len(written) {
						break
					}
					i = written[k]
				}
				if oid, ok := id.(bson.ObjectID); ok && missing[i] {
					c.setID(&docs[i], oid)
				}
			}
		}
		if stop {
			break
		}
	}
	return report
}

// record files documents lo..hi-1, sent in one driver call that returned
// err, under Written, Failed or Unknown, and returns the newly written ones
// (nil if all of them were) and whether the bulk write must stop here. Until
// the first failure nothing is listed: a write that succeeds builds no
// index list.
func (e *BulkError) record(lo, hi int, err error, unordered bool) (written []int, stop bool) {
	if err == nil && e.Err == nil {
		e.clean = hi
		return nil, false
	}
	e.addErr(err)
	var bwe mongo.BulkWriteException
	if err != nil && (!errors.As(err, &bwe) || len(bwe.WriteErrors) == 0) {
		// No per-document verdict. If the error proves nothing was sent
		// (no server selected, no connection checked out, the deadline
		// passed first), the documents are in no list; otherwise (a
		// network error, a timeout, a write concern error) the whole
		// call's outcome is unknown.
		if outcome.Of(err) != outcome.NotSent {
			for i := lo; i < hi; i++ {
				e.Unknown = append(e.Unknown, i)
			}
		}
		return nil, true
	}
	rejected := make(map[int]error, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		rejected[lo+we.Index] = we
	}
	n := len(e.Written)
	for i := lo; i < hi; i++ {
		if werr, ok := rejected[i]; ok {
			e.Failed = append(e.Failed, IndexError{Index: i, Err: werr})
			if !unordered { // the server stopped here
				break
			}
			continue
		}
		e.Written = append(e.Written, i)
	}
	return e.Written[n:], len(rejected) > 0 && !unordered
}

// addErr records err (if not nil) as the cause, or as one more: an
// unordered write can meet rejections, then a lost server.
func (e *BulkError) addErr(err error) {
	switch {
	case err == nil:
	case e.Err == nil:
		e.Err = err
		e.Written = make([]int, e.clean) // the documents written so far
		for i := range e.Written {
			e.Written[i] = i
		}
	default:
		e.Err = errors.Join(e.Err, err)
	}
}

// finish runs the After hooks of the documents report lists as written and
// returns the outcome of the whole write: report if not every document was
// written, or else the first hook error.
func finish[T any](ctx context.Context, report *BulkError, docs []T, cfg writeConfig, hooks func(i int) []hook) error {
	var first error
	run := func(i int) {
		if err := after(ctx, &docs[i], i, cfg, hooks(i)...); err != nil && first == nil {
			first = err
		}
	}
	switch {
	case cfg.skipHooks:
	case report.Err == nil: // every document was written
		for i := range docs {
			run(i)
		}
	default:
		for _, i := range report.Written {
			run(i)
		}
	}
	if report.Err != nil {
		return report
	}
	return first
}

// BulkSave saves every document in one BulkWrite of upserts by _id:
// documents with a zero _id first get a new ObjectID (so their upsert
// inserts them), the others replace or insert the stored document.
// BeforeSave (and BeforeInsert for new documents) and Validate run for every
// document before anything is sent; After hooks run for every document
// written. If not every document is written, the error is a *BulkError.
func (c *Collection[T]) BulkSave(ctx context.Context, docs []T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	if len(docs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(docs))
	isNew := make([]bool, len(docs))
	plan := encode.For(reflect.TypeFor[T]())
	native := c.encodesNatively()
	var buf []byte
	for i := range docs {
		id, fresh, err := c.assignID(&docs[i])
		if err != nil {
			c.clearIDs(elems(docs), isNew, nil)
			return fmt.Errorf("odm: document %d: %w", i, err)
		}
		isNew[i] = fresh
		hooks := saveHooks
		if fresh {
			hooks = saveInsertHooks
		}
		if err := before(ctx, &docs[i], i, cfg, hooks...); err != nil {
			c.clearIDs(elems(docs), isNew, nil)
			return err
		}
		if !native { // the driver encodes it, with the client's registry and options
			models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(&docs[i]).SetUpsert(true)
			continue
		}
		// Every document, new ones included (their fresh id matches
		// nothing), is an upsert by _id with a replacement encoded once by
		// the compiled encoder: the driver copies it as it is.
		start := len(buf)
		if buf, err = plan.Append(buf, unsafe.Pointer(&docs[i]), false); err != nil {
			c.clearIDs(elems(docs), isNew, nil)
			return fmt.Errorf("odm: encode document %d: %w", i, err)
		}
		replacement := bson.Raw(buf[start:len(buf):len(buf)])
		var filter any = bson.D{{Key: "_id", Value: id}}
		if oid, ok := id.(bson.ObjectID); ok { // {_id: oid}, pre-encoded too
			start = len(buf)
			buf = append(buf, 22, 0, 0, 0, byte(bson.TypeObjectID), '_', 'i', 'd', 0)
			buf = append(append(buf, oid[:]...), 0)
			filter = bson.Raw(buf[start:len(buf):len(buf)])
		}
		models[i] = mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(replacement).SetUpsert(true)
	}
	report := &BulkError{}
	if err := ctx.Err(); err != nil { // nothing is sent
		report.addErr(err)
		c.clearIDs(elems(docs), isNew, nil)
		return report
	}
	wctx, cancel := c.bounded(ctx)
	_, err := c.coll.BulkWrite(wctx, models, options.BulkWrite().SetOrdered(!cfg.unordered))
	c.invalidate(wctx, err, c.batchIDs(docs, nil, 0))
	cancel()
	report.record(0, len(docs), err, cfg.unordered)
	if report.Err != nil {
		c.clearIDs(elems(docs), isNew, report)
	}
	return finish(ctx, report, docs, cfg, func(i int) []hook {
		if isNew[i] {
			return afterInsertSave
		}
		return afterSave
	})
}

// batchIDs is what an insert of docs changes: their ids, or anything when
// the driver assigns some of them (missing, indexed from lo).
func (c *Collection[T]) batchIDs(docs []T, missing []bool, lo int) changed {
	ids := make([]any, len(docs))
	for i := range docs {
		if missing != nil && missing[lo+i] {
			return anything
		}
		ids[i] = c.idOf(&docs[i])
	}
	return byID(ids...)
}
