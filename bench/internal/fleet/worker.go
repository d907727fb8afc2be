package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/bench/internal/precision"
	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/coherence"
	"github.com/databridge-go/databridge/odm"
)

// WorkerEnv is set in the environment of the worker processes Run starts;
// a program that calls MaybeServeWorker first becomes a worker.
const WorkerEnv = "DATABRIDGE_FLEET_WORKER"

// MaybeServeWorker makes a process started by Run serve its parent's
// requests on stdin and stdout, and exit when stdin ends (its parent
// quit or died); in any other process it returns at once.
func MaybeServeWorker() {
	if os.Getenv(WorkerEnv) != "1" {
		return
	}
	// Ctrl-C reaches the whole process group: the parent stops its
	// workers itself, after it has read their counters.
	signal.Ignore(os.Interrupt)
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve answers the requests read from in until Quit or the end of in;
// requests after Setup run concurrently.
func serve(in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		dec = json.NewDecoder(bufio.NewReader(in))
		mu  sync.Mutex // serializes replies
		enc = json.NewEncoder(out)
		wg  sync.WaitGroup
		w   *worker
	)
	send := func(r reply) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(r) // a parent that stopped reading ends our stdin too
	}
	defer func() {
		cancel()
		wg.Wait()
		if w != nil {
			w.close()
		}
	}()
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read a request: %w", err)
		}
		switch {
		case req.Quit:
			send(reply{ID: req.ID})
			return nil
		case req.Setup != nil:
			if w != nil {
				send(reply{ID: req.ID, Err: "fleet: set up twice"})
				continue
			}
			var err error
			w, err = setUp(ctx, *req.Setup)
			send(reply{ID: req.ID, Err: errString(err)})
		case w == nil:
			send(reply{ID: req.ID, Err: "fleet: a request before setup"})
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				send(w.handle(ctx, req))
			}()
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// worker is a worker process's client, cache and handle.
type worker struct {
	cfg precision.Config // what PickRead and ProbeRead read of it
	cl  *mongo.Client
	c   *cache.Cache
	h   *odm.Collection[precision.Order]
	raw *mongo.Collection

	logErrors atomic.Int64 // the errors the log recovered from (coherence.OnError)
	firstErr  atomic.Pointer[string]
}

// logError counts an error the log recovered from, and keeps the first.
func (w *worker) logError(err error) {
	w.logErrors.Add(1)
	msg := err.Error()
	w.firstErr.CompareAndSwap(nil, &msg)
}

// setUp connects, starts the cache with its log and waits until the cache
// follows the log.
func setUp(ctx context.Context, s setup) (_ *worker, err error) {
	w := &worker{cfg: precision.Config{Tenants: s.Tenants, TTL: s.TTL}}
	if w.cl, err = precision.Connect(s.URI); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	db := w.cl.Database(s.DB)
	opts := []coherence.LogOption{coherence.LogCollection(s.Log), coherence.OnError(w.logError)}
	if s.NamespaceEvents {
		opts = append(opts, coherence.NamespaceEvents())
	}
	if w.c, err = cache.New(cache.Config{Source: coherence.NewLog(db, opts...), MaxCost: 256 << 20}); err != nil {
		return nil, err
	}
	w.raw = db.Collection(s.Collection)
	if w.h, err = odm.New[precision.Order](w.raw, odm.WithCache(w.c), odm.WithPreImages()); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); !w.c.Stats().Synced; {
		if time.Now().After(deadline) {
			return nil, errors.New("fleet: the cache did not follow the log within 30 s")
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *worker) close() {
	if w.c != nil {
		w.c.Close()
	}
	_ = w.cl.Disconnect(context.Background())
}

// handle answers one request after Setup.
func (w *worker) handle(ctx context.Context, req request) reply {
	rep := reply{ID: req.ID}
	var err error
	switch {
	case req.Read != nil:
		rep.FP, rep.Hit, err = precision.PickRead(w.cfg, req.Read.Seed, req.Read.MaxID).Do(ctx, w.h)
	case req.Write != nil:
		err = req.Write.Exec(ctx, w.h, w.raw)
		rep.At = time.Now().UnixNano()
	case req.Warm != nil:
		rep.FP, rep.Hit, err = precision.ProbeRead(w.cfg, req.Warm.ID).Do(ctx, w.h)
	case req.Poll != nil:
		rep.At, rep.TimedOut, err = w.poll(ctx, *req.Poll)
	case req.Stats:
		s := w.c.Stats()
		rep.Stats = &s
		rep.LogErrors = w.logErrors.Load()
		if e := w.firstErr.Load(); e != nil {
			rep.LogError = *e
		}
	default:
		err = errors.New("fleet: an empty request")
	}
	rep.Err = errString(err)
	return rep
}

// poll reads the probe until its result differs from p.Old, and returns
// when that result returned.
func (w *worker) poll(ctx context.Context, p probeOp) (at int64, timedOut bool, err error) {
	rd := precision.ProbeRead(w.cfg, p.ID)
	deadline := time.Now().Add(PollTimeout)
	for {
		fp, _, err := rd.Do(ctx, w.h)
		if err != nil {
			return 0, false, err
		}
		if fp != p.Old {
			return time.Now().UnixNano(), false, nil
		}
		if time.Now().After(deadline) {
			return 0, true, nil
		}
		if err := sleep(ctx, 200*time.Microsecond); err != nil {
			return 0, false, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
