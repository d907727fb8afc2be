package coherence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
)

// Defaults of a Log.
const (
	DefaultLogCollection = "databridge_invalidations"
	DefaultLogSize       = 1 << 20 // bytes: about 10,000 events
	DefaultMaxAwait      = time.Second
	DefaultCoalesce      = 5 * time.Millisecond
)

// Log is a cache.Source that shares invalidations through a capped
// collection: each process appends an event after its writes and tails the
// collection with a tailable, awaitData cursor to apply the others'. It
// works on every deployment, standalone servers included, and sees writes
// made through databridge (or announced with Cache.Invalidate) only.
//
// Publishing is asynchronous and coalesced: Publish marks the collection
// and wakes a goroutine that appends one event naming every collection
// marked since its previous append. A write after a quiet spell is appended
// at once; during a burst, appends are at least the Coalesce window apart
// (5 ms by default), so a burst costs one small insert per window, not one
// per write. Failed appends are retried, same event, until they succeed or
// the cache is closed.
//
// Every event carries its publisher's id and sequence number. A tailer that
// sees a sequence number skip (the capped collection wrapped past events it
// had not read yet) or whose cursor dies (killed, network error, server
// restart) reports it to the cache, which flushes; after a cursor loss it
// also stops caching until the tailer follows again.
type Log struct {
	coll     *mongo.Collection
	size     int64
	maxAwait time.Duration
	coalesce time.Duration
	onError  func(error)
	id       bson.ObjectID // this process's publisher id

	mu      sync.Mutex
	pending map[string]struct{} // "db\x00coll" marked since the last append
	retry   *event              // an append whose outcome is not known yet
	seq     int64
	marked  uint64        // Publish calls so far
	written uint64        // marked value covered by the last append
	flushed chan struct{} // closed (and replaced) after each append
	wake    chan struct{}

	// afterBatch, when set (by tests), runs after the tailer applied each
	// batch of events.
	afterBatch func()
	cursorID   func(int64)
}

// LogOption configures a Log.
type LogOption func(*Log)

// LogCollection names the capped collection (default
// DefaultLogCollection). Every process sharing a cache must use the same
// database and name.
func LogCollection(name string) LogOption {
	return func(l *Log) { l.coll = l.coll.Database().Collection(name) }
}

// LogSize sets the capped collection's size in bytes when the Log creates
// it (default DefaultLogSize; an event is about 100 bytes). A tailer that
// falls further behind than this flushes its cache.
func LogSize(bytes int64) LogOption { return func(l *Log) { l.size = bytes } }

// MaxAwait is how long the server holds an empty getMore on the tailable
// cursor before answering (default DefaultMaxAwait). It bounds how long the
// tailer takes to notice a dead connection, not how fast events arrive:
// the server answers as soon as one is appended.
func MaxAwait(d time.Duration) LogOption { return func(l *Log) { l.maxAwait = d } }

// Coalesce sets the least time between two appends of this process
// (default DefaultCoalesce): the longest a write waits for its event during
// a burst, and what bounds the log's write rate. 0 appends after every
// round trip.
func Coalesce(d time.Duration) LogOption { return func(l *Log) { l.coalesce = d } }

// OnError receives the errors the Log retries on (appends, cursor losses),
// for logging. Default: ignored; Stats counts the flushes they cause.
func OnError(f func(error)) LogOption { return func(l *Log) { l.onError = f } }

// NewLog returns a Log in db. It creates the capped collection (if it does
// not exist) when the cache starts it.
func NewLog(db *mongo.Database, opts ...LogOption) *Log {
	l := &Log{
		coll:     db.Collection(DefaultLogCollection),
		size:     DefaultLogSize,
		maxAwait: DefaultMaxAwait,
		coalesce: DefaultCoalesce,
		onError:  func(error) {},
		id:       bson.NewObjectID(),
		pending:  map[string]struct{}{},
		flushed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

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

// follow tails the log, reopening the cursor whenever it is lost.
func (l *Log) follow(ctx context.Context, sink cache.Sink) {
	seen := map[bson.ObjectID]int64{} // publisher → last sequence number
	backoff := newBackoff()
	for ctx.Err() == nil {
		err := l.tail(ctx, sink, seen, backoff.reset)
		if ctx.Err() != nil {
			return
		}
		sink.Lost(err)
		l.onError(fmt.Errorf("coherence: tailing %s: %w", l.coll.Name(), err))
		backoff.wait(ctx)
	}
}

// tail opens a tailable cursor on the log and applies its events until the
// cursor dies.
func (l *Log) tail(ctx context.Context, sink cache.Sink, seen map[bson.ObjectID]int64, opened func()) error {
	if err := l.ensure(ctx); err != nil {
		return err
	}
	// A first batch of 0 keeps the cursor open on every server, even when
	// the log holds fewer documents than a batch (FerretDB closes it then).
	// No filter (not even on this process's own events): a tailable
	// cursor whose query matches nothing yet is closed at once.
	cur, err := l.coll.Find(ctx, bson.D{}, options.Find().
		SetCursorType(options.TailableAwait).SetMaxAwaitTime(l.maxAwait).SetBatchSize(0))
	if err != nil {
		return err
	}
	defer closeAfter(ctx, cur.Close)
	if l.cursorID != nil {
		l.cursorID(cur.ID())
	}
	// The cursor starts at the oldest event still in the log, so every
	// event appended from now on will be read.
	opened()
	sink.Synced()
	var ev event
	for cur.Next(ctx) {
		if err := eventPlan.Decode(cur.Current, &ev); err != nil {
			return fmt.Errorf("malformed event: %w", err)
		}
		last, known := seen[ev.Publisher]
		seen[ev.Publisher] = max(last, ev.Seq)
		switch {
		case known && ev.Seq <= last: // a retried append read twice
		case ev.Publisher == l.id: // applied when it was published
		case (known && ev.Seq > last+1) || (!known && ev.Seq > 1):
			// Events of this publisher were overwritten before we read
			// them: they may have named any collection.
			sink.Lost(fmt.Errorf("%w: publisher %s events %d..%d", ErrEventsLost, ev.Publisher.Hex(), last+1, ev.Seq-1))
			sink.Synced()
		default:
			for _, ns := range ev.NS {
				db, coll, _ := strings.Cut(ns, "\x00")
				sink.Invalidate(db, coll)
			}
		}
		if cur.RemainingBatchLength() == 0 && l.afterBatch != nil {
			l.afterBatch()
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	return errCursorClosed
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

// closeAfter closes a cursor or stream with an afterCancel context.
func closeAfter(ctx context.Context, close func(context.Context) error) {
	cctx, cancel := afterCancel(ctx)
	defer cancel()
	_ = close(cctx)
}

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
