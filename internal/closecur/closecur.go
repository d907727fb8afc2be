// Package closecur closes driver cursors within what the caller allowed.
//
// Closing a cursor that was not read to the end sends killCursors. That
// kill must never depend on the caller's context: a context whose deadline
// is about to pass makes the driver refuse to send it ("Timeout would be
// exceeded"), after which the driver forgets the cursor id, and the server
// cursor stays open until its idle timeout (10 minutes on MongoDB). So the
// kill always runs under a context of its own, bounded by the close
// timeout alone, and the caller waits for it only as long as its own
// context allows: on a hung server it returns when its context ends, and
// the kill goes on in the background.
package closecur

import (
	"context"
	"time"
)

// Closer is a driver cursor or change stream.
type Closer interface {
	Close(context.Context) error
}

// Close closes c under a context bounded by timeout only (keeping ctx's
// values), and waits for it while ctx is live. When ctx ends first, Close
// returns nil (the caller has been told of its context's end already) and
// the kill finishes in the background.
func Close(ctx context.Context, c Closer, timeout time.Duration) error {
	if ided, ok := c.(interface{ ID() int64 }); ok && ided.ID() == 0 {
		// An exhausted or never-opened server cursor: closing it sends
		// nothing (the driver only ends its implicit session), so there is
		// no round trip to bound and no goroutine to start.
		return c.Close(ctx)
	}
	done := make(chan error, 1)
	go func() {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		done <- c.Close(kctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return nil
	}
}
