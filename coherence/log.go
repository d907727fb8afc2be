package coherence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/cachecore"
	"github.com/databridge-go/databridge/internal/closecur"
)

// Defaults of a Log.
const (
	DefaultLogCollection = "databridge_invalidations"
	DefaultLogSize       = 1 << 20 // bytes: about 10,000 namespace-only events, 3,000-5,000 of one described write each
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
// Publishing is asynchronous and coalesced: Publish (PublishDescribed,
// with the write's descriptor) marks the collection and wakes a goroutine
// that appends one event naming every collection marked since its previous
// append, with the descriptors of their writes (see MaxDescriptorBytes and
// NamespaceEvents); other processes judge each write by its descriptor with
// the invalidation rules, and a collection without descriptors as wholly
// changed. A write after a quiet spell is appended at once; during a burst,
// appends are at least the Coalesce window apart (5 ms by default), so a
// burst costs one insert per window, not one per write. Failed appends are
// retried until they succeed or the cache is closed; an append that failed
// with descriptors is retried without them.
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
	nsOnly   bool          // NamespaceEvents: publish no descriptors
	maxDesc  int           // MaxDescriptorBytes

	mu           sync.Mutex
	pending      map[string]*marks // "db\x00coll" → what was marked since the last append
	pendingBytes int               // of the descriptors in pending
	pendingSince time.Time         // when the first of them was marked
	retry        *event            // an append whose outcome is not known yet
	seq          int64
	marked       uint64        // Publish calls so far
	written      uint64        // marked value covered by the last append
	flushed      chan struct{} // closed (and replaced) after each append
	wake         chan struct{}

	// afterBatch, when set (by tests), runs after the reader applied each
	// batch of events; cursorID receives each tailable cursor's id.
	afterBatch func()
	cursorID   func(int64)
	repaired   atomic.Int64 // events found by looking up a sequence gap
	late       atomic.Int64 // events a poll found before the newest one seen

	described, oversize, refusedEvents atomic.Int64 // see LogStats
}

// marks is what one collection's next event says of it: the descriptors
// of its writes, in the order they were published, or wide (a write
// without one, or more than the event's cap): anything may have changed.
type marks struct {
	descs [][]byte
	wide  bool
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
// it (default DefaultLogSize; an event is about 100 bytes with namespaces
// only, 200-300 with one described update or save, and at most
// MaxDescriptorBytes more). A reader that falls further behind than this
// flushes its cache.
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

// DefaultMaxDescriptorBytes is the most descriptor bytes one event
// carries (MaxDescriptorBytes).
const DefaultMaxDescriptorBytes = 16 << 10

// MaxDescriptorBytes caps the descriptors one event carries (default
// DefaultMaxDescriptorBytes, 16 KiB): a collection whose descriptors would
// take the event past the cap is published by its name only in that
// event, and counted in LogStats.Oversize. Each event takes its size of
// the capped collection (LogSize): the cap bounds how fast a burst of
// writes wraps the log, which costs every reader behind it a flush.
func MaxDescriptorBytes(n int) LogOption {
	return logOptionFunc(func(l *Log) { l.maxDesc = max(n, 0) })
}

// NamespaceEvents makes the Log publish events that name the collections
// written only, without the descriptors of the writes: the format of the
// Log before descriptor events, which every reader, old or new, reads as
// "anything in these collections may have changed". For a fleet whose
// other processes cannot afford the larger events, and to measure what
// descriptors buy.
func NamespaceEvents() LogOption { return logOptionFunc(func(l *Log) { l.nsOnly = true }) }

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
		maxDesc:  DefaultMaxDescriptorBytes,
		pending:  map[string]*marks{},
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
// the namespaces written since the publisher's previous event, and, for
// those whose writes were all described, the writes' descriptors. A reader
// that predates descriptors reads NS only (unknown fields are ignored); a
// namespace in NS without descriptors in W, as in an older publisher's
// event, invalidates its collection.
type event struct {
	ID        bson.ObjectID `bson:"_id"`
	Publisher bson.ObjectID `bson:"p"`
	Seq       int64         `bson:"s"`
	NS        []string      `bson:"ns"` // "db\x00coll"
	W         []described   `bson:"w,omitempty"`
	// At is when the first write the event carries was published, by the
	// publisher's clock (zero in events of older publishers): a reader
	// reports the delay to its cache (cache.DelaySink).
	At time.Time `bson:"t,omitempty"`
}

// described is the descriptors of one namespace's writes, in the order
// they were published. Each is stored as binary data, not as an embedded
// document: the filters and updates in it have field names ($set, a.b)
// that a server may refuse in a stored document.
type described struct {
	NS    string   `bson:"n"`
	Descs [][]byte `bson:"d"`
}

var eventPlan = decode.MustCompile[event]()

// Publish implements cache.Source: it marks db.coll for the next event,
// where any write may have changed anything in it, and returns at once.
func (l *Log) Publish(db, coll string) { l.mark(db, coll, nil) }

// PublishDescribed implements cache.DescribingSource: it adds the write's
// descriptor to db.coll's part of the next event, and returns at once.
// With NamespaceEvents, or past the event's MaxDescriptorBytes, it is
// Publish.
func (l *Log) PublishDescribed(db, coll string, descriptor []byte) {
	if l.nsOnly {
		descriptor = nil
	}
	l.mark(db, coll, descriptor)
}

func (l *Log) mark(db, coll string, desc []byte) {
	if db == l.coll.Database().Name() && coll == l.coll.Name() {
		return // the log itself: never a user's write
	}
	ns := db + "\x00" + coll
	l.mu.Lock()
	if len(l.pending) == 0 {
		l.pendingSince = time.Now()
	}
	m := l.pending[ns]
	if m == nil {
		m = &marks{}
		l.pending[ns] = m
	}
	switch {
	case m.wide:
	case desc == nil:
		m.widen(l)
	case l.pendingBytes+len(desc) > l.maxDesc:
		l.oversize.Add(1)
		m.widen(l)
	default:
		m.descs = append(m.descs, desc)
		l.pendingBytes += len(desc)
	}
	l.marked++
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// widen drops m's descriptors: its collection's event says only that it
// was written (under mu).
func (m *marks) widen(l *Log) {
	for _, d := range m.descs {
		l.pendingBytes -= len(d)
	}
	m.descs, m.wide = nil, true
}

// LogStats are a Log's counters of what it published.
type LogStats struct {
	// Described counts the descriptors appended to the log; Oversize the
	// writes published by their collection only because their
	// descriptor would have taken an event past MaxDescriptorBytes;
	// Refused the events whose append with descriptors failed, appended
	// again without them.
	Described, Oversize, Refused int64
}

// Stats returns the Log's counters.
func (l *Log) Stats() LogStats {
	return LogStats{Described: l.described.Load(), Oversize: l.oversize.Load(), Refused: l.refusedEvents.Load()}
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
	// The Log's own commands (its appends, the capped collection's
	// creation, its reads) are not user writes: a write observer on the
	// same client leaves them alone. Without this, an observed append was
	// applied and published again, forever (TestObserverAndLogOnOneClient).
	ctx, _ = cachecore.Handled(ctx)
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
		ev = l.next()
		l.retry = ev
	}
	l.mu.Unlock()
	if ev == nil {
		return nil
	}
	_, err := l.coll.InsertOne(ctx, ev)
	if err != nil && len(ev.W) > 0 && !mongo.IsDuplicateKeyError(err) {
		// The event is retried as its namespaces only, which every
		// server accepts as before: if the descriptors are why it failed
		// (a document too large, one the server does not accept),
		// retrying it as it was would stop every event after it, and the
		// other processes would serve stale reads. A failure for another
		// reason costs the precision of one event.
		l.mu.Lock()
		l.refusedEvents.Add(1)
		ev.W = nil
		l.mu.Unlock()
		return fmt.Errorf("append failed, retried without its descriptors: %w", err)
	}
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a duplicate: an earlier try was stored
		return err
	}
	l.mu.Lock()
	for _, w := range ev.W {
		l.described.Add(int64(len(w.Descs)))
	}
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

// next makes the event of what is pending, and empties it (under mu).
func (l *Log) next() *event {
	l.seq++
	ev := &event{ID: bson.NewObjectID(), Publisher: l.id, Seq: l.seq, NS: make([]string, 0, len(l.pending)), At: l.pendingSince}
	for ns := range l.pending {
		ev.NS = append(ev.NS, ns)
	}
	slices.Sort(ev.NS)
	for _, ns := range ev.NS {
		if m := l.pending[ns]; !m.wide {
			ev.W = append(ev.W, described{NS: ns, Descs: m.descs})
		}
	}
	clear(l.pending)
	l.pendingBytes = 0
	return ev
}

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
