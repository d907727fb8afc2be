// Package closecur closes driver cursors within what the caller allowed.
//
// Closing a cursor that was not read to the end sends killCursors. A caller
// whose context has ended must not wait for that round trip (on a hung
// server it never comes back), yet the server cursor should still be freed
// when the server answers. So: a live context bounds the close (and so does
// the close timeout); a context that has ended hands the close to a
// goroutine bounded by the close timeout and returns at once.
package closecur

import (
	"context"
	"time"
)

// Closer is a driver cursor or change stream.
type Closer interface {
	Close(context.Context) error
}

// Close closes c: within ctx and timeout when ctx is live, in the
// background for at most timeout when ctx has ended (the result is then
// nil: the caller has been told of its context's end already).
func Close(ctx context.Context, c Closer, timeout time.Duration) error {
	if ided, ok := c.(interface{ ID() int64 }); ok && ided.ID() == 0 {
		// An exhausted or never-opened server cursor: closing it sends
		// nothing (the driver only ends its implicit session), so there is
		// no round trip to bound and no timer to set up.
		return c.Close(ctx)
	}
	if ctx.Err() != nil {
		go func() {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			_ = c.Close(bctx)
		}()
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Close(cctx)
}
