package coherence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/closecur"
)

// Defaults of a Log.
const (
	DefaultLogCollection = "databridge_invalidations"
	DefaultLogSize       = 1 << 20 // bytes: about 10,000 events
	DefaultMaxAwait      = time.Second
	DefaultCoalesce      = 5 * time.Millisecond
	DefaultPollInterval  = 10 * time.Millisecond
	DefaultLiveness      = time.Second
)

// Log is a cache.Source that shares invalidations through a capped
// collection: each process appends an event after its writes and reads the
// others' events from the collection in order. It works on every
// deployment, standalone servers included, and sees writes made through
// databridge (or announced with Cache.Invalidate) only.
//
// Publishing is asynchronous and coalesced: Publish marks the collection
// and wakes a goroutine that appends one event naming every collection
// marked since its previous append. A write after a quiet spell is appended
// at once; during a burst, appends are at least the Coalesce window apart
// (5 ms by default), so a burst costs one small insert per window, not one
// per write. Failed appends are retried, same event, until they succeed or
// the cache is closed.
//
// Reading follows the log with a tailable, awaitData cursor, which MongoDB
// wakes as soon as an event is appended. On FerretDB, whose tailable
// cursors can skip events (see PollInterval), the Log instead polls the
// newest events every 10 ms.
//
// Every event carries its publisher's id and sequence number. When a
// publisher's sequence number skips, the Log looks the missing events up;
// if they are gone (the capped collection wrapped past events it had not
// read), or its cursor dies (killed, network error, server restart), it
// reports that to the cache, which flushes; after a cursor loss it also
// stops caching until the Log follows again.
type Log struct {
	coll     *mongo.Collection
	size     int64
	maxAwait time.Duration
	coalesce time.Duration
	onError  func(error)
	id       bson.ObjectID // this process's publisher id
	poll     time.Duration // < 0: chosen by server; 0: tail; > 0: poll interval
	liveness time.Duration // the longest a read of the log may take

	mu      sync.Mutex
	pending map[string]struct{} // "db\x00coll" marked since the last append
	retry   *event              // an append whose outcome is not known yet
	seq     int64
	marked  uint64        // Publish calls so far
	written uint64        // marked value covered by the last append
	flushed chan struct{} // closed (and replaced) after each append
	wake    chan struct{}

	// afterBatch, when set (by tests), runs after the reader applied each
	// batch of events; cursorID receives each tailable cursor's id.
	afterBatch func()
	cursorID   func(int64)
	repaired   atomic.Int64 // events found by looking up a sequence gap
	late       atomic.Int64 // events a poll found before the newest one seen
}

// LogOption configures a Log.
type LogOption interface{ applyLog(*Log) }

type logOptionFunc func(*Log)

func (f logOptionFunc) applyLog(l *Log) { f(l) }

// LogCollection names the capped collection (default
// DefaultLogCollection). Every process sharing a cache must use the same
// database and name.
func LogCollection(name string) LogOption {
	return logOptionFunc(func(l *Log) { l.coll = l.coll.Database().Collection(name) })
}

// LogSize sets the capped collection's size in bytes when the Log creates
// it (default DefaultLogSize; an event is about 100 bytes). A reader that
// falls further behind than this flushes its cache.
func LogSize(bytes int64) LogOption { return logOptionFunc(func(l *Log) { l.size = bytes }) }

// MaxAwait is how long the server holds an empty getMore on the tailable
// cursor before answering (default DefaultMaxAwait). It bounds how long the
// tailer takes to notice a dead connection, not how fast events arrive:
// the server answers as soon as one is appended.
func MaxAwait(d time.Duration) LogOption { return logOptionFunc(func(l *Log) { l.maxAwait = d }) }

// PollInterval chooses how the Log reads the events: d > 0 polls the
// newest events every d while events arrive, backing off to 5d after polls
// that found none; d == 0 tails the collection with a tailable, awaitData
// cursor on every server.
//
// By default the Log tails, except on FerretDB (its buildInfo reports
// ferretdbVersion), where it polls with DefaultPollInterval. FerretDB's
// awaitData is itself a 10 ms polling loop, and in v1.24 it drops the
// batch it has read when the await times out; and its tailable cursors
// skip events whose inserts commit out of order (it numbers records before
// committing them). Polling re-reads the newest events with a margin before
// the last one seen, which catches both. Either way, each check costs
// FerretDB a scan of the whole log: keep LogSize small there.
func PollInterval(d time.Duration) LogOption {
	return logOptionFunc(func(l *Log) { l.poll = max(d, 0) })
}

// Coalesce sets the least time between two appends of this process
// (default DefaultCoalesce): the longest a write waits for its event during
// a burst, and what bounds the log's write rate. 0 appends after every
// round trip.
func Coalesce(d time.Duration) LogOption { return logOptionFunc(func(l *Log) { l.coalesce = d }) }

// Liveness bounds how long one read of the log may take before the Log
// takes the server for lost (default DefaultLiveness, 1 s): a poll, or a
// getMore of the tailable cursor beyond its MaxAwait. A read that takes
// longer (a dead or partitioned server, which the driver would otherwise
// wait out for its 30 s server selection) reports Lost to the cache, which
// flushes and serves every read from the server, storing nothing, until the
// Log follows again. So a cache stops serving hits at most Liveness plus
// one poll interval (polling; 50 ms at most by default) or Liveness plus
// MaxAwait (tailing) after the log was last read. Set it above the slowest
// read the server may give under load: a read that is only slow costs a
// flush, never a stale hit.
func Liveness(d time.Duration) LogOption { return logOptionFunc(func(l *Log) { l.liveness = d }) }

// OnError receives, for logging, the errors a source recovers from: for a
// Log, the appends it retries, its cursor losses and the events it lost
// (ErrEventsLost); for a ChangeStream, the stream's errors. It is both a
// LogOption and a ChangeStreamOption. Default: ignored; the cache's Stats
// counts the flushes they cause.
func OnError(f func(error)) SourceOption { return onError(f) }

// SourceOption is an option of both sources, Log and ChangeStream.
type SourceOption interface {
	LogOption
	ChangeStreamOption
}

type onError func(error)

func (f onError) applyLog(l *Log)             { l.onError = f }
func (f onError) applyStream(c *ChangeStream) { c.onError = f }

// NewLog returns a Log in db. It creates the capped collection (if it does
// not exist) when the cache starts it.
func NewLog(db *mongo.Database, opts ...LogOption) *Log {
	l := &Log{
		coll:     db.Collection(DefaultLogCollection),
		size:     DefaultLogSize,
		maxAwait: DefaultMaxAwait,
		coalesce: DefaultCoalesce,
		liveness: DefaultLiveness,
		onError:  func(error) {},
		id:       bson.NewObjectID(),
		poll:     -1,
		pending:  map[string]struct{}{},
		flushed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	for _, o := range opts {
		o.applyLog(l)
	}
	if l.liveness <= 0 {
		l.liveness = DefaultLiveness
	}
	return l
}

// bounded returns the context of one read of the log: d past the
// liveness bound means the server is lost.
func (l *Log) bounded(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, l.liveness+extra, errNotLive)
}

// errNotLive is the cause of a read of the log that outlasted Liveness.
var errNotLive = errors.New("coherence: a read of the log outlasted the liveness bound")

// event is one appended document: its publisher, its sequence number and
// the namespaces written since the publisher's previous event.
type event struct {
	ID        bson.ObjectID `bson:"_id"`
	Publisher bson.ObjectID `bson:"p"`
	Seq       int64         `bson:"s"`
	NS        []string      `bson:"ns"` // "db\x00coll"
}

var eventPlan = decode.MustCompile[event]()

// Publish implements cache.Source: it marks db.coll for the next event and
// returns at once.
func (l *Log) Publish(db, coll string) {
	l.mu.Lock()
	l.pending[db+"\x00"+coll] = struct{}{}
	l.marked++
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Flush waits until every Publish made before it is appended to the log,
// or ctx is done.
func (l *Log) Flush(ctx context.Context) error {
	for {
		l.mu.Lock()
		done := l.written >= l.marked
		ch := l.flushed
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run implements cache.Source: it appends this process's events and tails
// the others' until ctx is done, then makes a last attempt (of up to 2 s)
// to append what is still pending.
func (l *Log) Run(ctx context.Context, sink cache.Sink) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.publish(ctx)
	}()
	l.follow(ctx, sink)
	wg.Wait()
}

func (l *Log) publish(ctx context.Context) {
	backoff := newBackoff()
	var last time.Time // of the previous append
	for {
		select {
		case <-l.wake:
			if wait := l.coalesce - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			last = time.Now()
		case <-ctx.Done():
			final, cancel := afterCancel(ctx)
			defer cancel()
			for final.Err() == nil {
				if err := l.appendPending(final); err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				done := l.retry == nil && len(l.pending) == 0
				l.mu.Unlock()
				if done {
					break
				}
			}
			return
		}
		for {
			err := l.appendPending(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			l.onError(fmt.Errorf("coherence: append to %s: %w", l.coll.Name(), err))
			if !backoff.wait(ctx) {
				break
			}
		}
		backoff.reset()
	}
}

// appendPending appends one event for every namespace marked so far (or
// retries the event whose append failed).
func (l *Log) appendPending(ctx context.Context) error {
	l.mu.Lock()
	ev, marked := l.retry, l.marked
	if ev == nil && len(l.pending) > 0 {
		l.seq++
		ev = &event{ID: bson.NewObjectID(), Publisher: l.id, Seq: l.seq, NS: make([]string, 0, len(l.pending))}
		for ns := range l.pending {
			ev.NS = append(ev.NS, ns)
		}
		slices.Sort(ev.NS)
		clear(l.pending)
		l.retry = ev
	}
	l.mu.Unlock()
	if ev == nil {
		return nil
	}
	_, err := l.coll.InsertOne(ctx, ev)
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a duplicate: an earlier try was stored
		return err
	}
	l.mu.Lock()
	l.retry = nil
	if len(l.pending) == 0 {
		l.written = marked
	}
	// Otherwise Publish has woken the loop, which appends the rest after
	// the coalescing window.
	close(l.flushed)
	l.flushed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

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
	f.invalidate(ev.NS)
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
		if err := eventPlan.Decode(cur.Current, &ev); err != nil {
			return fmt.Errorf("malformed event: %w", err)
		}
		found[ev.Seq] = true
		f.invalidate(ev.NS)
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

func (f *follower) invalidate(namespaces []string) {
	for _, ns := range namespaces {
		db, coll, _ := strings.Cut(ns, "\x00")
		f.sink.Invalidate(db, coll)
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

// ensure creates the capped collection unless it exists, and appends this
// publisher's first event (sequence 0), so that the log is never empty (a
// tailable cursor on an empty collection dies at once on MongoDB).
func (l *Log) ensure(ctx context.Context) error {
	err := l.coll.Database().CreateCollection(ctx, l.coll.Name(),
		options.CreateCollection().SetCapped(true).SetSizeInBytes(l.size))
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // NamespaceExists
		return fmt.Errorf("create capped collection %s: %w", l.coll.Name(), err)
	}
	_, err = l.coll.InsertOne(ctx, event{ID: bson.NewObjectID(), Publisher: l.id, NS: []string{}})
	return err
}

// afterCancel returns a context for cleanup once ctx is done: its values,
// and 2 s to finish.
func afterCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
}

// closeAfter closes a cursor or stream within ctx (2 s at most), or in
// the background for up to 2 s once ctx has ended, so that a reader that
// gave up on a hung server is not held by its close.
func closeAfter(ctx context.Context, close func(context.Context) error) {
	_ = closecur.Close(ctx, closerFunc(close), 2*time.Second)
}

type closerFunc func(context.Context) error

func (f closerFunc) Close(ctx context.Context) error { return f(ctx) }

// backoff waits between retries: 50 ms, doubling to 2 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

func (b *backoff) reset() { b.d = 50 * time.Millisecond }

// wait sleeps for the current delay and doubles it; it reports false if
// ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, 2*time.Second)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
