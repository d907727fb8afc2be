// Package odm gives each MongoDB collection one typed handle,
// [Collection], from which every read, write and aggregation of its
// documents comes: reads decoded by the compiled decoder (optionally from
// the result cache), writes with hooks and validation, each invalidating
// the caches of the process.
//
// # Recommended use
//
// Make one handle per collection at start-up and share it:
//
//	users, err := odm.New[User](db.Collection("users"), odm.WithCache(c))
//
//	for u, err := range users.Iter(ctx, query.Gte("age", 18)) { … }
//	adults, err := users.FindMany(ctx, query.Gte("age", 18), query.Cached(time.Minute))
//	totals, err := odm.Aggregate[TeamTotal](ctx, users, pipeline) // any result type
//
//	u := User{Name: "Ada", Email: "ada@example.com"}
//	err = users.Save(ctx, &u)                 // inserts; u.ID now holds a new ObjectID
//	u.Age = 37
//	err = users.Save(ctx, &u)                 // upserts by _id
//	err = users.InsertMany(ctx, batch)        // acknowledged batches, hooks per document
//	err = users.BulkSave(ctx, batch)          // one BulkWrite of per-document upserts
//	res, err := users.UpdateMany(ctx, query.Lt("age", 18), bson.D{{Key: "$set", Value: bson.D{{Key: "minor", Value: true}}}})
//	del, err := users.DeleteMany(ctx, query.Eq("status", "gone")) // del.DeletedCount documents
//
// The per-call options of reads and writes are query.Options: this
// package's configure writes ([Upsert], [WithoutHooks], …), query's shape
// and cache reads (query.Sort, query.Cached, …) and the writes that pick a
// document (query.Sort for a find-and-modify).
//
// # Identity: which documents are new
//
// Only a zero bson.ObjectID _id means "new": Save, Insert, InsertMany and
// BulkSave give such a document a fresh ObjectID, and Save inserts it (with
// the insert hooks). The id is the document's only once the write is
// attempted: if a hook or Validate refuses, nothing can be encoded, or the
// server refuses the insert, the _id is put back to zero, so a retry is an
// insert again. After a write whose outcome is unknown (the reply was lost)
// the id stays, so that a retrying Save upserts the same document instead
// of inserting a second one.
//
// Any other _id type is the caller's: Save upserts by it whatever its
// value, 0 included, and runs BeforeSave and AfterSave only (odm cannot know
// before the write whether the upsert inserts). Values nobody can have
// chosen — a nil pointer or interface, an empty string, an empty byte slice
// — are refused with ErrNoID before anything is sent, rather than stored.
//
// # Filters of writes
//
// Every write that takes a filter (UpdateOne, UpdateMany, DeleteOne,
// DeleteMany, the find-and-modify writes, BulkWrite's models) refuses a
// filter that says nothing, with query.ErrNoFilters: nil, typed or not (a nil
// bson.M, bson.D, bson.Raw or pointer), an empty map, slice or bson.Raw, a
// pointer to an empty bson.D, a zero query.Filter, a struct that encodes
// to an empty document, and a filter whose every condition selects every
// document whatever it holds: a $comment, any condition on the empty field
// name, an $expr of a true constant, an $and of such filters, or an $or
// with one such branch. A top-level, non-nil bson.D{} is the one spelling
// of "every document". query.And, Or, Not and ElemMatch
// of no filters, or of a zero Filter, are errors too (query.ErrNoFilters),
// so an empty list from user input never becomes "every document". Updates
// must be update operators or a pipeline (ErrInvalidUpdate); a malformed
// BulkWrite model is a *WriteError. All of these are returned before
// anything is sent.
//
// # Hooks and validation
//
// Model types opt into hooks by implementing small interfaces on *T,
// found by type assertion: BeforeSaveHook, AfterSaveHook, BeforeInsertHook,
// AfterInsertHook, BeforeDeleteHook, AfterDeleteHook, and Validator. Declare
// them next to the type so the compiler checks the signatures:
//
//	var _ odm.BeforeSaveHook = (*User)(nil)
//
// Order for Save: BeforeSave, BeforeInsert (new documents), Validate, the
// write, AfterInsert (new documents), AfterSave. Before hooks run first so
// they can fill in defaults that validation then checks. A Before hook or
// Validate returning an error aborts the write (a *HookError; Hook
// "Validate" for a failed validation) and nothing is sent. Unlike other ODMs' bulk APIs,
// InsertMany and BulkSave run hooks and validation for every document,
// before anything is sent, and After hooks for every document written.
// UpdateOne, UpdateMany, DeleteOne and DeleteMany have no document value
// and run no hooks.
//
// # The fast path
//
// WithoutValidation and WithoutHooks switch those steps off for one call;
// with both, Save is exactly one driver call (InsertOne or an upsert
// ReplaceOne), measured at the driver's own cost. The defaults stay safe:
// validation and hooks run unless you switch them off. Skipping validation
// writes whatever the struct holds: use it only for data you produced or
// already checked, never for input straight from users.
//
// # Errors
//
// Duplicate keys: mongo.IsDuplicateKeyError(err), for single and bulk
// writes (every error here unwraps to the driver's).
// When InsertMany or BulkSave does not write every document, the error is a
// *BulkError listing, by index, the documents written, rejected by the
// server (with Unordered the write goes on past them, otherwise it stops at
// the first) and unknown (sent, but the reply was lost). Documents in no
// list were not sent, including every document of a call whose error proves
// it never reached a server (no server selected, no connection checked out,
// the context done first). Replace and Delete
// return ErrNotFound
// (which also matches mongo.ErrNoDocuments) when no document has the _id.
// A handle that New did not make (a nil *Collection, a zero Collection{})
// returns [ErrNilCollection] from every method, and New returns it for a
// nil *mongo.Collection.
//
// # Cache invalidation
//
// A handle reads through the cache [WithCache] gave it, or none. Every
// write goes through one path that bounds its deadline, classifies its
// outcome and reports what it may have changed to every cache of the
// process (the invalidation bus of package cache), whatever handle it came
// from, with a cache or without, after the server answers, including
// writes that fail or fail partway: see package cache for the guarantee
// this gives. The observer (cache.Observer) leaves odm's writes to odm, so
// each write is counted once; it is required all the same, on every client
// whose reads a cache stores: a cache stores nothing else. Inside a
// transaction, the observer invalidates at commit time; a transaction's
// write on a client without it pauses caching of its collection (see
// package cache).
//
// A write by one _id cannot say which of a collection's cached reads it
// changed without the document's other values: [WithPreImages] makes such
// writes ask the server for them, atomically with the write, when a cache
// holds reads that need them (docs/caching.md, "Pre-images"). The
// find-and-modify writes carry the document they return before the write
// without it.
package odm
