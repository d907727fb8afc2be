package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/bench/internal/precision"
)

// runPhase runs one configuration for cfg.Phase: it seeds the collection,
// starts the workers, drives them from 4 goroutines, reads their counters
// and stops them, on every return path.
func runPhase(ctx context.Context, cfg Config, db *mongo.Database, conf Configuration, round int) (_ Phase, err error) {
	name := fmt.Sprintf("orders_%d_%s", round, conf.short)
	logName := fmt.Sprintf("databridge_invalidations_%d_%s", round, conf.short)
	coll := db.Collection(name)
	for _, c := range []*mongo.Collection{coll, db.Collection(logName)} {
		_ = c.Drop(ctx)
		defer func() { _ = c.Drop(context.WithoutCancel(ctx)) }()
	}
	m := precision.Seed(cfg.Config, rand.New(rand.NewSource(42+int64(round))))
	if err := precision.Insert(ctx, coll, m); err != nil {
		return Phase{}, err
	}
	n := 1
	if conf.Fleet {
		n = cfg.Workers
	}
	procs, err := startFleet(ctx, n, setup{
		URI: cfg.URI, DB: db.Name(), Collection: name, Log: logName, NamespaceEvents: conf.NamespaceEvents,
		Tenants: cfg.Tenants, TTL: cfg.TTL,
	})
	if err != nil {
		return Phase{}, err
	}
	defer func() { err = errors.Join(err, stopFleet(procs)) }()

	d := newDriver(cfg, procs, m, round)
	p := Phase{Config: conf.Name, Round: round, Workers: n}
	if p.Shapes, p.Stale, p.Racing, p.Writes, err = d.run(ctx); err != nil {
		return Phase{}, err
	}
	p.Propagation, p.Timeouts = d.propagation, d.timeouts
	for _, w := range procs {
		r, err := w.call(ctx, request{Stats: true})
		if err != nil {
			return Phase{}, err
		}
		p.Stats = append(p.Stats, *r.Stats)
		p.LogErrors += int(r.LogErrors)
		p.LogError = cmp.Or(p.LogError, r.LogError)
	}
	return p, nil
}

// driver sends a phase's operations to its workers and keeps the truth:
// the models, the perfect invalidators and the counts.
type driver struct {
	cfg    Config
	round  int
	procs  []*proc
	ideals []*precision.Ideal // one per worker: each has its own cache
	hist   history
	nextID atomic.Int64

	wmu       sync.Mutex // one write at a time; guards what follows
	clock     int
	lastProbe time.Time

	mu          sync.Mutex // guards what follows
	shapes      map[string]*precision.Counts
	stale       map[string]int
	racing      int
	writes      int
	propagation []time.Duration
	timeouts    int
}

func newDriver(cfg Config, procs []*proc, m precision.Model, round int) *driver {
	d := &driver{cfg: cfg, procs: procs, round: round, clock: cfg.Docs, shapes: map[string]*precision.Counts{}, stale: map[string]int{}}
	for range procs {
		d.ideals = append(d.ideals, precision.NewIdeal())
	}
	for _, s := range precision.Shapes {
		d.shapes[s] = &precision.Counts{}
	}
	d.hist.models[0] = m
	d.nextID.Store(int64(cfg.Docs))
	return d
}

// run drives the workers from 4 goroutines for cfg.Phase, each making
// cfg.WritePercent of its operations writes, and returns the counts. The
// first error stops them all.
func (d *driver) run(ctx context.Context) (shapes map[string]*precision.Counts, stale map[string]int, racing, writes int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		emu   sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d.cfg.Phase)
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewSource(int64(d.round)*100 + int64(g)))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				var err error
				if r.Intn(100) < d.cfg.WritePercent {
					err = d.write(ctx, r)
				} else {
					err = d.read(ctx, r)
				}
				if err != nil {
					emu.Lock()
					first = cmp.Or(first, err)
					emu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err() // the caller's: ours is cancelled only after an error
	}
	return d.shapes, d.stale, d.racing, d.writes, first
}

// read sends one read to a worker picked at random and counts it. A
// result that matches none of the models from the read's start to its
// end (the write in flight then included) is stale if it was a hit.
func (d *driver) read(ctx context.Context, r *rand.Rand) error {
	w := r.Intn(len(d.procs))
	op := readOp{Seed: r.Int63(), MaxID: int(d.nextID.Load())}
	rd := precision.PickRead(d.cfg.Config, op.Seed, op.MaxID)
	v0, m0 := d.hist.now()
	truth := rd.Truth(m0)
	rep, err := d.procs[w].call(ctx, request{Read: &op})
	if err != nil {
		return err
	}
	isIdeal := d.ideals[w].Read(rd.Key, truth, d.cfg.TTL)
	consistent := rep.FP == truth
	for _, m := range d.hist.since(v0 + 1) {
		consistent = consistent || rd.Truth(m) == rep.FP
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.shapes[rd.Shape]
	s.Reads++
	switch {
	case rep.Hit && consistent:
		s.Hits++
	case rep.Hit:
		d.stale[rd.Shape]++
	case !consistent:
		d.racing++
	}
	if isIdeal {
		s.Ideal++
	}
	return nil
}

// write plans a write on the current model and has a worker picked at
// random make it, one at a time. Every ProbeEvery, in a fleet, a write by
// _id is probed: another worker caches the order before it, and reads it
// after it until it sees it changed.
func (d *driver) write(ctx context.Context, r *rand.Rand) error {
	d.wmu.Lock()
	locked := true
	defer func() {
		if locked {
			d.wmu.Unlock()
		}
	}()
	_, cur := d.hist.now()
	wr, next := precision.PlanWrite(d.cfg.Config, r, cur, &d.nextID, &d.clock)
	w := r.Intn(len(d.procs))
	probe := len(d.procs) > 1 && wr.Kind != precision.ShipOld && time.Since(d.lastProbe) >= ProbeEvery
	var (
		reader int
		op     probeOp
	)
	if probe {
		d.lastProbe = time.Now()
		reader = (w + 1 + r.Intn(len(d.procs)-1)) % len(d.procs)
		op = probeOp{ID: wr.ID, Old: precision.ProbeRead(d.cfg.Config, wr.ID).Truth(cur)}
		if _, err := d.procs[reader].call(ctx, request{Warm: &op}); err != nil {
			return err
		}
	}
	d.hist.plan(next)
	rep, err := d.procs[w].call(ctx, request{Write: &wr})
	d.hist.commit()
	d.mu.Lock()
	d.writes++
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", wr.Kind, err)
	}
	if !probe {
		return nil
	}
	d.wmu.Unlock() // the next writes need not wait for the probe
	locked = false
	seen, err := d.procs[reader].call(ctx, request{Poll: &op})
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if seen.TimedOut {
		d.timeouts++
	} else {
		d.propagation = append(d.propagation, time.Duration(seen.At-rep.At))
	}
	return nil
}

// history holds the recent models by version, and the model of the write
// in flight, so that a read's result can be checked against every state
// the collection went through while it ran.
type history struct {
	mu       sync.Mutex
	models   [64]precision.Model // version v at v%64
	cur      int                 // the version of the last write that returned
	inflight bool                // models[(cur+1)%64] is being written
}

// now returns the current version and its model.
func (h *history) now() (int, precision.Model) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur, h.models[h.cur%len(h.models)]
}

// plan records the model of the write about to be sent.
func (h *history) plan(m precision.Model) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.models[(h.cur+1)%len(h.models)] = m
	h.inflight = true
}

// commit makes the planned model current: its write has returned.
func (h *history) commit() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur++
	h.inflight = false
}

// since returns the models from version v on, the one in flight included
// (at most the last len(h.models)).
func (h *history) since(v int) []precision.Model {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.cur
	if h.inflight {
		last++
	}
	v = max(v, last-len(h.models)+1, 0)
	var out []precision.Model
	for ; v <= last; v++ {
		out = append(out, h.models[v%len(h.models)])
	}
	return out
}
