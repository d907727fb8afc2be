package odm

import (
	"errors"
	"fmt"
	"strings"
)

// HookError reports a hook that aborted a write (Before hooks and
// Validate: nothing was written) or failed after it (After hooks: the
// write happened). A document that failed Validate is a HookError whose
// Hook is "Validate", and Err the validator's error. Index is the
// document's position in a bulk call (0 otherwise).
type HookError struct {
	Hook  string // "Validate", "BeforeSave", "AfterInsert", …
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
// A call the server refused as a whole (ok: 0, no per-document errors)
// lists its documents as Unknown too: some such errors (an interruption at
// maxTimeMS) come after part of the write ran.
//
// Unknown documents whose _id was assigned before the call (by the caller,
// or by odm when hooks run) can be looked up by it once the server is back;
// see InsertMany for the fast path, where the driver assigns ids.
type BulkError struct {
	Written []int         // acknowledged as written, in input order
	Failed  []*WriteError // rejected by the server, in input order
	Unknown []int         // sent, but no reply: may or may not be stored
	Err     error         // the driver's error (errors joined, if batches failed differently)

	clean int // documents 0..clean-1 were written before the first failure; Written lists them once there is one
}

// WriteError is one write of a bulk call that was not written: a document
// or model the server rejected (in BulkError.Failed; Err is the driver's
// mongo.WriteError: a duplicate key, a validation failure, …), or a
// BulkWrite model refused before anything was sent (returned alone; Err is
// ErrNilModel, query.ErrNoFilters, ErrInvalidUpdate, or says that the document is
// not a *T).
type WriteError struct {
	Index int // the document's (or model's) position in the bulk call
	Err   error
}

// Error implements error.
func (e *WriteError) Error() string { return fmt.Sprintf("odm: write %d: %v", e.Index, e.Err) }

// Unwrap returns the cause: the server's error, or why odm refused it.
func (e *WriteError) Unwrap() error { return e.Err }

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
// mongo.IsNetworkError and errors.Is(err,
// context.DeadlineExceeded) work on it.
func (e *BulkError) Unwrap() error { return e.Err }

// ErrNilCollection is returned by New for a nil *mongo.Collection, and by
// every method of a Collection that New did not make (a nil *Collection, a
// zero Collection{}), and by the functions given one (Aggregate,
// AggregateCursor, Distinct). Nothing is sent; iterators yield it once.
var ErrNilCollection = errors.New("odm: nil collection handle (make one with odm.New from a non-nil *mongo.Collection)")
