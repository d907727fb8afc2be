package precision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand"
	"slices"
	"strconv"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// The workload, shared by Run and by the fleet benchmark
// (bench/internal/fleet), which splits it over processes: the process
// holding the Model picks each read by a seed (PickRead) and plans each
// write (PlanWrite), and any process holding a handle makes it (Read.Do,
// Write.Exec).

// Connect returns a client whose commands every cache of the process
// observes (cache.Observer), and whose reads Read.Do can tell hits from.
func Connect(uri string) (*mongo.Client, error) {
	mon := cache.Observer(&event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "find", "aggregate", "count":
			if f, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
				f.Store(true)
			}
		}
	}})
	return mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(mon))
}

// sentKey marks the context of a read: the command monitor sets the flag
// when the read sends a query.
type sentKey struct{}

// Model is a state of the collection. Once published it is never written:
// a write makes a new one.
type Model map[int]Order

// Seed returns the collection at the start of a phase: cfg.Docs orders with
// _id and createdAt 1 to cfg.Docs.
func Seed(cfg Config, r *rand.Rand) Model {
	m := Model{}
	for i := 1; i <= cfg.Docs; i++ {
		m[i] = newOrder(cfg, r, i, i)
	}
	return m
}

// Insert inserts m's orders, by _id, into coll.
func Insert(ctx context.Context, coll *mongo.Collection, m Model) error {
	docs := make([]any, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		docs = append(docs, m[id])
	}
	_, err := coll.InsertMany(ctx, docs)
	return err
}

var (
	statuses = []string{"open", "paid", "shipped"}
	tiers    = []string{"gold", "silver", "bronze"}
	cities   = []string{"Lyon", "Oslo", "Quito", "Perth"}
)

func tenant(cfg Config, r *rand.Rand) string {
	return "t" + strconv.FormatUint(rand.NewZipf(r, 1.1, 1, uint64(cfg.Tenants-1)).Uint64(), 10)
}

func newOrder(cfg Config, r *rand.Rand, id, at int) Order {
	o := Order{ID: id, Tenant: tenant(cfg, r), Status: statuses[r.Intn(len(statuses))], CreatedAt: at, Total: r.Intn(1000)}
	if r.Intn(5) > 0 {
		o.Customer = &Customer{Tier: tiers[r.Intn(len(tiers))], City: cities[r.Intn(len(cities))]}
	}
	return o
}

// Read is one cached read of the workload: its query shape (one of
// Shapes), the key a perfect invalidator knows it by, the read, and its
// true result on a model.
type Read struct {
	Shape, Key string
	// run makes the read and returns its result in the form truth gives.
	run   func(ctx context.Context, h *odm.Collection[Order]) (any, error)
	truth func(m Model) any
}

// PickRead returns the read seed picks, with ids up to maxID: the same read
// in every process given the same seed, maxID, Config.Tenants and
// Config.TTL.
func PickRead(cfg Config, seed int64, maxID int) Read {
	return pickRead(cfg, rand.New(rand.NewSource(seed)), maxID)
}

// ProbeRead returns a cached read of the order id under a key of its own
// (a find by _id with limit 2, which no read of the workload shares), so
// that reading it leaves the workload's cache entries as they are: for
// measuring how soon a process sees another's write. Its Shape is "probe".
func ProbeRead(cfg Config, id int) Read {
	ttl := query.Cached(cfg.TTL)
	return Read{"probe", "probe " + strconv.Itoa(id), func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
		return h.FindMany(ctx, query.Eq("_id", id), query.Limit(2), ttl)
	}, byID(id)}
}

// Truth returns the fingerprint of the read's true result on m.
func (rd Read) Truth(m Model) uint64 { return fingerprint(rd.truth(m)) }

// Do makes the read through h, whose client must come from Connect, and
// returns the fingerprint of its result (comparable with Truth's) and
// whether it was a hit: it sent no query to the server.
func (rd Read) Do(ctx context.Context, h *odm.Collection[Order]) (fp uint64, hit bool, err error) {
	v, hit, err := rd.do(ctx, h)
	if err != nil {
		return 0, false, err
	}
	return fingerprint(v), hit, nil
}

func (rd Read) do(ctx context.Context, h *odm.Collection[Order]) (v any, hit bool, err error) {
	var sent atomic.Bool
	v, err = rd.run(context.WithValue(ctx, sentKey{}, &sent), h)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rd.Shape, err)
	}
	return v, !sent.Load(), nil
}

type statusCount struct {
	Status string `bson:"_id"`
	N      int    `bson:"n"`
}

func where(m Model, keep func(Order) bool) []Order {
	var out []Order
	for _, o := range m {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

// pickRead draws a read from r. Each read's run returns its result in its
// truth's form: []Order for lists and reads by _id (none or one), int for
// counts, map[string]int for the aggregation.
func pickRead(cfg Config, r *rand.Rand, maxID int) Read {
	t := tenant(cfg, r)
	ttl := query.Cached(cfg.TTL)
	switch k := r.Intn(100); {
	case k < 10:
		return Read{"list by total", "total " + t, func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.FindMany(ctx, query.Eq("tenant", t),
				query.Sort(bson.D{{Key: "total", Value: -1}, {Key: "_id", Value: 1}}), query.Limit(20), ttl)
		}, func(m Model) any {
			out := where(m, func(o Order) bool { return o.Tenant == t })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.ID, b.ID)) })
			return out[:min(20, len(out))]
		}}
	case k < 20:
		st, city := statuses[r.Intn(len(statuses))], cities[r.Intn(len(cities))]
		return Read{"list by status, city", "city " + st + " " + city, func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.FindMany(ctx, query.And(query.Eq("status", st), query.Eq("customer.city", city)),
				query.Sort(bson.D{{Key: "_id", Value: 1}}), query.Limit(20), ttl)
		}, func(m Model) any {
			out := where(m, func(o Order) bool { return o.Status == st && o.Customer != nil && o.Customer.City == city })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
			return out[:min(20, len(out))]
		}}
	case k < 40:
		return Read{"list", "list " + t, func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.FindMany(ctx, query.And(query.Eq("tenant", t), query.Eq("status", "paid")),
				query.Sort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}), query.Limit(20), ttl)
		}, func(m Model) any {
			out := where(m, func(o Order) bool { return o.Tenant == t && o.Status == "paid" })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Or(cmp.Compare(b.CreatedAt, a.CreatedAt), cmp.Compare(b.ID, a.ID)) })
			return out[:min(20, len(out))]
		}}
	case k < 55:
		return Read{"count", "count " + t, func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			n, err := h.Count(ctx, query.Eq("tenant", t), ttl)
			return int(n), err
		}, func(m Model) any { return len(where(m, func(o Order) bool { return o.Tenant == t })) }}
	case k < 65:
		tier := tiers[r.Intn(len(tiers))]
		return Read{"nested", "nested " + t + " " + tier, func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			return h.FindMany(ctx, query.And(query.Eq("tenant", t), query.Eq("customer.tier", tier)), query.Sort(bson.D{{Key: "_id", Value: 1}}), ttl)
		}, func(m Model) any {
			out := where(m, func(o Order) bool { return o.Tenant == t && o.Customer != nil && o.Customer.Tier == tier })
			slices.SortFunc(out, func(a, b Order) int { return cmp.Compare(a.ID, b.ID) })
			return out
		}}
	case k < 75:
		return Read{"aggregate", "aggregate " + t, func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			rows, err := odm.Aggregate[statusCount](ctx, h, bson.A{
				bson.D{{Key: "$match", Value: bson.D{{Key: "tenant", Value: t}}}},
				bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$status"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
			}, ttl)
			n := map[string]int{}
			for _, row := range rows {
				n[row.Status] = row.N
			}
			return n, err
		}, func(m Model) any {
			n := map[string]int{}
			for _, o := range where(m, func(o Order) bool { return o.Tenant == t }) {
				n[o.Status]++
			}
			return n
		}}
	default:
		id := 1 + int(rand.NewZipf(r, 1.1, 1, uint64(maxID-1)).Uint64())
		return Read{"by _id", "id " + strconv.Itoa(id), func(ctx context.Context, h *odm.Collection[Order]) (any, error) {
			o, err := h.FindOne(ctx, query.Eq("_id", id), ttl)
			if errors.Is(err, query.ErrNotFound) {
				return []Order(nil), nil
			}
			return []Order{o}, err
		}, byID(id)}
	}
}

// byID is the truth of a read of the order id: none or one order.
func byID(id int) func(m Model) any {
	return func(m Model) any {
		if o, ok := m[id]; ok {
			return []Order{o}
		}
		return []Order(nil)
	}
}

// fingerprint hashes a result, true or read: orders by their values (not
// their Customer pointer), so that a result decoded in any process hashes
// as its truth does.
func fingerprint(v any) uint64 {
	h := fnv.New64a()
	switch x := v.(type) {
	case []Order:
		for _, o := range x {
			writeOrder(h, o)
		}
	case map[string]int:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			fmt.Fprint(h, k, x[k], ";")
		}
	default:
		fmt.Fprint(h, x)
	}
	return h.Sum64()
}

func writeOrder(w io.Writer, o Order) {
	c := Customer{}
	if o.Customer != nil {
		c = *o.Customer
	}
	fmt.Fprintf(w, "%d %q %q %d %d %q %q;", o.ID, o.Tenant, o.Status, o.CreatedAt, o.Total, c.Tier, c.City)
}

// WriteKind is what a Write does.
type WriteKind string

// The writes of the workload.
const (
	InsertOrder WriteKind = "insert" // inserts Write.Order
	SetStatus   WriteKind = "status" // $set of the status of Write.ID to Write.Status
	IncTotal    WriteKind = "inc"    // $inc of the total of Write.ID by 10
	DeleteOrder WriteKind = "delete" // deletes Write.ID
	ShipOld     WriteKind = "many"   // UpdateMany: ships Write.Tenant's open orders created before Write.Before
)

// Write is one write of the workload, decided on a model by PlanWrite and
// made by Exec, in any process: it says everything Exec needs, and encodes
// to JSON.
type Write struct {
	Kind   WriteKind `json:"kind"`
	ID     int       `json:"id,omitempty"`
	Status string    `json:"status,omitempty"`
	Order  *Order    `json:"order,omitempty"`
	Tenant string    `json:"tenant,omitempty"`
	Before int       `json:"before,omitempty"`
	ODM    bool      `json:"odm,omitempty"` // through odm, else raw through the driver
}

// PlanWrite draws a write from r (inserts 25%, $set of the status 25%,
// $inc of the total 20%, deletes 22%, UpdateMany 8%; Config.RawPercent of
// them raw) and returns it with the model it makes of cur, which it leaves
// as it is. Inserts take their _id from nextID and their createdAt from
// clock. Plans must be made, and made by Exec, one at a time.
func PlanWrite(cfg Config, r *rand.Rand, cur Model, nextID *atomic.Int64, clock *int) (Write, Model) {
	next := maps.Clone(cur)
	ids := slices.Collect(maps.Keys(cur))
	anyID := func() int { return ids[r.Intn(len(ids))] }
	w := Write{ODM: r.Intn(100) >= cfg.RawPercent}
	switch k := r.Intn(100); {
	case k < 25:
		*clock++
		o := newOrder(cfg, r, int(nextID.Add(1)), *clock)
		o.Status = "open"
		w.Kind, w.ID, w.Order = InsertOrder, o.ID, &o
		next[o.ID] = o
	case k < 50:
		o := next[anyID()]
		switch o.Status {
		case "open":
			o.Status = "paid"
		case "paid":
			o.Status = "shipped"
		default:
			o.Status = "open"
		}
		w.Kind, w.ID, w.Status = SetStatus, o.ID, o.Status
		next[o.ID] = o
	case k < 70:
		o := next[anyID()]
		o.Total += 10
		w.Kind, w.ID = IncTotal, o.ID
		next[o.ID] = o
	case k < 92:
		w.Kind, w.ID = DeleteOrder, anyID()
		delete(next, w.ID)
	default:
		w.Kind, w.Tenant, w.Before = ShipOld, tenant(cfg, r), *clock-200
		for id, o := range next {
			if o.Tenant == w.Tenant && o.Status == "open" && o.CreatedAt < w.Before {
				o.Status = "shipped"
				next[id] = o
			}
		}
	}
	return w, next
}

// Exec makes the write through h (Write.ODM) or raw through coll, the
// same collection on a client from Connect.
func (w Write) Exec(ctx context.Context, h *odm.Collection[Order], coll *mongo.Collection) error {
	var (
		filter = bson.D{{Key: "_id", Value: w.ID}}
		update any
		err    error
	)
	switch w.Kind {
	case InsertOrder:
		if w.Order == nil {
			return errors.New("precision: an insert without its order")
		}
		o := *w.Order
		if w.ODM {
			return h.Insert(ctx, &o)
		}
		_, err = coll.InsertOne(ctx, o)
		return err
	case SetStatus:
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: w.Status}}}}
	case IncTotal:
		update = bson.D{{Key: "$inc", Value: bson.D{{Key: "total", Value: 10}}}}
	case DeleteOrder:
		if w.ODM {
			_, err = h.DeleteOne(ctx, query.Eq("_id", w.ID))
		} else {
			_, err = coll.DeleteOne(ctx, filter)
		}
		return err
	case ShipOld:
		f := bson.D{{Key: "tenant", Value: w.Tenant}, {Key: "status", Value: "open"}, {Key: "createdAt", Value: bson.D{{Key: "$lt", Value: w.Before}}}}
		u := bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "shipped"}}}}
		if w.ODM {
			_, err = h.UpdateMany(ctx, f, u)
		} else {
			_, err = coll.UpdateMany(ctx, f, u)
		}
		return err
	default:
		return fmt.Errorf("precision: unknown write %q", w.Kind)
	}
	if w.ODM {
		_, err = h.UpdateOne(ctx, query.Eq("_id", w.ID), update)
	} else {
		_, err = coll.UpdateOne(ctx, filter, update)
	}
	return err
}
