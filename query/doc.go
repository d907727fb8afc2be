// Package query is databridge's typed read API: MongoDB documents straight
// into Go structs, streamed with range-over-func.
//
// # Recommended use
//
// Bind each model type to its collection once, at start-up, then query by
// type:
//
//	query.Register[User](db.Collection("users"))
//
//	for u, err := range query.Iter[User](ctx, query.Gte("age", 18)) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(u.Name)
//	}
//
//	adults, err := query.FindMany[User](ctx, query.Gte("age", 18), query.Sort(bson.D{{Key: "name", Value: 1}}), query.Limit(100))
//	u, err := query.FindOne[User](ctx, query.Eq("email", email)) // ErrNotFound when none
//	n, err := query.Count[User](ctx, nil)
//
// Code that prefers no registration uses a handle, which behaves the same:
//
//	users := query.From[User](db.Collection("users"))
//	for u, err := range users.Iter(ctx, filter) { … }
//
// A type that implements CollectionName() string needs no Register call once
// UseDatabase has named the database. Register and UseDatabase return a
// function restoring the previous binding, for tests.
//
// # Iterators
//
// Iter returns a single-use iterator: the query runs when the loop starts,
// each value is the caller's to keep, an error is yielded once, last, with a
// zero value, and the server cursor is closed when the loop ends (on break
// too). Beware `for u := range query.Iter[User](ctx, f)`: the one-variable
// form drops the error. FindMany returns the error itself. For a borrowed,
// allocation-lean loop over a large result use Handle.Cursor and
// cursor.Cursor.Borrowed.
//
// # Filters
//
// Filters are the driver's (bson.D, bson.M, structs) or the typed helpers
// Eq, Ne, Gt, Gte, Lt, Lte, In, Between, And and Or. The helpers are safe
// with untrusted values: a value is always the operand of an operator that
// takes it literally, so input such as {"$ne": ""} is matched as a document
// and never acts as an operator. Field names must come from your code; one
// that starts with '$' makes the query fail with ErrInvalidField. Building a
// bson.M from user input by hand ({"name": input}) is not safe when input
// can be a map: use Eq.
//
// # Performance
//
// Reads decode the driver's raw batches with package decode (no
// intermediate bson.D or reflection per document) and fetch the next batch
// while the current one is consumed. See docs/performance.md for measured
// figures and tuning (batch sizes, connection pool).
package query
