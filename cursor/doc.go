// Package cursor streams MongoDB query results into Go values through the
// compiled decoder of package decode.
//
// Most code reads through an odm.Collection (Iter, FindMany) and never
// holds a Cursor; one comes from Collection.Cursor and odm.AggregateCursor,
// or from New around a driver cursor of your own. The recommended path is
// the collector, which handles errors and closing itself:
//
//	users, err := c.AppendAll(ctx, nil) // []User, owned by the caller
//
// or a range-over-func loop over All, which yields values the caller owns:
//
//	for u, err := range c.All(ctx) {
//		if err != nil { return err }
//		…
//	}
//
// # Ownership
//
// All and AppendAll give you values you may keep for as long as you like:
// they share no memory with later values. Borrowed decodes every document
// into one reused value and hand you a pointer to it: the
// value, and every slice in it, is valid only until the next step, because
// the next document is decoded into the same memory (reusing slice
// capacity). Copy what you keep. In exchange a borrowed loop allocates only
// for strings (none with decode.ZeroCopy), maps and pointers.
//
// # Pipelined getMore
//
// The driver fetches the next batch inside Next, so a loop waits for the
// network once per batch. A Cursor takes the first batch as it came with the
// find and, if the server cursor is still open, starts one goroutine that
// fetches batch n+1 while you consume batch n. It holds at most one batch you
// have not taken, so memory is bounded by two batches whatever the size of
// the result. The goroutine ends when the stream ends, on error, on context
// cancellation and on Close. WithoutPrefetch turns it off.
//
// # Closing
//
// Iterators and collectors close the cursor when they return, including on
// break and panic. Close kills the server cursor (killCursors) when the
// stream was not read to the end, under a context of its own bounded by
// CloseTimeout (5 s by default), never by the caller's deadline; the caller
// waits for it only while its own context is live, and once that has ended
// (a cancelled loop, a passed deadline) Close returns at once and the kill
// goes on in the background. So a stream that ends for any reason frees the
// server's resources when the server answers.
//
// # Errors
//
// An iterator yields an error once, last, with a zero value. A document that
// does not fit T ends the stream with a *DocumentError naming its position
// and _id and wrapping the *decode.Error that names the field.
//
// A Cursor is not safe for concurrent use.
package cursor
