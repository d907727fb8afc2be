package query

import (
	"context"
	"iter"
	"reflect"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/cursor"
)

// Registration: a model type is bound to its collection once, at start-up,
// and then queried by type alone.

var (
	bindings sync.Map // reflect.Type → *mongo.Collection
	dbMu     sync.RWMutex
	defaultD *mongo.Database
)

// Register binds model type T to coll for Iter, FindMany, FindOne and Count.
// It returns a function that restores the previous binding (for tests).
// Bindings are process-wide: tests that run in parallel with different
// collections for one type should use From instead.
func Register[T any](coll *mongo.Collection) (restore func()) {
	t := reflect.TypeFor[T]()
	prev, had := bindings.Swap(t, coll)
	return func() {
		if had {
			bindings.Store(t, prev)
		} else {
			bindings.Delete(t)
		}
	}
}

// CollectionNamer is implemented by model types that name their collection;
// with a database set by UseDatabase they need no Register call.
type CollectionNamer interface {
	CollectionName() string
}

// UseDatabase sets the database in which types implementing CollectionNamer
// find their collection. It returns a function that restores the previous one.
func UseDatabase(db *mongo.Database) (restore func()) {
	dbMu.Lock()
	prev := defaultD
	defaultD = db
	dbMu.Unlock()
	return func() {
		dbMu.Lock()
		defaultD = prev
		dbMu.Unlock()
	}
}

var named sync.Map // namedKey → *mongo.Collection

type namedKey struct {
	db   *mongo.Database
	name string
}

// namedCollection returns one *mongo.Collection per database value and
// name, so that the handles For returns share their cache scope (see
// cache.ScopeOf).
func namedCollection(db *mongo.Database, name string) *mongo.Collection {
	k := namedKey{db, name}
	if c, ok := named.Load(k); ok {
		return c.(*mongo.Collection)
	}
	c, _ := named.LoadOrStore(k, db.Collection(name))
	return c.(*mongo.Collection)
}

// Registered returns the Handle of registered model type T: its Register binding,
// or its CollectionName in the UseDatabase database. The Handle's methods
// fail with ErrNotRegistered when T is bound to nothing.
func Registered[T any]() Handle[T] {
	if c, ok := bindings.Load(reflect.TypeFor[T]()); ok {
		return Handle[T]{coll: c.(*mongo.Collection)}
	}
	var zero T
	n, ok := any(zero).(CollectionNamer)
	if !ok {
		n, ok = any(&zero).(CollectionNamer)
	}
	if ok {
		dbMu.RLock()
		db := defaultD
		dbMu.RUnlock()
		if db != nil {
			return Handle[T]{coll: namedCollection(db, n.CollectionName())}
		}
	}
	return Handle[T]{}
}

// Iter streams the documents matching filter from T's registered
// collection (Register, or CollectionName with UseDatabase), decoded into
// values the caller owns:
//
//	for u, err := range query.Iter[User](ctx, filter) { … }
//
// It is Registered[T]().Iter: a single-use iterator; the query runs when
// the loop starts; an error (from the query, a getMore or decoding, or
// ErrNotRegistered) is yielded once, last, with a zero T, and the stream
// ends with the whole result or an error, never a silent prefix; the server
// cursor is closed when the loop ends, on break and panic too. The
// one-variable form `for u := range …` drops the error. An early break may
// have fetched up to two batches ahead (see Handle.Iter).
func Iter[T any](ctx context.Context, filter any, opts ...Option) iter.Seq2[T, error] {
	return Registered[T]().Iter(ctx, filter, opts...)
}

// FindMany returns every document matching filter in T's registered
// collection, in a new slice the caller owns, or the first error (nothing
// partial). It is Registered[T]().FindMany; with Cached, repeats are served
// from the cache until a write invalidates them.
func FindMany[T any](ctx context.Context, filter any, opts ...Option) ([]T, error) {
	return Registered[T]().FindMany(ctx, filter, opts...)
}

// FindOne returns the first document matching filter in T's registered
// collection (in Sort order, if given), a value the caller owns, or
// ErrNotFound, which also matches mongo.ErrNoDocuments. It is
// Registered[T]().FindOne.
func FindOne[T any](ctx context.Context, filter any, opts ...Option) (T, error) {
	return Registered[T]().FindOne(ctx, filter, opts...)
}

// Count returns the number of documents matching filter in T's registered
// collection (honouring Skip, Limit, Hint, Collation and Cached). It is
// Registered[T]().Count.
func Count[T any](ctx context.Context, filter any, opts ...Option) (int64, error) {
	return Registered[T]().Count(ctx, filter, opts...)
}

// Cursor runs a query on T's registered collection and returns its
// streaming cursor, which the caller must close (its iterators and
// collectors close it themselves). It is Registered[T]().Cursor.
func Cursor[T any](ctx context.Context, filter any, opts ...Option) (*cursor.Cursor[T], error) {
	return Registered[T]().Cursor(ctx, filter, opts...)
}

// Aggregate runs pipeline on T's registered collection and returns a
// streaming cursor of its results, which the caller must close (its
// iterators and collectors close it themselves). It is
// Registered[T]().Aggregate; AggregateAll collects, and can be cached.
func Aggregate[T any](ctx context.Context, pipeline any, opts ...Option) (*cursor.Cursor[T], error) {
	return Registered[T]().Aggregate(ctx, pipeline, opts...)
}
