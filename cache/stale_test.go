package cache_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// The stale-read checker: 8 goroutines read cached list queries (sorted,
// limited), counts, nested-field filters, a $match-first aggregation and
// point reads, while writes of every kind (inserts, $set and $inc by _id,
// deletes, UpdateMany, replacements, find-and-modify, upserts, bulk
// writes), half through odm and half raw through the observer, change the
// collection. The writes are serialized, and each is applied to an
// in-memory copy of the collection once the server has answered: a read
// during which no write was in flight (a quiescent read) must equal what
// the copy answers. Reads that overlap a write are not checked (either
// answer is right).

const (
	staleTenants = 5
	staleDocs    = 150
)

var (
	staleStatuses = []string{"open", "paid", "shipped"}
	staleCities   = []string{"x", "y", "z"}
)

// model is an immutable state of the collection: a write makes a new one.
type model struct {
	version int64
	docs    map[int]Order
}

// staleRead is one cached read, with its evaluation on the model.
type staleRead struct {
	shape string
	run   func(ctx context.Context, h *odm.Collection[Order]) (any, error)
	want  func(m *model) any
}

// uncached is the context of a staleRead run without the cache.
type uncachedKey struct{}

// cachedOpt is query.Cached, unless ctx asks for an uncached read.
func cachedOpt(ctx context.Context) query.ReadOption {
	if ctx.Value(uncachedKey{}) != nil {
		return nil
	}
	return query.Cached(time.Minute)
}

func ordersWhere(m *model, keep func(Order) bool) []Order {
	var out []Order
	for _, o := range m.docs {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

func staleReads(r *rand.Rand) staleRead {
	tenant := "t" + strconv.Itoa(zipf(r, staleTenants))
	switch k := r.Intn(10); {
	case k < 4:
		status := staleStatuses[r.Intn(len(staleStatuses))]
		return staleRead{"list", func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.FindMany(ctx, query.And(query.Eq("tenant", tenant), query.Eq("status", status)),
				query.Sort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}), query.Limit(5), cachedOpt(ctx))
		}, func(m *model) any {
			out := ordersWhere(m, func(o Order) bool { return o.Tenant == tenant && o.Status == status })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Or(cmp.Compare(b.CreatedAt, a.CreatedAt), cmp.Compare(b.ID, a.ID)) })
			return nilIfEmpty(out[:min(5, len(out))])
		}}
	case k < 6:
		return staleRead{"count", func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.Count(ctx, query.Eq("tenant", tenant), cachedOpt(ctx))
		}, func(m *model) any {
			return int64(len(ordersWhere(m, func(o Order) bool { return o.Tenant == tenant })))
		}}
	case k < 7:
		city := staleCities[r.Intn(len(staleCities))]
		return staleRead{"nested", func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.FindMany(ctx, query.And(query.Eq("tenant", tenant), query.Eq("addr.city", city)), query.Sort(bson.D{{Key: "_id", Value: 1}}), cachedOpt(ctx))
		}, func(m *model) any {
			out := ordersWhere(m, func(o Order) bool { return o.Tenant == tenant && o.Addr != nil && o.Addr.City == city })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
			return nilIfEmpty(out)
		}}
	case k < 8:
		return staleRead{"aggregate", func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return odm.Aggregate[statusCount](ctx, h, bson.A{
				bson.D{{Key: "$match", Value: bson.D{{Key: "tenant", Value: tenant}}}},
				bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$status"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
				bson.D{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
			}, cachedOpt(ctx))
		}, func(m *model) any {
			n := map[string]int{}
			for _, o := range ordersWhere(m, func(o Order) bool { return o.Tenant == tenant }) {
				n[o.Status]++
			}
			out := []statusCount{}
			for _, s := range slices.Sorted(maps.Keys(n)) {
				out = append(out, statusCount{s, n[s]})
			}
			return out
		}}
	default:
		id := 1 + r.Intn(staleDocs+staleDocs/5)
		return staleRead{"point", func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			o, err := h.FindOne(ctx, query.Eq("_id", id), cachedOpt(ctx))
			if errors.Is(err, query.ErrNotFound) {
				return "none", nil
			}
			return o, err
		}, func(m *model) any {
			if o, ok := m.docs[id]; ok {
				return o
			}
			return "none"
		}}
	}
}

type statusCount struct {
	Status string `bson:"_id"`
	N      int    `bson:"n"`
}

// nilIfEmpty is how a read returns no documents: nil, cached or not.
func nilIfEmpty(o []Order) []Order {
	if len(o) == 0 {
		return nil
	}
	return o
}

// zipf draws 0..n-1, the small ones most often.
func zipf(r *rand.Rand, n int) int {
	z := rand.NewZipf(r, 1.2, 1, uint64(n-1))
	return int(z.Uint64())
}

// staleWriter applies writes to the server and to the model.
type staleWriter struct {
	h      *odm.Collection[Order]
	pre    *odm.Collection[Order] // the same collection and cache, pre-images on: half the odm writes
	raw    *mongo.Collection
	ferret bool         // the server is the dev server (see concurrentWrite)
	famMu  sync.RWMutex // on the dev server: find-and-modify writes run alone
	m      atomic.Pointer[model]
	busy   atomic.Int64 // writes started
	nextID int
	clock  int
}

// hw returns the handle of an odm write: with pre-images or without, at
// random.
func (w *staleWriter) hw(r *rand.Rand) *odm.Collection[Order] {
	if w.pre != nil && r.Intn(2) == 0 {
		return w.pre
	}
	return w.h
}

func (w *staleWriter) order(r *rand.Rand, id int) Order {
	w.clock++
	o := Order{ID: id, Tenant: "t" + strconv.Itoa(zipf(r, staleTenants)), Status: staleStatuses[r.Intn(len(staleStatuses))],
		CreatedAt: w.clock, Total: r.Intn(100)}
	if r.Intn(4) > 0 {
		o.Addr = &Addr{City: staleCities[r.Intn(len(staleCities))]}
	}
	return o
}

// write makes one random write (the writer is called by one goroutine at a
// time) and returns its kind.
func (w *staleWriter) write(ctx context.Context, r *rand.Rand) (string, error) {
	cur := w.m.Load()
	next := maps.Clone(cur.docs)
	ids := slices.Sorted(maps.Keys(cur.docs))
	existing := func() int { return ids[r.Intn(len(ids))] }
	raw := r.Intn(2) == 0
	var kind string
	var err error
	w.busy.Add(1)
	switch k := r.Intn(100); {
	case k < 30 || len(ids) < 10:
		kind = "insert"
		w.nextID++
		o := w.order(r, w.nextID)
		if raw {
			_, err = w.raw.InsertOne(ctx, o)
		} else {
			err = w.hw(r).Insert(ctx, &o)
		}
		next[o.ID] = o
	case k < 55:
		kind = "set status by _id"
		id, s := existing(), staleStatuses[r.Intn(len(staleStatuses))]
		u := set("status", s)
		if raw {
			_, err = w.raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, u)
		} else {
			_, err = w.hw(r).UpdateOne(ctx, query.Eq("_id", id), u)
		}
		o := next[id]
		o.Status = s
		next[id] = o
	case k < 70:
		kind = "inc total by _id"
		id := existing()
		u := bson.D{{Key: "$inc", Value: bson.D{{Key: "total", Value: 1}}}}
		if raw {
			_, err = w.raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, u)
		} else {
			_, err = w.hw(r).UpdateOne(ctx, query.Eq("_id", id), u)
		}
		o := next[id]
		o.Total++
		next[id] = o
	case k < 80:
		kind = "delete by _id"
		id := existing()
		if raw {
			_, err = w.raw.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		} else {
			_, err = w.hw(r).DeleteOne(ctx, query.Eq("_id", id))
		}
		delete(next, id)
	case k < 85:
		kind = "replace"
		id := existing()
		o := w.order(r, id)
		if raw {
			_, err = w.raw.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, o)
		} else {
			err = w.hw(r).Save(ctx, &o)
		}
		next[id] = o
	case k < 90:
		kind = "find and modify city"
		id, city := existing(), staleCities[r.Intn(len(staleCities))]
		u := set("addr.city", city)
		if raw {
			err = w.raw.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}}, u).Err()
		} else {
			_, err = w.hw(r).FindOneAndUpdate(ctx, query.Eq("_id", id), u)
		}
		o := next[id]
		a := Addr{City: city}
		if o.Addr != nil {
			a = *o.Addr
			a.City = city
		}
		o.Addr = &a
		next[id] = o
	case k < 94:
		kind = "upsert"
		w.nextID++
		o := w.order(r, w.nextID)
		o.Addr = nil
		u := set("tenant", o.Tenant, "status", o.Status, "createdAt", o.CreatedAt, "total", o.Total)
		if raw {
			_, err = w.raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: o.ID}}, u, options.UpdateOne().SetUpsert(true))
		} else {
			_, err = w.hw(r).UpdateOne(ctx, query.Eq("_id", o.ID), u, odm.Upsert())
		}
		next[o.ID] = o
	case k < 97:
		kind = "bulk"
		w.nextID++
		o := w.order(r, w.nextID)
		id := existing()
		if raw {
			_, err = w.raw.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(o),
				mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetUpdate(set("status", "paid"))})
		} else {
			_, err = w.hw(r).BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&o), mongo.NewUpdateOneModel().SetFilter(query.Eq("_id", id)).SetUpdate(set("status", "paid"))})
		}
		next[o.ID] = o
		p := next[id]
		p.Status = "paid"
		next[id] = p
	default:
		kind = "update many"
		tenant := "t" + strconv.Itoa(zipf(r, staleTenants))
		f := bson.D{{Key: "tenant", Value: tenant}, {Key: "status", Value: "open"}}
		u := set("status", "shipped")
		if raw {
			_, err = w.raw.UpdateMany(ctx, f, u)
		} else {
			_, err = w.hw(r).UpdateMany(ctx, f, u)
		}
		for id, o := range next {
			if o.Tenant == tenant && o.Status == "open" {
				o.Status = "shipped"
				next[id] = o
			}
		}
	}
	w.m.Store(&model{version: cur.version + 1, docs: next})
	return kind, err
}

// TestNoStaleReads is the stale-read checker (see above): $DATABRIDGE_STALE_READS
// checked reads (default 1,500; `make soak` checks 20,000), zero stale.
func TestNoStaleReads(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	want := readsToCheck(t, 1500, 1)
	leakcheck.Check(t, 10*time.Second)
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	c := newCache(t, cache.Config{})
	w := &staleWriter{h: handle[Order](t, db.Collection("orders"), odm.WithCache(c)), raw: db.Collection("orders"),
		pre: handle[Order](t, db.Collection("orders"), odm.WithCache(c), odm.WithPreImages())}
	r0 := rand.New(rand.NewSource(1))
	seed := map[int]Order{}
	docs := make([]any, 0, staleDocs)
	for range staleDocs {
		w.nextID++
		o := w.order(r0, w.nextID)
		seed[o.ID] = o
		docs = append(docs, o)
	}
	_, err := w.raw.InsertMany(ctx, docs)
	require.NoError(t, err)
	w.m.Store(&model{docs: seed})

	var (
		wmu                    sync.Mutex
		lastWrite              atomic.Int64 // unix nanoseconds of the last write's end
		checked, stale, unchkd atomic.Int64
		writes                 atomic.Int64
		errs                   atomic.Int64
		firstStale             atomic.Pointer[string]
		perShape               sync.Map // shape → *atomic.Int64
		deadline               = time.Now().Add(10 * time.Minute)
		kinds                  sync.Map
		hitsBefore             = c.Stats().Hits
	)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g) + 100))
			for checked.Load() < want && time.Now().Before(deadline) && errs.Load() == 0 {
				// 10% writes, one at a time, with a pause after each so that
				// reads in between are quiescent.
				if r.Intn(10) == 0 && time.Since(time.Unix(0, lastWrite.Load())) > 3*time.Millisecond && wmu.TryLock() {
					kind, err := w.write(ctx, r)
					lastWrite.Store(time.Now().UnixNano())
					wmu.Unlock()
					if err != nil {
						t.Errorf("%s: %v", kind, err)
						errs.Add(1)
						return
					}
					writes.Add(1)
					v, _ := kinds.LoadOrStore(kind, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
					continue
				}
				rd := staleReads(r)
				busy0 := w.busy.Load()
				m := w.m.Load()
				got, err := rd.run(ctx, w.h)
				if err != nil {
					t.Errorf("%s: %v", rd.shape, err)
					errs.Add(1)
					return
				}
				if busy0 != m.version || w.busy.Load() != busy0 {
					unchkd.Add(1) // a write was in flight
					continue
				}
				checked.Add(1)
				v, _ := perShape.LoadOrStore(rd.shape, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
				if expect := rd.want(m); !assert.ObjectsAreEqual(expect, got) {
					if stale.Add(1) == 1 {
						msg := fmt.Sprintf("%s after write %d: got %v, want %v", rd.shape, m.version, got, expect)
						firstStale.Store(&msg)
					}
				}
			}
		}()
	}
	wg.Wait()
	s := c.Stats()
	var shapes []string
	perShape.Range(func(k, v any) bool {
		shapes = append(shapes, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	var wk []string
	kinds.Range(func(k, v any) bool {
		wk = append(wk, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(shapes)
	slices.Sort(wk)
	t.Logf("%d checked reads (%v), %d not checked (a write in flight); %d writes (%v)", checked.Load(), shapes, unchkd.Load(), writes.Load(), wk)
	t.Logf("hits %d, misses %d; invalidated by id %d, match %d, path %d, wide %d; kept %d; discarded %d",
		s.Hits-hitsBefore, s.Misses, s.InvalidatedByID, s.InvalidatedByMatch, s.InvalidatedByPath, s.InvalidatedWide, s.Kept, s.Discarded)
	if p := firstStale.Load(); p != nil {
		t.Errorf("first stale read: %s", *p)
	}
	assert.Zero(t, stale.Load(), "stale reads")
	assert.GreaterOrEqual(t, checked.Load(), want, "checked reads")
	assert.Positive(t, s.Kept, "the rules kept entries through writes")
	t.Logf("pre-images: %d writes carried one; %d entries held, %d released", s.PreImages, s.Held, s.Released)
	if want >= 10_000 {
		// About one write in 30 carries one (when it would otherwise drop
		// an entry): a short run may have none; `make soak` has dozens.
		assert.Positive(t, s.PreImages, "writes with pre-images among the writes")
	}
}

// TestNoStaleReadsConcurrentWriters is the stale-read checker with
// concurrent writes: the 8 goroutines write at the same time, to a small
// set of hot documents (so that writes to one document overlap), in bursts;
// between bursts no write is in flight, and every read made then is checked
// against the same read without the cache, made right after it in the same
// quiet spell (the server is the oracle: concurrent writes to one document
// leave a state no model can predict). The rules decide a write against
// cached documents, which must not miss what another write still in flight
// did to them. Half the odm writes carry pre-images (odm.WithPreImages);
// on the dev server, whose findAndModify is not atomic, a write that may
// go out as a findAndModify runs alone (see concurrentWrite).
func TestNoStaleReadsConcurrentWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	// Slower than the serialized checker (two reads per check, and quiet
	// spells only between bursts): a fifth of its reads.
	want := readsToCheck(t, 300, 5)
	leakcheck.Check(t, 10*time.Second)
	cl := testdb.NewClient(t, options.Client().SetMonitor(cache.Observer(nil)))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	c := newCache(t, cache.Config{})
	w := &staleWriter{h: handle[Order](t, db.Collection("orders"), odm.WithCache(c)), raw: db.Collection("orders"),
		pre: handle[Order](t, db.Collection("orders"), odm.WithCache(c), odm.WithPreImages()), ferret: testdb.IsFerretDB(t)}
	r0 := rand.New(rand.NewSource(2))
	docs := make([]any, 0, staleDocs)
	for range staleDocs {
		w.nextID++
		docs = append(docs, w.order(r0, w.nextID))
	}
	_, err := w.raw.InsertMany(ctx, docs)
	require.NoError(t, err)

	var (
		writing, epoch       atomic.Int64 // writes in flight; writes started or ended
		nextID               atomic.Int64
		checked, stale, errs atomic.Int64
		skipped, writes      atomic.Int64
		firstStale           atomic.Pointer[string]
		// 10 minutes, or more for a soak's many reads: a check needs a
		// quiet spell between bursts, about one in 150 ms on this 2-core
		// machine (4,000 took 490 to over 600 s in `make soak`).
		deadline = time.Now().Add(max(10*time.Minute, time.Duration(want)*250*time.Millisecond))
	)
	nextID.Store(int64(w.nextID))
	burst := func() bool { return time.Now().UnixMilli()%60 < 20 } // 20 ms of writes in every 60
	// At most 3 writes at once: the dev server (SQLite) stalls under more
	// concurrent writes to one collection.
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g) + 200))
			for checked.Load() < want && time.Now().Before(deadline) && errs.Load() == 0 {
				if burst() {
					select {
					case sem <- struct{}{}:
					default:
						continue
					}
					epoch.Add(1)
					writing.Add(1)
					wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					err := concurrentWrite(wctx, r, w, &nextID)
					cancel()
					<-sem
					if mongo.IsDuplicateKeyError(err) || errors.Is(err, context.DeadlineExceeded) {
						// Two upserts of one _id at once: the server refuses
						// one. Or the dev server stalled under concurrent
						// writes: the write is of unknown outcome, which the
						// cache handles (unsettled); the oracle is the server.
						err = nil
					}
					time.Sleep(time.Millisecond) // so that writes overlap but do not pile up
					writing.Add(-1)
					epoch.Add(1)
					if err != nil {
						t.Errorf("write: %v", err)
						errs.Add(1)
						return
					}
					writes.Add(1)
					continue
				}
				rd := staleReads(r)
				e0 := epoch.Load()
				if writing.Load() != 0 {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				got, err := rd.run(ctx, w.h)
				if err != nil {
					t.Errorf("%s: %v", rd.shape, err)
					errs.Add(1)
					return
				}
				truth, err := rd.run(context.WithValue(ctx, uncachedKey{}, true), w.h)
				if err != nil {
					t.Errorf("%s uncached: %v", rd.shape, err)
					errs.Add(1)
					return
				}
				if epoch.Load() != e0 {
					skipped.Add(1) // a write began or ended meanwhile
					continue
				}
				checked.Add(1)
				if !assert.ObjectsAreEqual(truth, got) {
					if stale.Add(1) == 1 {
						msg := fmt.Sprintf("%s: got %v, want %v", rd.shape, got, truth)
						firstStale.Store(&msg)
					}
				}
			}
		}()
	}
	wg.Wait()
	s := c.Stats()
	t.Logf("%d checked reads, %d not checked; %d writes; hits %d, misses %d; by id %d, match %d, path %d, wide %d; kept %d; discarded %d",
		checked.Load(), skipped.Load(), writes.Load(), s.Hits, s.Misses, s.InvalidatedByID, s.InvalidatedByMatch,
		s.InvalidatedByPath, s.InvalidatedWide, s.Kept, s.Discarded)
	t.Logf("pre-images: %d writes carried one; %d entries held, %d released", s.PreImages, s.Held, s.Released)
	if p := firstStale.Load(); p != nil {
		t.Errorf("first stale read: %s", *p)
	}
	assert.Zero(t, stale.Load(), "stale reads")
	assert.GreaterOrEqual(t, checked.Load(), want, "checked reads")
	assert.Positive(t, s.PreImages, "writes with pre-images raced with the others")
}

// concurrentWrite makes one random write to a hot document (one of the
// first 10), half through odm and half raw, of every kind the checker
// knows; several run at once.
func concurrentWrite(ctx context.Context, r *rand.Rand, w *staleWriter, nextID *atomic.Int64) error {
	hot := 1 + r.Intn(10)
	raw := r.Intn(2) == 0
	status := staleStatuses[r.Intn(len(staleStatuses))]
	tenant := "t" + strconv.Itoa(zipf(r, staleTenants))
	h := w.hw(r)
	k := r.Intn(10)
	if w.ferret {
		// The dev server's findAndModify is not atomic: a write to the
		// same document between its read and its write is lost, and the
		// document it returns is not the one its write changed
		// (docs/ferretdb.md), so a pre-image would not be a fact there. A
		// write that may go out as a findAndModify (with a pre-image, or
		// a find-and-modify) runs alone; the others still race.
		fam := k >= 8 || (!raw && h == w.pre && (k == 1 || k == 2 || k == 3 || k == 6 || k == 7))
		if fam {
			w.famMu.Lock()
			defer w.famMu.Unlock()
		} else {
			w.famMu.RLock()
			defer w.famMu.RUnlock()
		}
	}
	var err error
	switch k {
	case 0:
		o := Order{ID: int(nextID.Add(1)), Tenant: tenant, Status: status, CreatedAt: 1000 + r.Intn(1000)}
		if raw {
			_, err = w.raw.InsertOne(ctx, o)
		} else {
			err = h.Insert(ctx, &o)
		}
	case 1, 2, 3:
		u := set("status", status)
		if k == 3 {
			u = set("tenant", tenant)
		}
		if raw {
			_, err = w.raw.UpdateOne(ctx, bson.D{{Key: "_id", Value: hot}}, u)
		} else {
			_, err = h.UpdateOne(ctx, query.Eq("_id", hot), u)
		}
	case 4, 5:
		// By another filter: the rules judge it on cached documents.
		f := bson.D{{Key: "status", Value: status}, {Key: "_id", Value: bson.D{{Key: "$lte", Value: 10}}}}
		u := set("createdAt", 2000+r.Intn(1000))
		if raw {
			_, err = w.raw.UpdateMany(ctx, f, u)
		} else {
			_, err = h.UpdateMany(ctx, f, u)
		}
	case 6:
		o := Order{ID: hot, Tenant: tenant, Status: status, CreatedAt: r.Intn(3000)}
		if raw {
			_, err = w.raw.ReplaceOne(ctx, bson.D{{Key: "_id", Value: hot}}, o, options.Replace().SetUpsert(true))
		} else {
			err = h.Save(ctx, &o)
		}
	case 7:
		f := bson.D{{Key: "_id", Value: hot}, {Key: "status", Value: status}}
		if raw {
			_, err = w.raw.DeleteOne(ctx, f)
		} else {
			_, err = h.DeleteOne(ctx, f)
		}
	default:
		u := set("addr.city", staleCities[r.Intn(len(staleCities))], "status", status)
		if raw {
			err = w.raw.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: hot}}, u, options.FindOneAndUpdate().SetUpsert(true)).Err()
			if errors.Is(err, mongo.ErrNoDocuments) {
				err = nil
			}
		} else {
			_, err = h.FindOneAndUpdate(ctx, query.Eq("_id", hot), u, odm.Upsert())
			if errors.Is(err, query.ErrNotFound) {
				err = nil
			}
		}
	}
	return err
}

// readsToCheck is how many reads a stale-read checker checks: def, or
// $DATABRIDGE_STALE_READS divided by div (`make soak` sets it).
func readsToCheck(t *testing.T, def, div int64) int64 {
	t.Helper()
	s := os.Getenv("DATABRIDGE_STALE_READS")
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, "DATABRIDGE_STALE_READS")
	return n / div
}
