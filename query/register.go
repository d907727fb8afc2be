package query

import (
	"context"
	"fmt"
	"iter"
	"reflect"
	"sync"
)

// The package-level reads are the application's convenience: a model type
// is bound once, at start-up, to the collection handle that reads it, and
// is then queried by type alone, as slog.Info sits over slog.Default. The
// handle (an *odm.Collection) is the library-level API: code that is not an
// application's main, tests, and a second deployment hold it and call its
// methods, which include everything here and more (Cursor, EstimatedCount,
// writes, aggregations).

// Reader is what Register binds: the reads of a collection handle. An
// *odm.Collection[T] is one.
type Reader[T any] interface {
	Iter(ctx context.Context, filter any, opts ...ReadOption) iter.Seq2[T, error]
	FindMany(ctx context.Context, filter any, opts ...ReadOption) ([]T, error)
	FindOne(ctx context.Context, filter any, opts ...ReadOption) (T, error)
	Count(ctx context.Context, filter any, opts ...ReadOption) (int64, error)
}

var bindings sync.Map // reflect.Type → Reader[T], or nilReader

// nilReader is the binding of Register(nil).
type nilReader struct{}

// Register binds model type T to r, for Iter, FindMany, FindOne and Count
// of this package:
//
//	users, err := odm.New[User](db.Collection("users"), odm.WithCache(c))
//	…
//	query.Register[User](users)
//
// It returns a function that restores the previous binding (for tests).
// Bindings are process-wide: tests that run in parallel with different
// collections for one type should use their handles instead. A nil r binds
// nothing that can read: the reads of T then fail with ErrNotRegistered,
// saying so.
func Register[T any](r Reader[T]) (restore func()) {
	t := reflect.TypeFor[T]()
	var b any = r
	if r == nil {
		b = nilReader{}
	}
	prev, had := bindings.Swap(t, b)
	return func() {
		if had {
			bindings.Store(t, prev)
		} else {
			bindings.Delete(t)
		}
	}
}

// registered returns the reader of T, or the error naming the call that
// binds it.
func registered[T any]() (Reader[T], error) {
	t := reflect.TypeFor[T]()
	if b, ok := bindings.Load(t); ok {
		if r, ok := b.(Reader[T]); ok {
			return r, nil
		}
		return nil, fmt.Errorf("%w: %v is bound to a nil reader; bind it to a handle with query.Register[%v](users), users an *odm.Collection[%v] (odm.New)",
			ErrNotRegistered, t, t, t)
	}
	return nil, fmt.Errorf("%w: %v; bind it once at start-up with query.Register[%v](users), users an *odm.Collection[%v] (odm.New)",
		ErrNotRegistered, t, t, t)
}

// Iter streams the documents matching filter from T's registered handle,
// decoded into values the caller owns:
//
//	for u, err := range query.Iter[User](ctx, filter) { … }
//
// It is the handle's Iter (see odm.Collection.Iter): a single-use iterator;
// the query runs when the loop starts; an error (from the query, a getMore
// or decoding, or ErrNotRegistered) is yielded once, last, with a zero T,
// and the stream ends with the whole result or an error, never a silent
// prefix; the server cursor is closed when the loop ends, on break and
// panic too. The one-variable form `for u := range …` drops the error.
func Iter[T any](ctx context.Context, filter any, opts ...ReadOption) iter.Seq2[T, error] {
	r, err := registered[T]()
	if err != nil {
		return func(yield func(T, error) bool) {
			var zero T
			yield(zero, err)
		}
	}
	return r.Iter(ctx, filter, opts...)
}

// FindMany returns every document matching filter from T's registered
// handle, in a new slice the caller owns, or the first error (nothing
// partial). With Cached, repeats are served from the cache until a write
// invalidates them.
func FindMany[T any](ctx context.Context, filter any, opts ...ReadOption) ([]T, error) {
	r, err := registered[T]()
	if err != nil {
		return nil, err
	}
	return r.FindMany(ctx, filter, opts...)
}

// FindOne returns the first document matching filter from T's registered
// handle (in Sort order, if given), a value the caller owns, or
// ErrNotFound, which also matches mongo.ErrNoDocuments.
func FindOne[T any](ctx context.Context, filter any, opts ...ReadOption) (T, error) {
	r, err := registered[T]()
	if err != nil {
		var zero T
		return zero, err
	}
	return r.FindOne(ctx, filter, opts...)
}

// Count returns the number of documents matching filter in T's registered
// handle's collection (honouring Skip, Limit, Hint, Collation and Cached).
func Count[T any](ctx context.Context, filter any, opts ...ReadOption) (int64, error) {
	r, err := registered[T]()
	if err != nil {
		return 0, err
	}
	return r.Count(ctx, filter, opts...)
}
