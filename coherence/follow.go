package coherence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
)

// The reading side of a Log: following the other processes' events.

// follow reads the log, starting again whenever its reading fails.
func (l *Log) follow(ctx context.Context, sink cache.Sink) {
	f := &follower{l: l, sink: sink, seen: map[bson.ObjectID]int64{}, poll: l.poll}
	backoff := newBackoff()
	for ctx.Err() == nil {
		err := f.read(ctx, backoff.reset)
		if ctx.Err() != nil {
			return
		}
		sink.Lost(err)
		l.onError(fmt.Errorf("coherence: reading %s: %w", l.coll.Name(), err))
		backoff.wait(ctx)
	}
}

// follower is the reading side of a Log: it applies every other
// publisher's events to the cache, once each, and turns events it cannot
// find into flushes.
type follower struct {
	l    *Log
	sink cache.Sink
	seen map[bson.ObjectID]int64 // publisher → last sequence number applied
	poll time.Duration           // as Log.poll; resolved on first read
	evs  []event                 // poll's buffer
}

// read follows the log until reading fails (or ctx is done). It calls
// opened, and tells the cache it is synced, once it is sure to see every
// event appended from then on.
func (f *follower) read(ctx context.Context, opened func()) error {
	// Creating the log may take longer than a read; the cache is not
	// synced meanwhile, so a generous bound costs no stale hit.
	ectx, cancel := f.l.bounded(ctx, 10*time.Second)
	defer cancel()
	if err := f.l.ensure(ectx); err != nil {
		return err
	}
	if f.poll < 0 {
		p, err := f.l.defaultPoll(ectx)
		if err != nil {
			return err
		}
		f.poll = p
	}
	if f.poll > 0 {
		return f.pollLoop(ctx, opened)
	}
	return f.tail(ctx, opened)
}

// defaultPoll returns the poll interval for the server: DefaultPollInterval
// on FerretDB, 0 (tail) elsewhere.
func (l *Log) defaultPoll(ctx context.Context) (time.Duration, error) {
	info, err := l.coll.Database().Client().Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	var ce mongo.CommandError
	if errors.As(err, &ce) { // the server refused: not FerretDB, which answers
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("buildInfo: %w", err)
	}
	if _, err := info.LookupErr("ferretdbVersion"); err == nil {
		return DefaultPollInterval, nil
	}
	return 0, nil
}

// tail follows the log with a tailable, awaitData cursor until it dies.
func (f *follower) tail(ctx context.Context, opened func()) error {
	// The events up to the newest one now are the backlog: every read
	// after the cursor opens sees their writes.
	mark, err := f.newestBounded(ctx, 1)
	if err != nil {
		return err
	}
	backlog, markID := true, mark[0].ID
	// A first batch of 0 keeps the cursor open on every server, even when
	// the log holds fewer documents than a batch (FerretDB closes it then).
	// No filter (not even on this process's own events): a tailable
	// cursor whose query matches nothing yet is closed at once.
	fctx, cancel := f.l.bounded(ctx, 0)
	cur, err := f.l.coll.Find(fctx, bson.D{}, options.Find().
		SetCursorType(options.TailableAwait).SetMaxAwaitTime(f.l.maxAwait).SetBatchSize(0))
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if cur.Err() != nil {
			// A dead or hung server: report the loss now, and let the
			// kill go on in the background (closeAfter with an ended
			// context) rather than wait for it.
			done, cancel := context.WithCancel(ctx)
			cancel()
			closeAfter(done, cur.Close)
			return
		}
		closeAfter(ctx, cur.Close)
	}()
	if f.l.cursorID != nil {
		f.l.cursorID(cur.ID())
	}
	// The cursor starts at the oldest event still in the log, so every
	// event appended from now on will be read.
	opened()
	f.sink.Synced()
	var ev event
	// Each getMore may be held for MaxAwait; past that plus Liveness the
	// server is lost.
	next := func() bool {
		nctx, cancel := f.l.bounded(ctx, f.l.maxAwait)
		defer cancel()
		return cur.Next(nctx)
	}
	for next() {
		if err := eventPlan.Decode(cur.Current, &ev); err != nil {
			return fmt.Errorf("malformed event: %w", err)
		}
		if backlog {
			f.baseline(&ev)
			backlog = ev.ID != markID
		} else if _, err := f.apply(ctx, &ev); err != nil {
			return err
		}
		if cur.RemainingBatchLength() == 0 && f.l.afterBatch != nil {
			f.l.afterBatch()
		}
	}
	if err := cur.Err(); err != nil {
		return notLive(err)
	}
	return errCursorClosed
}

// notLive names the liveness bound in an error caused by it.
func notLive(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errNotLive, err)
	}
	return err
}

// newestBounded is newest within the liveness bound.
func (f *follower) newestBounded(ctx context.Context, k int) ([]event, error) {
	pctx, cancel := f.l.bounded(ctx, 0)
	defer cancel()
	evs, err := f.newest(pctx, k)
	if err != nil && ctx.Err() == nil {
		return nil, notLive(err)
	}
	return evs, err
}

// Polling reads the newest events, newest first, in a window that reaches
// pollMargin events past the newest one the previous poll saw: an insert
// that commits after a later-numbered one (FerretDB numbers records before
// committing them) still lands in the window. The window starts at
// pollWindow events and grows while it does not reach that far.
const (
	pollWindow    = 32
	pollMargin    = 16
	maxPollWindow = 1 << 16
	maxIdlePolls  = 5
)

// pollLoop follows the log by polling every f.poll until a query fails.
func (f *follower) pollLoop(ctx context.Context, opened func()) error {
	// Start like a tailable cursor: from the oldest event still there.
	evs, err := f.newestBounded(ctx, 0)
	if err != nil {
		return err
	}
	opened()
	f.sink.Synced()
	for i := range evs {
		f.baseline(&evs[i])
	}
	top := evs[len(evs)-1].ID // ensure appended one
	// Every f.poll while other processes' events arrive; after polls that
	// found none, the interval doubles up to maxIdlePolls times f.poll.
	wait := f.poll
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		at := -1 // where the newest event seen before is in evs
		for k := pollWindow; ; k *= 4 {
			if evs, err = f.newestBounded(ctx, k); err != nil {
				return err
			}
			at = slices.IndexFunc(evs, func(ev event) bool { return ev.ID == top })
			if at >= pollMargin || (at >= 0 && len(evs) < k) {
				break // the window reaches the margin, or holds the whole log
			}
			if len(evs) < k {
				f.lost(fmt.Errorf("%w: the log wrapped past the last event read", ErrEventsLost))
				break
			}
			if k >= maxPollWindow {
				f.lost(fmt.Errorf("%w: more than %d events appended since the last poll", ErrEventsLost, k))
				break
			}
		}
		active := false // another process appended since the last poll
		for i := range evs {
			applied, err := f.apply(ctx, &evs[i])
			if err != nil {
				return err
			}
			active = active || applied
			if applied && i < at {
				f.l.late.Add(1)
			}
		}
		top = evs[len(evs)-1].ID
		if active {
			wait = f.poll
		} else {
			wait = min(2*wait, maxIdlePolls*f.poll)
		}
		if f.l.afterBatch != nil {
			f.l.afterBatch()
		}
		t.Reset(wait)
	}
}

// newest returns the newest k events of the log (all of them if k is 0),
// oldest first. The log is never empty: ensure appended an event.
func (f *follower) newest(ctx context.Context, k int) ([]event, error) {
	opts := options.Find().SetSort(bson.D{{Key: "$natural", Value: -1}})
	if k > 0 {
		opts.SetLimit(-int64(k)) // in a single batch: no cursor left to kill
	}
	cur, err := f.l.coll.Find(ctx, bson.D{}, opts)
	if err != nil {
		return nil, err
	}
	defer closeAfter(ctx, cur.Close)
	f.evs = f.evs[:0]
	for cur.Next(ctx) {
		if len(f.evs) < cap(f.evs) {
			f.evs = f.evs[:len(f.evs)+1] // decoding resets it, keeping its NS array
		} else {
			f.evs = append(f.evs, event{})
		}
		if err := eventPlan.Decode(cur.Current, &f.evs[len(f.evs)-1]); err != nil {
			return nil, fmt.Errorf("malformed event: %w", err)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	if len(f.evs) == 0 {
		return nil, errors.New("coherence: the log is empty")
	}
	slices.Reverse(f.evs)
	return f.evs, nil
}

// baseline records an event of the backlog: one appended before the
// reader started, whose write every read since then has seen. Only its
// sequence number matters, as where its publisher's next event must follow.
func (f *follower) baseline(ev *event) {
	if last, known := f.seen[ev.Publisher]; !known || ev.Seq > last {
		f.seen[ev.Publisher] = ev.Seq
	}
}

// apply applies one event read from the log, unless it was applied
// before or is this process's own, and reports whether it applied it.
// Events its publisher numbered before it and that were not read are
// looked up first.
func (f *follower) apply(ctx context.Context, ev *event) (applied bool, err error) {
	last, known := f.seen[ev.Publisher]
	if known && ev.Seq <= last {
		return false, nil // read twice: a retried append, or a poll's margin
	}
	f.seen[ev.Publisher] = ev.Seq
	if ev.Publisher == f.l.id {
		return false, nil // applied when it was published
	}
	if ev.Seq > last+1 { // an unknown publisher starts at 0 or 1
		if err := f.repair(ctx, ev.Publisher, last+1, ev.Seq); err != nil {
			return false, err
		}
	}
	f.deliver(ev)
	return true, nil
}

// repair looks up the events [from, to) of a publisher that were not read
// in order, applies those still in the log, and flushes the cache if any
// is gone.
func (f *follower) repair(ctx context.Context, publisher bson.ObjectID, from, to int64) error {
	ctx, cancel := f.l.bounded(ctx, 0)
	defer cancel()
	cur, err := f.l.coll.Find(ctx, bson.D{
		{Key: "p", Value: publisher},
		{Key: "s", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}},
	})
	if err != nil {
		return err
	}
	defer closeAfter(ctx, cur.Close)
	found := map[int64]bool{}
	var ev event
	for cur.Next(ctx) {
		ev = event{}
		if err := eventPlan.Decode(cur.Current, &ev); err != nil {
			return fmt.Errorf("malformed event: %w", err)
		}
		found[ev.Seq] = true
		f.deliver(&ev)
	}
	if err := cur.Err(); err != nil {
		return err
	}
	f.l.repaired.Add(int64(len(found)))
	if int64(len(found)) < to-from {
		f.lost(fmt.Errorf("%w: publisher %s, %d of events %d..%d", ErrEventsLost, publisher.Hex(), to-from-int64(len(found)), from, to-1))
	}
	return nil
}

// deliver applies an event to the cache: each namespace's writes by
// their descriptors, in the order they were published, or, for a
// namespace the event has none for, its whole collection.
func (f *follower) deliver(ev *event) {
	if ds, ok := f.sink.(cache.DelaySink); ok && !ev.At.IsZero() && len(ev.NS) > 0 {
		ds.Delayed(max(time.Since(ev.At), 0))
	}
	for _, ns := range ev.NS {
		db, coll, _ := strings.Cut(ns, "\x00")
		i := slices.IndexFunc(ev.W, func(w described) bool { return w.NS == ns })
		if i < 0 || len(ev.W[i].Descs) == 0 {
			f.sink.Invalidate(db, coll)
			continue
		}
		for _, d := range ev.W[i].Descs {
			f.sink.Described(db, coll, d)
		}
	}
}

// lost flushes the cache for events that cannot be read any more; the
// reader itself goes on.
func (f *follower) lost(err error) {
	f.sink.Lost(err)
	f.sink.Synced()
	f.l.onError(err)
}

// ErrEventsLost is the reason a Log gives its cache for a flush when the
// capped collection wrapped past events it had not read.
var ErrEventsLost = errors.New("coherence: invalidation events overwritten before they were read")

var errCursorClosed = errors.New("coherence: the server closed the tailable cursor")
