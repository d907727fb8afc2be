// Package odm is databridge's small object-document mapper: typed writes
// with hooks and validation, each invalidating the query cache of its
// collection.
//
// # Recommended use
//
//	users, err := odm.New[User](db.Collection("users"))
//
//	u := User{Name: "Ada", Email: "ada@example.com"}
//	err = users.Save(ctx, &u)                 // inserts; u.ID now holds a new ObjectID
//	u.Age = 37
//	err = users.Save(ctx, &u)                 // upserts by _id
//	err = users.InsertMany(ctx, batch)        // acknowledged batches, hooks per document
//	err = users.BulkSave(ctx, batch)          // one BulkWrite of per-document upserts
//	res, err := users.UpdateMany(ctx, query.Lt("age", 18), bson.D{{Key: "$set", Value: bson.D{{Key: "minor", Value: true}}}})
//	n, err := users.DeleteMany(ctx, query.Eq("status", "gone"))
//
// A Collection also reads (Iter, FindMany, FindOne, Count), as a
// query.Handle does.
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
// Validate returning an error aborts the write (*HookError,
// *ValidationError) and nothing is sent. Unlike other ODMs' bulk APIs,
// InsertMany and BulkSave run hooks and validation for every document,
// before anything is sent, and After hooks for every document written.
// Update, UpdateMany and DeleteMany have no document value and run no hooks.
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
// Duplicate keys: IsDuplicateKey(err), for single and bulk writes.
// When InsertMany or BulkSave does not write every document, the error is a
// *BulkError listing, by index, the documents written, rejected by the
// server (with Unordered the write goes on past them, otherwise it stops at
// the first) and unknown (sent, but the reply was lost). Replace and Delete
// return ErrNotFound
// (which also matches mongo.ErrNoDocuments) when no document has the _id.
//
// # Cache invalidation
//
// Every write invalidates the cached queries of its collection (the cache
// given with WithCache, or query.UseCache's) after the server answers,
// including writes that fail or fail partway: see package cache for the
// guarantee this gives.
package odm
