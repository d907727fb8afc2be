// Package cursor streams MongoDB query results into Go values through the
// compiled decoder of package decode.
//
// Most code gets a Cursor from package query and never builds one. The
// recommended path is a collector, which handles errors and closing itself:
//
//	users, err := c.Collect(ctx)          // []User, owned by the caller
//	err := c.ForEach(ctx, func(u *User) error { … })
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
// All, Collect and AppendAll give you values you may keep for as long as you
// like: they share no memory with later values. Borrowed and ForEach decode
// every document into one reused value and hand you a pointer to it: the
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
// stream was not read to the end. It never outlasts the caller's context:
// with a live context the kill is bounded by it and by CloseTimeout (5 s by
// default); once the context has ended (a cancelled loop, a passed
// deadline), Close returns at once and the kill goes on in the background
// for at most CloseTimeout, so a cancelled loop still frees the server's
// resources when the server answers.
//
// # Errors
//
// An iterator yields an error once, last, with a zero value. A document that
// does not fit T ends the stream with a *DocumentError naming its position
// and _id and wrapping the *decode.Error that names the field.
//
// A Cursor is not safe for concurrent use.
package cursor
