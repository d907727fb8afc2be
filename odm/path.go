package odm

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/outcome"
)

// do is the one path of every driver call of a write, so that none can
// forget a step: the call's deadline is bounded (the caller's, or
// WriteTimeout's: the driver sends it as maxTimeMS, which is what ends a
// write whose reply is lost), the observer is told that odm reports this
// write itself (outside transactions, which the observer invalidates at
// commit; on a client without the observer a transaction's write pauses
// caching of its collection as a write with no deadline does), and, after the call, successful or not, what the write may have
// changed is reported to every cache of the process: as it is, or, when
// the outcome is unknown (sent, no reply), as a write that may still be
// running until its deadline. It is reported before the call too
// (cachecore.Begin): until the reply, what it may change is neither
// served nor stored.
//
// ch says what the write may change; call may refine it from the reply
// before it is reported.
func (c *Collection[T]) do(ctx context.Context, ch *cachecore.Change, call func(ctx context.Context) error) error {
	return c.doPre(ctx, ch, call, nil)
}

// doPre is do for a write that may carry a pre-image (see withPreImage):
// pre, when not nil, is the write as a findAndModify returning the
// document before it, projected to the fields it is given; call is the
// plain write.
func (c *Collection[T]) doPre(ctx context.Context, ch *cachecore.Change, call func(ctx context.Context) error, pre func(context.Context, []string) error) error {
	wctx, cancel := c.bounded(ctx)
	defer cancel()
	var seen, unacked *atomic.Bool
	if !inTransaction(ctx) {
		wctx, unacked = cachecore.Handled(wctx)
	} else {
		wctx, seen = cachecore.Probe(wctx) // a transaction's writes cannot be unacknowledged
	}
	ch.DB, ch.Coll, ch.Writers = c.db, c.name, c.writers // shared, never written
	ch.Ctx = ctx                                         // a tracer's
	if pre != nil {
		ch.Hold = true
	}
	f := cachecore.Begin(*ch) // the statements as sent
	call = c.withPreImage(f, call, pre)
	ended := false
	defer func() {
		if !ended { // call panicked: what the write did is not known
			f.End(cachecore.Change{DB: c.db, Coll: c.name, Wide: true})
		}
	}()
	err := call(wctx)
	if outcome.Of(err) == outcome.Unknown || ch.Unknown || (unacked != nil && unacked.Load()) {
		// Its reply is lost, or there is none (w: 0, as the observer saw
		// it sent, or as a findAndModify's empty result said): it may run
		// until its deadline.
		ch.Unknown = true
		ch.Deadline, _ = wctx.Deadline()
	}
	if seen != nil && !seen.Load() {
		// A write in a transaction on a client without the observer: its
		// commit, whenever it comes, reaches no cache. As a write with no
		// deadline, its collection is not cached for the longest entry TTL
		// (a transaction lives at most transactionLifetimeLimitSeconds,
		// 60 s by default).
		ch.Unknown, ch.Deadline = true, time.Time{}
	}
	ended = true
	f.End(*ch) // refined by the reply
	return err
}

// bounded returns the context of one driver write call: ctx, or, when ctx
// has no deadline, ctx bounded by the collection's WriteTimeout.
func (c *Collection[T]) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.writeTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.writeTimeout)
}
