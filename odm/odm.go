package odm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/bsontag"
	"github.com/databridge-go/databridge/internal/encode"
	"github.com/databridge-go/databridge/internal/outcome"
	"github.com/databridge-go/databridge/query"
)

// Hooks are small interfaces that model types implement to run code around
// writes; they are found by type assertion on *T. Each takes the write's
// context and aborts the write by returning an error (wrapped in a
// *HookError). Hooks run per document, also in InsertMany and BulkSave,
// before anything is sent; WithoutHooks skips them.
type (
	// BeforeSaveHook runs first in Save and BulkSave.
	BeforeSaveHook interface {
		BeforeSave(ctx context.Context) error
	}
	// AfterSaveHook runs after a successful Save or BulkSave.
	AfterSaveHook interface {
		AfterSave(ctx context.Context) error
	}
	// BeforeInsertHook runs before a document is inserted (Insert,
	// InsertMany, and Save or BulkSave of a document without an _id).
	BeforeInsertHook interface {
		BeforeInsert(ctx context.Context) error
	}
	// AfterInsertHook runs after a successful insert.
	AfterInsertHook interface {
		AfterInsert(ctx context.Context) error
	}
	// BeforeDeleteHook runs before Delete.
	BeforeDeleteHook interface {
		BeforeDelete(ctx context.Context) error
	}
	// AfterDeleteHook runs after a successful Delete.
	AfterDeleteHook interface {
		AfterDelete(ctx context.Context) error
	}
)

// Validator is implemented by model types that check themselves before
// they are written. It runs after the Before hooks (which may fill in
// defaults) and before anything is sent; WithoutValidation skips it.
type Validator interface{ Validate() error }

// ErrNotFound is returned by Replace and Delete when no document has the
// given _id. It also matches mongo.ErrNoDocuments with errors.Is.
var ErrNotFound = query.ErrNotFound

// ValidationError reports a document that failed Validate; nothing was
// written. Index is the document's position in a bulk call (0 otherwise).
type ValidationError struct {
	Index int
	Err   error
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("odm: document %d failed validation: %v", e.Index, e.Err)
}

// Unwrap returns the validator's error.
func (e *ValidationError) Unwrap() error { return e.Err }

// HookError reports a hook that aborted a write (Before hooks: nothing was
// written) or failed after it (After hooks: the write happened).
type HookError struct {
	Hook  string // "BeforeSave", "AfterInsert", …
	Index int
	Err   error
}

// Error implements error.
func (e *HookError) Error() string {
	return fmt.Sprintf("odm: %s hook of document %d: %v", e.Hook, e.Index, e.Err)
}

// Unwrap returns the hook's error.
func (e *HookError) Unwrap() error { return e.Err }

// BulkError reports a bulk write (InsertMany, BulkSave) that did not write
// every document, with what is known about each one: written (acknowledged
// by the server), rejected by the server (Failed), or sent without a reply
// (Unknown: the connection dropped, the server died or the context ended
// before the reply, so each may or may not be stored). Documents in none of
// the three lists were not sent. Nothing is listed as written that the
// server did not acknowledge.
//
// Unknown documents whose _id was assigned before the call (by the caller,
// or by odm when hooks run) can be looked up by it once the server is back;
// see InsertMany for the fast path, where the driver assigns ids.
type BulkError struct {
	Written []int        // acknowledged as written, in input order
	Failed  []IndexError // rejected by the server, in input order
	Unknown []int        // sent, but no reply: may or may not be stored
	Err     error        // the driver's error (errors joined, if batches failed differently)

	clean int // documents 0..clean-1 were written before the first failure; Written lists them once there is one
}

// IndexError is one rejected document of a bulk write.
type IndexError struct {
	Index int
	Err   error
}

// Error implements error: the counts, the first rejections and, when some
// documents' fate is unknown, the error that cut the write short.
func (e *BulkError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "odm: bulk write: %d written, %d rejected, %d unknown", len(e.Written), len(e.Failed), len(e.Unknown))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; document %d: %v", f.Index, f.Err)
	}
	if len(e.Failed) == 0 || len(e.Unknown) > 0 {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the driver's error, so mongo.IsDuplicateKeyError,
// mongo.IsNetworkError, IsDuplicateKey and errors.Is(err,
// context.DeadlineExceeded) work on it.
func (e *BulkError) Unwrap() error { return e.Err }

// IsDuplicateKey reports whether err (from any write here, bulk or single)
// is a duplicate key error.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

// WriteOption configures one write.
type WriteOption interface{ apply(*writeConfig) }

type writeConfig struct {
	skipValidation, skipHooks, unordered bool
	batchSize                            int
}

type writeOptionFunc func(*writeConfig)

func (f writeOptionFunc) apply(c *writeConfig) { f(c) }

// WithoutValidation skips Validate for this write: the fast path for data
// already known to be valid. Default: validation runs. Skipping it writes
// whatever the struct holds; use it only for trusted, already-checked data.
func WithoutValidation() WriteOption {
	return writeOptionFunc(func(c *writeConfig) { c.skipValidation = true })
}

// WithoutHooks skips every hook for this write. Default: hooks run. With
// WithoutValidation too, Save is a single driver call.
func WithoutHooks() WriteOption { return writeOptionFunc(func(c *writeConfig) { c.skipHooks = true }) }

// Unordered lets InsertMany and BulkSave continue past a rejected document;
// the returned *BulkError lists every rejected one. Default: ordered (stop at
// the first failure).
func Unordered() WriteOption { return writeOptionFunc(func(c *writeConfig) { c.unordered = true }) }

// DefaultInsertBatch is how many documents InsertMany sends per
// acknowledged driver call unless InsertBatch says otherwise.
const DefaultInsertBatch = 10_000

// InsertBatch makes InsertMany send at most n documents per driver call
// (default DefaultInsertBatch). Each call is acknowledged before the next is
// sent, so when one fails, every document of the earlier calls is known to
// be written: a smaller n narrows what a lost connection leaves unknown, a
// larger one saves round trips. n < 1 means the default.
func InsertBatch(n int) WriteOption {
	return writeOptionFunc(func(c *writeConfig) { c.batchSize = n })
}

func newWriteConfig(opts []WriteOption) writeConfig {
	c := writeConfig{batchSize: DefaultInsertBatch}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.batchSize < 1 {
		c.batchSize = DefaultInsertBatch
	}
	return c
}

// Collection writes (and reads) model values of type T in one MongoDB
// collection. It is safe for concurrent use.
type Collection[T any] struct {
	coll         *mongo.Collection
	cache        *cache.Cache
	id           idField
	h            query.Handle[T]
	writeTimeout time.Duration
}

// Iter streams the documents matching filter: see query.Handle.Iter.
func (c *Collection[T]) Iter(ctx context.Context, filter any, opts ...query.Option) iter.Seq2[T, error] {
	return c.h.Iter(ctx, filter, opts...)
}

// FindMany returns the documents matching filter: see query.Handle.FindMany.
func (c *Collection[T]) FindMany(ctx context.Context, filter any, opts ...query.Option) ([]T, error) {
	return c.h.FindMany(ctx, filter, opts...)
}

// FindOne returns the first document matching filter, or ErrNotFound: see
// query.Handle.FindOne.
func (c *Collection[T]) FindOne(ctx context.Context, filter any, opts ...query.Option) (T, error) {
	return c.h.FindOne(ctx, filter, opts...)
}

// Count counts the documents matching filter: see query.Handle.Count.
func (c *Collection[T]) Count(ctx context.Context, filter any, opts ...query.Option) (int64, error) {
	return c.h.Count(ctx, filter, opts...)
}

// Option configures a Collection.
type Option interface{ applyColl(*collConfig) }

type collConfig struct {
	cache        *cache.Cache
	writeTimeout time.Duration
	bson         bool
	reg          *bson.Registry
	bsonOpts     *options.BSONOptions
}

type collOptionFunc func(*collConfig)

func (f collOptionFunc) applyColl(c *collConfig) { f(c) }

// WithCache makes the collection invalidate (and its reads use) c instead of
// the process default set by query.UseCache.
func WithCache(c *cache.Cache) Option { return collOptionFunc(func(cc *collConfig) { cc.cache = c }) }

// WithBSON declares the registry and BSON options of a database or
// collection created with its own SetRegistry or SetBSONOptions (see
// query.Handle.WithBSON); a client's are declared once with
// query.UseClientOptions. Reads decode, and writes store, as the driver
// does with them.
func WithBSON(reg *bson.Registry, opts *options.BSONOptions) Option {
	return collOptionFunc(func(cc *collConfig) { cc.bson, cc.reg, cc.bsonOpts = true, reg, opts })
}

// DefaultWriteTimeout is the WriteTimeout default.
const DefaultWriteTimeout = time.Minute

// WriteTimeout bounds each driver call of a write whose context has no
// deadline (each batch of InsertMany is one call). The driver sends the
// deadline to the server as maxTimeMS, so even a write whose reply is lost
// ends by then, which is what lets the cache resume after it (see
// cache.Cache.Unsettled). A write with its own context deadline keeps it.
// d <= 0 sends no limit: after a lost reply such a write's collection is
// then not cached for the cache's DefaultTTL. Default: DefaultWriteTimeout.
func WriteTimeout(d time.Duration) Option {
	return collOptionFunc(func(cc *collConfig) { cc.writeTimeout = d })
}

// New returns the Collection of T in coll. T must be a struct with an _id
// field (a field whose bson key is "_id").
func New[T any](coll *mongo.Collection, opts ...Option) (*Collection[T], error) {
	cfg := collConfig{writeTimeout: DefaultWriteTimeout}
	for _, o := range opts {
		o.applyColl(&cfg)
	}
	id, err := idFieldOf(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	h := query.From[T](coll)
	if cfg.cache != nil {
		h = h.WithCache(cfg.cache)
	}
	if cfg.bson {
		h = h.WithBSON(cfg.reg, cfg.bsonOpts)
	}
	return &Collection[T]{coll: coll, cache: cfg.cache, id: id, h: h, writeTimeout: cfg.writeTimeout}, nil
}

// Collection returns the driver collection.
func (c *Collection[T]) Collection() *mongo.Collection { return c.coll }

// invalidate runs after every driver write call, successful or not: the
// server may have applied part of it. When the outcome is unknown (sent,
// no reply), the write may still be running until its deadline, the
// maxTimeMS the driver sent from wctx: the cache treats the collection as
// unsettled until then (see cache.Cache.Unsettled).
func (c *Collection[T]) invalidate(wctx context.Context, err error) {
	rc := c.cache
	if rc == nil {
		rc = query.DefaultCache()
	}
	if rc == nil {
		return
	}
	if outcome.Of(err) == outcome.Unknown {
		deadline, _ := wctx.Deadline()
		rc.Unsettled(c.coll.Database().Name(), c.coll.Name(), deadline)
		return
	}
	rc.Invalidate(c.coll.Database().Name(), c.coll.Name())
}

// encodesNatively reports whether the compiled encoder stores what the
// driver would with the registry and BSON options declared for the
// collection's client (query.UseClientOptions) or handle; where not, the
// values go to the driver, which encodes them with the client's settings.
func (c *Collection[T]) encodesNatively() bool {
	reg, opts := c.h.BSON()
	return encode.Native(reflect.TypeFor[T](), reg, opts)
}

// bounded returns the context of one driver write call: ctx, or, when ctx
// has no deadline, ctx bounded by the collection's WriteTimeout. The
// driver sends the deadline as maxTimeMS, so the server stops the write by
// then: that is what bounds the cache's wait after a write whose reply was
// lost.
func (c *Collection[T]) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.writeTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.writeTimeout)
}

// idField locates the _id field of a model type.
type idField struct {
	index []int
	typ   reflect.Type
	isOID bool
}

var idCache sync.Map // reflect.Type → idField

var tOID = reflect.TypeFor[bson.ObjectID]()

func idFieldOf(t reflect.Type) (idField, error) {
	if v, ok := idCache.Load(t); ok {
		return v.(idField), nil
	}
	if t.Kind() != reflect.Struct {
		return idField{}, fmt.Errorf("odm: model type %s is not a struct", t)
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" {
			continue
		}
		if tag := bsontag.Parse(sf); !tag.Skip && !tag.Inline && tag.Name == "_id" {
			f := idField{index: sf.Index, typ: sf.Type, isOID: sf.Type == tOID}
			idCache.Store(t, f)
			return f, nil
		}
	}
	return idField{}, fmt.Errorf("odm: model type %s has no field tagged bson:\"_id\"", t)
}

// ErrNoID is returned by a write that would store a document under an _id
// nobody chose: a nil pointer or interface, an empty string or an empty
// byte slice. (A zero ObjectID is different: it means "new", and odm
// assigns one.) Nothing is sent.
var ErrNoID = errors.New("odm: the document's _id is empty (nil, \"\" or no bytes); only a zero ObjectID is assigned one")

// assignID returns doc's _id for a write. A zero ObjectID is replaced by a
// new one (fresh is then true: the document is new, and the caller must
// clearID if the write is not made). Any other _id is the caller's, zero
// values such as 0 included, except values that cannot have been chosen
// (ErrNoID).
func (c *Collection[T]) assignID(doc *T) (id any, fresh bool, err error) {
	v := c.idValue(doc)
	if c.id.isOID {
		oid := v.Interface().(bson.ObjectID)
		if oid.IsZero() {
			oid = bson.NewObjectID()
			v.Set(reflect.ValueOf(oid))
			return oid, true, nil
		}
		return oid, false, nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map:
		if v.IsNil() {
			return nil, false, ErrNoID
		}
	case reflect.String, reflect.Slice:
		if v.Len() == 0 {
			return nil, false, ErrNoID
		}
	}
	return v.Interface(), false, nil
}

// clearID puts back the zero ObjectID that assignID replaced.
func (c *Collection[T]) clearID(doc *T) { c.setID(doc, bson.ObjectID{}) }

// keepID reports whether a fresh id must stay in the document after a
// write that returned err: when the write may have stored it (it did, or
// its outcome is unknown, so that a retry upserts the same document).
func keepID(err error) bool {
	return err == nil || outcome.Of(err) == outcome.Unknown
}

// idValue is doc's _id field.
func (c *Collection[T]) idValue(doc *T) reflect.Value {
	return reflect.ValueOf(doc).Elem().FieldByIndex(c.id.index)
}

func (c *Collection[T]) idIsZero(doc *T) bool { return c.idValue(doc).IsZero() }

func (c *Collection[T]) setID(doc *T, id bson.ObjectID) { c.idValue(doc).Set(reflect.ValueOf(id)) }

func (c *Collection[T]) idOf(doc *T) any { return c.idValue(doc).Interface() }

// before runs the Before hooks named, then validation.
func before(ctx context.Context, doc any, index int, cfg writeConfig, hooks ...string) error {
	if !cfg.skipHooks {
		for _, h := range hooks {
			if err := runHook(ctx, doc, h); err != nil {
				return &HookError{Hook: h, Index: index, Err: err}
			}
		}
	}
	if !cfg.skipValidation {
		if v, ok := doc.(Validator); ok {
			if err := v.Validate(); err != nil {
				return &ValidationError{Index: index, Err: err}
			}
		}
	}
	return nil
}

func after(ctx context.Context, doc any, index int, cfg writeConfig, hooks ...string) error {
	if cfg.skipHooks {
		return nil
	}
	for _, h := range hooks {
		if err := runHook(ctx, doc, h); err != nil {
			return &HookError{Hook: h, Index: index, Err: err}
		}
	}
	return nil
}

func runHook(ctx context.Context, doc any, name string) error {
	switch name {
	case "BeforeSave":
		if h, ok := doc.(BeforeSaveHook); ok {
			return h.BeforeSave(ctx)
		}
	case "AfterSave":
		if h, ok := doc.(AfterSaveHook); ok {
			return h.AfterSave(ctx)
		}
	case "BeforeInsert":
		if h, ok := doc.(BeforeInsertHook); ok {
			return h.BeforeInsert(ctx)
		}
	case "AfterInsert":
		if h, ok := doc.(AfterInsertHook); ok {
			return h.AfterInsert(ctx)
		}
	case "BeforeDelete":
		if h, ok := doc.(BeforeDeleteHook); ok {
			return h.BeforeDelete(ctx)
		}
	case "AfterDelete":
		if h, ok := doc.(AfterDeleteHook); ok {
			return h.AfterDelete(ctx)
		}
	}
	return nil
}

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
	c.invalidate(wctx, err)
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
		return after(ctx, doc, 0, cfg, "AfterInsert", "AfterSave")
	}
	return after(ctx, doc, 0, cfg, "AfterSave")
}

var (
	saveHooks       = []string{"BeforeSave"}
	saveInsertHooks = []string{"BeforeSave", "BeforeInsert"}
)

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
	c.invalidate(wctx, err)
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
	if err := before(ctx, doc, 0, cfg, "BeforeInsert"); err != nil {
		if fresh {
			c.clearID(doc)
		}
		return err
	}
	wctx, cancel := c.bounded(ctx)
	_, err = c.coll.InsertOne(wctx, doc)
	c.invalidate(wctx, err)
	cancel()
	if err != nil {
		if fresh && !keepID(err) {
			c.clearID(doc)
		}
		return fmt.Errorf("odm: insert into %s: %w", c.coll.Name(), err)
	}
	return after(ctx, doc, 0, cfg, "AfterInsert")
}

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
				c.clearIDs(docs, fresh, nil)
				return fmt.Errorf("odm: document %d: %w", i, err)
			}
		}
		if err := before(ctx, &docs[i], i, cfg, "BeforeInsert"); err != nil {
			c.clearIDs(docs, fresh, nil)
			return err
		}
		if !fast {
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
		c.clearIDs(docs, fresh, report)
	}
	return finish(ctx, report, docs, cfg, func(int) []string { return afterInsert })
}

// clearIDs puts back the zero ObjectIDs odm assigned (fresh[i]) to the
// documents a bulk write did not store: all of them when report is nil
// (nothing was sent), else those neither written nor of unknown fate.
func (c *Collection[T]) clearIDs(docs []T, fresh []bool, report *BulkError) {
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
			c.clearID(&docs[i])
		}
	}
}

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
		c.invalidate(wctx, err)
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

// The After hooks of bulk writes, in the order they run.
var (
	afterInsert     = []string{"AfterInsert"}
	afterSave       = []string{"AfterSave"}
	afterInsertSave = []string{"AfterInsert", "AfterSave"}
)

// finish runs the After hooks of the documents report lists as written and
// returns the outcome of the whole write: report if not every document was
// written, or else the first hook error.
func finish[T any](ctx context.Context, report *BulkError, docs []T, cfg writeConfig, hooks func(i int) []string) error {
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
			c.clearIDs(docs, isNew, nil)
			return fmt.Errorf("odm: document %d: %w", i, err)
		}
		isNew[i] = fresh
		hooks := saveHooks
		if fresh {
			hooks = saveInsertHooks
		}
		if err := before(ctx, &docs[i], i, cfg, hooks...); err != nil {
			c.clearIDs(docs, isNew, nil)
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
			c.clearIDs(docs, isNew, nil)
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
		c.clearIDs(docs, isNew, nil)
		return report
	}
	wctx, cancel := c.bounded(ctx)
	_, err := c.coll.BulkWrite(wctx, models, options.BulkWrite().SetOrdered(!cfg.unordered))
	c.invalidate(wctx, err)
	cancel()
	report.record(0, len(docs), err, cfg.unordered)
	if report.Err != nil {
		c.clearIDs(docs, isNew, report)
	}
	return finish(ctx, report, docs, cfg, func(i int) []string {
		if isNew[i] {
			return afterInsertSave
		}
		return afterSave
	})
}

// Replace replaces the stored document with doc's _id, or returns
// ErrNotFound. Hook order: BeforeSave, Validate, the write, AfterSave.
func (c *Collection[T]) Replace(ctx context.Context, doc *T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	if err := before(ctx, doc, 0, cfg, "BeforeSave"); err != nil {
		return err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.ReplaceOne(wctx, bson.D{{Key: "_id", Value: c.idOf(doc)}}, doc)
	c.invalidate(wctx, err)
	cancel()
	if err != nil {
		return fmt.Errorf("odm: replace in %s: %w", c.coll.Name(), err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return after(ctx, doc, 0, cfg, "AfterSave")
}

// UpdateResult counts the documents an update matched and changed.
type UpdateResult struct {
	Matched, Modified, Upserted int64
}

// Update applies update (e.g. bson.D{{"$set", …}}) to the first document
// matching filter. No hooks run: there is no document value to run them on.
func (c *Collection[T]) Update(ctx context.Context, filter, update any) (UpdateResult, error) {
	f, err := filterOf(filter)
	if err != nil {
		return UpdateResult{}, err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.UpdateOne(wctx, f, update)
	c.invalidate(wctx, err)
	cancel()
	if err != nil {
		return UpdateResult{}, fmt.Errorf("odm: update in %s: %w", c.coll.Name(), err)
	}
	return UpdateResult{Matched: res.MatchedCount, Modified: res.ModifiedCount, Upserted: res.UpsertedCount}, nil
}

// UpdateMany applies update to every document matching filter.
func (c *Collection[T]) UpdateMany(ctx context.Context, filter, update any) (UpdateResult, error) {
	f, err := filterOf(filter)
	if err != nil {
		return UpdateResult{}, err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.UpdateMany(wctx, f, update)
	c.invalidate(wctx, err)
	cancel()
	if err != nil {
		return UpdateResult{}, fmt.Errorf("odm: update many in %s: %w", c.coll.Name(), err)
	}
	return UpdateResult{Matched: res.MatchedCount, Modified: res.ModifiedCount, Upserted: res.UpsertedCount}, nil
}

// Delete deletes the stored document with doc's _id, or returns
// ErrNotFound. Hook order: BeforeDelete, the delete, AfterDelete.
func (c *Collection[T]) Delete(ctx context.Context, doc *T, opts ...WriteOption) error {
	cfg := newWriteConfig(opts)
	cfg.skipValidation = true
	if err := before(ctx, doc, 0, cfg, "BeforeDelete"); err != nil {
		return err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.DeleteOne(wctx, bson.D{{Key: "_id", Value: c.idOf(doc)}})
	c.invalidate(wctx, err)
	cancel()
	if err != nil {
		return fmt.Errorf("odm: delete in %s: %w", c.coll.Name(), err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return after(ctx, doc, 0, cfg, "AfterDelete")
}

// DeleteMany deletes every document matching filter and returns how many.
// No hooks run.
func (c *Collection[T]) DeleteMany(ctx context.Context, filter any) (int64, error) {
	f, err := filterOf(filter)
	if err != nil {
		return 0, err
	}
	wctx, cancel := c.bounded(ctx)
	res, err := c.coll.DeleteMany(wctx, f)
	c.invalidate(wctx, err)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("odm: delete many in %s: %w", c.coll.Name(), err)
	}
	return res.DeletedCount, nil
}

// ErrNilFilter is returned by the writes that take a filter (Update,
// UpdateMany, DeleteMany) when it is nil, as the driver refuses a nil
// filter: a write to every document must say so, with bson.D{}.
var ErrNilFilter = errors.New("odm: nil filter (pass bson.D{} to write to every document)")

func filterOf(filter any) (any, error) {
	switch f := filter.(type) {
	case nil:
		return nil, ErrNilFilter
	case query.Filter:
		if err := f.Err(); err != nil {
			return nil, err
		}
		if d := f.D(); d != nil {
			return d, nil
		}
		return bson.D{}, nil
	}
	return filter, nil
}
