package cursor

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/decode"
	"github.com/databridge-go/databridge/internal/closecur"
)

// ErrClosed is returned by a Cursor used after Close.
var ErrClosed = errors.New("cursor: closed")

// DocumentError reports a document the cursor could not decode. It names the
// document's position in the stream and its _id (when the document has one)
// and wraps the *decode.Error that names the field.
type DocumentError struct {
	Index int           // position of the document in the stream, from 0
	ID    bson.RawValue // the document's _id; zero when absent or unreadable
	Err   error
}

// Error implements error.
func (e *DocumentError) Error() string {
	if e.ID.Type != 0 {
		return fmt.Sprintf("cursor: document %d (_id %s): %v", e.Index, e.ID, e.Err)
	}
	return fmt.Sprintf("cursor: document %d: %v", e.Index, e.Err)
}

// Unwrap returns the decoding error.
func (e *DocumentError) Unwrap() error { return e.Err }

// Option configures a Cursor.
type Option interface{ apply(*config) }

type config struct {
	prefetch     bool
	closeTimeout time.Duration
	decode       []decode.Option
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithoutPrefetch turns off pipelined getMore: each batch is fetched when the
// previous one is used up, as the driver does. Default: prefetch on (the next
// batch is fetched while the current one is consumed; it never starts for a
// result that fits in the first batch), except when the context of the
// first Next carries an explicit session (mongo.NewSessionContext): a
// getMore then runs only between the caller's steps, since mongo.Session is
// not safe for concurrent use. A cursor opened in a session but iterated
// with another context should be given WithoutPrefetch.
func WithoutPrefetch() Option { return optionFunc(func(c *config) { c.prefetch = false }) }

// DecodeOptions passes options to the decoding plan of the cursor's type:
// decode.ZeroCopy (strings point into the batch the driver received: they
// stay valid, as the driver never rewrites a batch, but any string you keep
// holds its whole batch in memory, up to 16 MiB), or decode.WithRegistry
// and decode.WithBSONOptions for a client connected with a registry or BSON
// options of its own (the driver cannot tell the cursor about them).
// Default: none (strings are copied; the default registry).
func DecodeOptions(opts ...decode.Option) Option {
	return optionFunc(func(c *config) { c.decode = append(c.decode, opts...) })
}

// DefaultCloseTimeout bounds how long killing a server cursor may take,
// unless CloseTimeout says otherwise.
const DefaultCloseTimeout = 5 * time.Second

// CloseTimeout bounds how long killing the server cursor may take (see
// Close). The caller never waits longer than its own context allows; the
// kill itself runs for at most d, in the background once the caller's
// context has ended. Default: 5s.
func CloseTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.closeTimeout = d }) }

// Cursor streams the documents of a driver cursor into values of type T.
//
// A Cursor is not safe for concurrent use. It must be closed (the iterators
// and collectors close it themselves); Close kills the server cursor when the
// stream was not read to the end.
type Cursor[T any] struct {
	cur  *mongo.Cursor
	plan *decode.Plan[T]
	cfg  config

	docs  []bson.Raw // current batch
	pos   int        // index of the current document in docs, -1 before the first
	index int        // position of the current document in the stream
	err   error
	done  bool // no more batches
	close sync.Once

	// pipeline
	started bool
	batches chan fetched
	pctx    context.Context // the prefetch goroutine's context
	cancel  context.CancelFunc
	exited  chan struct{}

	scratch T            // the borrowed value of Borrowed and Value
	arena   decode.Arena // string chunks and slice slabs shared by the documents decoded
}

// fetched is what the prefetch goroutine hands over: a batch, the error
// that ended the stream, or (end) the end of the results. The channel is
// closed without an end only when the goroutine was stopped, so a closed
// channel is never mistaken for a complete result.
type fetched struct {
	docs []bson.Raw
	err  error
	end  bool
}

// New wraps a driver cursor, which the Cursor then owns: do not use cur
// afterwards. It fails only when T cannot be decoded (see decode.Compile).
func New[T any](cur *mongo.Cursor, opts ...Option) (*Cursor[T], error) {
	cfg := config{prefetch: true, closeTimeout: DefaultCloseTimeout}
	for _, o := range opts {
		o.apply(&cfg)
	}
	plan, err := decode.Compile[T](cfg.decode...)
	if err != nil {
		_ = cur.Close(context.Background())
		return nil, err
	}
	return &Cursor[T]{cur: cur, plan: plan, cfg: cfg, pos: -1, index: -1}, nil
}

// Next advances to the next document and reports whether there is one. It
// returns false at the end of the stream or on error (see Err). The context
// bounds the wait; with prefetch, the background fetch of later batches runs
// under the context of the first Next and stops at Close.
func (c *Cursor[T]) Next(ctx context.Context) bool {
	if c.err != nil {
		return false
	}
	if c.cur == nil {
		c.err = ErrClosed
		return false
	}
	if c.pos+1 < len(c.docs) {
		c.pos++
		c.index++
		return true
	}
	for !c.done {
		docs, err := c.fetch(ctx)
		if err != nil {
			c.err = err
			return false
		}
		if len(docs) > 0 {
			c.docs, c.pos = docs, 0
			c.index++
			return true
		}
	}
	return false
}

// fetch returns the next batch; nil docs and nil error at the end.
func (c *Cursor[T]) fetch(ctx context.Context) ([]bson.Raw, error) {
	if c.cur == nil {
		return nil, ErrClosed
	}
	if !c.started {
		c.started = true
		// The first batch came with the find: take it without a goroutine.
		docs := c.drainBatch(make([]bson.Raw, 0, c.cur.RemainingBatchLength()))
		// With an explicit session in the context, getMore runs only in
		// the caller's goroutine, between its steps: mongo.Session is not
		// safe for concurrent use.
		if mongo.SessionFromContext(ctx) != nil {
			c.cfg.prefetch = false
		}
		if c.cur.ID() == 0 || !c.cfg.prefetch {
			if c.cur.ID() == 0 {
				c.done = true
			}
			return docs, nil
		}
		c.startPrefetch(ctx)
		return docs, nil
	}
	if c.batches == nil {
		return c.fetchSync(ctx)
	}
	select {
	case b, ok := <-c.batches:
		switch {
		case !ok: // stopped before the end: its context ended
			c.done = true
			return nil, c.prefetchStopped()
		case b.err != nil:
			c.done = true
			return nil, b.err
		case b.end:
			c.done = true
			return nil, nil
		}
		return b.docs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prefetchStopped is the error of a stream whose background fetch stopped
// before the end of the results: the context it runs under (the first
// Next's) ended, or the cursor was closed.
func (c *Cursor[T]) prefetchStopped() error {
	if err := context.Cause(c.pctx); err != nil {
		return fmt.Errorf("cursor: the context of the first Next ended before the stream did: %w", err)
	}
	return ErrClosed
}

// drainBatch appends the documents left in the driver's current batch to
// docs; the driver does not reuse a batch's memory, so the raw documents
// stay valid.
func (c *Cursor[T]) drainBatch(docs []bson.Raw) []bson.Raw {
	for c.cur.RemainingBatchLength() > 0 && c.cur.Next(context.Background()) {
		docs = append(docs, c.cur.Current)
	}
	return docs
}

// nextBatch runs one getMore and returns its documents (in one allocation);
// nil docs and nil error at the end of the stream.
func (c *Cursor[T]) nextBatch(ctx context.Context) ([]bson.Raw, error) {
	if !c.cur.Next(ctx) {
		return nil, c.cur.Err()
	}
	docs := make([]bson.Raw, 1, 1+c.cur.RemainingBatchLength())
	docs[0] = c.cur.Current
	return c.drainBatch(docs), nil
}

// fetchSync runs one getMore in the caller's goroutine.
func (c *Cursor[T]) fetchSync(ctx context.Context) ([]bson.Raw, error) {
	docs, err := c.nextBatch(ctx)
	if docs == nil {
		c.done = true
	}
	return docs, err
}

// startPrefetch starts the goroutine that fetches batch n+1 while batch n is
// consumed. The channel is unbuffered, so the goroutine holds at most one
// batch that the consumer has not taken: memory stays bounded by two batches.
func (c *Cursor[T]) startPrefetch(ctx context.Context) {
	pctx, cancel := context.WithCancel(ctx)
	c.pctx, c.cancel = pctx, cancel
	c.batches = make(chan fetched)
	c.exited = make(chan struct{})
	go func() {
		defer close(c.exited)
		defer close(c.batches)
		for {
			var b fetched
			b.docs, b.err = c.nextBatch(pctx)
			b.end = b.docs == nil && b.err == nil
			select {
			case c.batches <- b:
				if b.err != nil || b.end {
					return
				}
			case <-pctx.Done():
				return // the reader sees the channel closed without an end
			}
		}
	}()
}

// Current returns the raw current document. It stays valid after Next.
func (c *Cursor[T]) Current() bson.Raw {
	if c.pos < 0 || c.pos >= len(c.docs) {
		return nil
	}
	return c.docs[c.pos]
}

// Decode decodes the current document into dst, with the semantics of
// decode.Plan.Decode (dst is reset first; its slices' backing arrays are
// reused).
func (c *Cursor[T]) Decode(dst *T) error {
	doc := c.Current()
	if doc == nil {
		return errors.New("cursor: Decode called without a current document")
	}
	if err := c.plan.DecodeWith(doc, dst, &c.arena); err != nil {
		return c.docErr(doc, err)
	}
	return nil
}

func (c *Cursor[T]) docErr(doc bson.Raw, err error) error {
	de := &DocumentError{Index: c.index, Err: err}
	if id, lerr := doc.LookupErr("_id"); lerr == nil {
		de.ID = id
	}
	return de
}

// Err returns the error that ended the stream, if any.
func (c *Cursor[T]) Err() error { return c.err }

// Close stops the background fetch, waits for it to end, and closes the
// driver cursor, which kills the server cursor if the stream was not read to
// the end. The kill runs under a context of its own, bounded by the
// CloseTimeout only (never by ctx's deadline, which would make the driver
// refuse to send it and forget the cursor), and Close waits for it only
// while ctx is live: when ctx ends first (a cancelled loop, a passed
// deadline, a hung server) Close returns and the kill goes on in the
// background for at most the CloseTimeout. So a stream that ends for any
// reason frees its server cursor whenever the server answers. It is safe to
// call more than once.
func (c *Cursor[T]) Close(ctx context.Context) error {
	var err error
	c.close.Do(func() {
		if c.cancel != nil {
			c.cancel()
			<-c.exited
		}
		err = closecur.Close(ctx, c.cur, c.cfg.closeTimeout)
		c.cur = nil
		c.docs = nil
	})
	return err
}

// All returns a single-use iterator over the stream's values. Each value is
// the caller's to keep: it shares no mutable memory with later values (its
// strings and slices are its own regions of chunks shared with nearby
// values, see decode.Arena). The error, if any, is yielded once, last, with
// a zero T; the cursor is closed when the loop ends, including on break and
// panic.
//
// Beware of `for v := range c.All(ctx)`: the one-variable form drops the
// error. AppendAll returns it.
func (c *Cursor[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		defer c.Close(ctx)
		var v T
		for c.Next(ctx) {
			var zero T
			v = zero // fresh: no slice reuse, so yielded values own their memory
			if err := c.Decode(&v); err != nil {
				yield(zero, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := c.Err(); err != nil {
			var zero T
			yield(zero, err)
		}
	}
}

// Borrowed returns a single-use iterator that decodes every document into
// one reused value and yields a pointer to it. The pointed-to value, and
// every slice in it, is valid only until the next iteration step: copy what
// you keep. In exchange, a loop allocates only for strings (none with
// decode.ZeroCopy), maps and pointers: slices reuse their capacity. Errors
// and closing are as for All.
func (c *Cursor[T]) Borrowed(ctx context.Context) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		defer c.Close(ctx)
		for c.Next(ctx) {
			if err := c.Decode(&c.scratch); err != nil {
				yield(nil, err)
				return
			}
			if !yield(&c.scratch, nil) {
				return
			}
		}
		if err := c.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// AppendAll appends the rest of the stream to dst (nil: a new slice the
// caller owns), decoding each document in place in dst's spare capacity,
// and closes the cursor. On error it returns dst with the documents decoded
// so far, and the error.
func (c *Cursor[T]) AppendAll(ctx context.Context, dst []T) ([]T, error) {
	defer c.Close(ctx)
	var zero T
	for c.Next(ctx) {
		if len(dst) == cap(dst) {
			n := len(dst) + c.remainingHint()
			grown := make([]T, len(dst), max(n, 2*cap(dst), 8))
			copy(grown, dst)
			dst = grown
		}
		dst = dst[:len(dst)+1]
		last := &dst[len(dst)-1]
		*last = zero // spare capacity may hold old values: start fresh
		if err := c.Decode(last); err != nil {
			return dst[:len(dst)-1], err
		}
	}
	return dst, c.Err()
}

// remainingHint is the number of documents left in the current batch.
func (c *Cursor[T]) remainingHint() int { return len(c.docs) - c.pos }
