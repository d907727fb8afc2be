// Package query is databridge's vocabulary for reads and writes: typed,
// injection-safe filters, the options of every call, and the package-level
// reads an application binds once.
//
// # Filters
//
// Filters are the driver's (bson.D, bson.M, structs) or the typed helpers
// [Eq], [Ne], [Gt], [Gte], [Lt], [Lte], [In], [Nin], [ContainsAll],
// [Exists], [Size], [Type], [Regex], [ElemMatch], [And], [Or] and [Not].
// The helpers are safe with untrusted values: a value is always the operand
// of an operator that takes it literally, so input such as {"$ne": ""} is
// matched as a document and never acts as an operator. Field names must
// come from your code; one that starts with '$' makes the filter fail with
// [ErrInvalidField]. [And], [Or], [Not] and [ElemMatch] of no filters (an
// empty list from user input) fail with [ErrNoFilters], never "match
// everything". Building a bson.M from user input by hand ({"name": input})
// is not safe when input can be a map: use [Eq]. A whole filter from
// untrusted input (JSON decoded into a bson.M) goes through [Sanitize],
// which compares every value with $eq and refuses operators other than
// $and, $or and $nor with an [*OperatorError].
//
// # Options
//
// A read takes [ReadOption]s and a write [WriteOption]s, so the compiler
// refuses an option given to the wrong kind of call. The read options are
// [Limit], [Skip], [BatchSize], [CursorOptions] and [Cached]; the write
// options are package odm's (odm.Upsert, odm.WithoutHooks, …); [Sort],
// [Projection], [Hint] and [Collation] are both ([Option]): Sort and
// Projection shape reads and the find-and-modify writes, Hint and
// Collation reads and every write that takes a filter. An operation ignores the options
// of its kind that do not apply to it (a sort for Count, say).
//
// # Reads
//
// Reads come from a collection's typed handle, an *odm.Collection[T]:
//
//	users, err := odm.New[User](db.Collection("users"), odm.WithCache(c))
//	for u, err := range users.Iter(ctx, query.Gte("age", 18)) { … }
//
// An application may bind each model type once, at start-up, to its
// handle, and then read by type alone, as slog.Info sits over
// slog.Default:
//
//	query.Register[User](users)
//
//	for u, err := range query.Iter[User](ctx, query.Gte("age", 18)) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(u.Name)
//	}
//	adults, err := query.FindMany[User](ctx, query.Gte("age", 18), query.Sort(bson.D{{Key: "name", Value: 1}}), query.Limit(100))
//	u, err := query.FindOne[User](ctx, query.Eq("email", email)) // ErrNotFound when none
//	n, err := query.Count[User](ctx, nil)
//
// These four are a subset of the handle's reads, with the same names and
// behaviour; code that is not the application's main (a library, a test)
// takes the handle instead. A type bound to nothing fails with
// [ErrNotRegistered], naming the call that binds it.
//
// # Iterators
//
// Iter returns a single-use iterator: the query runs when the loop starts,
// each value is the caller's to keep, an error is yielded once, last, with a
// zero value, and the server cursor is closed when the loop ends (on break
// too). Beware `for u := range query.Iter[User](ctx, f)`: the one-variable
// form drops the error. FindMany returns the error itself.
package query
