package cachecore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/outcome"
	"github.com/databridge-go/databridge/internal/pipeline"
)

// Observer is cache.Observer (see there): it puts the writes it sees on
// the bus, and marks the loads it sees observed.
func Observer(next *event.CommandMonitor) *event.CommandMonitor {
	o := &observer{pending: map[pendingKey]pendingWrite{}, txns: map[string]map[string]struct{}{}, readers: map[string][]*mongo.Client{}}
	m := &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if f := unackedOf(ctx); f != nil && writeCommands[e.CommandName] != nil && unacknowledged(e.Command) {
				f.Store(true)
			}
			if !isHandled(ctx) {
				o.started(ctx, e)
			}
			if next != nil && next.Started != nil {
				next.Started(ctx, e)
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			o.finished(ctx, &e.CommandFinishedEvent, e.Reply, nil)
			if next != nil && next.Succeeded != nil {
				next.Succeeded(ctx, e)
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			o.finished(ctx, &e.CommandFinishedEvent, nil, e.Failure)
			if next != nil && next.Failed != nil {
				next.Failed(ctx, e)
			}
		},
	}
	return m
}

// writeCommands are the commands that may change data, and how each names
// what it changes.
var writeCommands = map[string]func(e *event.CommandStartedEvent) []string{
	"insert":           firstValue,
	"update":           firstValue,
	"delete":           firstValue,
	"findAndModify":    firstValue,
	"findandmodify":    firstValue,
	"drop":             firstValue,
	"create":           firstValue, // a view (or a collection: harmless)
	"collMod":          firstValue,
	"aggregate":        aggregateTarget,
	"renameCollection": renamed,
	"bulkWrite":        nsInfo,
	"dropDatabase":     func(e *event.CommandStartedEvent) []string { return []string{e.DatabaseName + "."} },
	"applyOps":         func(*event.CommandStartedEvent) []string { return everything },
	"commitTransaction": func(*event.CommandStartedEvent) []string {
		return nil // handled through the session's transaction
	},
	"abortTransaction": func(*event.CommandStartedEvent) []string { return nil },
}

// dataOnly are the write commands that change documents only, never a
// collection itself (its existence, name or options).
var dataOnly = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true, "findandmodify": true, "bulkWrite": true,
}

// everything stands for every namespace (an empty database and
// collection, which Invalidate takes for everything).
var everything = []string{"."}

type pendingKey struct {
	conn string
	req  int64
}

type pendingWrite struct {
	ns       []string
	stmts    []Stmt // the statements, when the rules can read them (ns has one namespace)
	txn      string // "lsid/txnNumber" of a transaction's write or commit
	command  string
	deadline time.Time // from maxTimeMS; zero if none
	flight   *Flight   // from Started to the reply
	// preImage: a findAndModify whose reply returns the document before
	// the write, whole (new: false, no fields): the statement's pre-image.
	preImage bool
	// unacked: sent with an unacknowledged write concern (w: 0): its
	// "reply" says nothing of what it did or when.
	unacked bool
}

type observer struct {
	mu      sync.Mutex
	pending map[pendingKey]pendingWrite
	txns    map[string]map[string]struct{} // transaction → namespaces written
	// readers are, by server address, the clients whose cached loads this
	// monitor saw sent there: a write sent to the same server is to their
	// deployment, so the documents they stored are facts about it.
	readers map[string][]*mongo.Client
}

// serverOf returns the server address of a connection ID ("host:port[-n]").
func serverOf(connID string) string {
	addr, _, _ := strings.Cut(connID, "[")
	return addr
}

// learn records that cl's cached load was sent to the server of e.
func (o *observer) learn(cl *mongo.Client, e *event.CommandStartedEvent) {
	addr := serverOf(e.ConnectionID)
	o.mu.Lock()
	if !slices.Contains(o.readers[addr], cl) {
		o.readers[addr] = append(slices.Clip(o.readers[addr]), cl)
	}
	o.mu.Unlock()
}

func (o *observer) started(ctx context.Context, e *event.CommandStartedEvent) {
	if l := loadOf(ctx); l != nil { // a command of a cached load (aggregate is one too)
		SeenByMonitor(ctx)
		if lags(e.Command) {
			l.lagging.Store(true)
		}
		if l.client != nil {
			o.learn(l.client, e)
		}
	}
	names, ok := writeCommands[e.CommandName]
	if !ok {
		return
	}
	if p := probeOf(ctx); p != nil {
		p.Store(true)
	}
	w := pendingWrite{ns: names(e), command: e.CommandName, unacked: unacknowledged(e.Command)}
	if len(w.ns) == 1 && dataOnly[e.CommandName] {
		// The statements are read only while a cache has entries of the
		// collection (or loads one): otherwise the write is reported
		// collection-wide, as good then and free.
		if db, coll, _ := strings.Cut(w.ns[0], "."); Watched(db, coll) {
			if stmts, ok := commandStmts(e.CommandName, e.Command); ok {
				w.stmts = stmts
			}
		}
	}
	if ms, ok := e.Command.Lookup("maxTimeMS").AsInt64OK(); ok && ms > 0 {
		w.deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	inTxn := false
	if lsid, err := e.Command.LookupErr("lsid"); err == nil {
		if txn, err := e.Command.LookupErr("txnNumber"); err == nil {
			if ac, ok := e.Command.Lookup("autocommit").BooleanOK(); ok && !ac {
				w.txn = string(lsid.Value) + "/" + string(txn.Value)
				inTxn = true
			}
		}
	}
	if inTxn && w.command != "commitTransaction" && w.command != "abortTransaction" {
		// Recorded now: a write's namespaces count whatever its reply, as
		// the commit will apply it if it happened.
		o.mu.Lock()
		set := o.txns[w.txn]
		if set == nil {
			set = map[string]struct{}{}
			o.txns[w.txn] = set
		}
		for _, ns := range w.ns {
			set[ns] = struct{}{}
		}
		o.mu.Unlock()
		return
	}
	if len(w.ns) == 0 && w.txn == "" {
		return
	}
	o.mu.Lock()
	flying := w.ns
	writers := o.readers[serverOf(e.ConnectionID)] // never appended in place: safe to share
	if w.command == "commitTransaction" {
		flying = nil
		for ns := range o.txns[w.txn] {
			flying = append(flying, ns)
		}
	}
	o.mu.Unlock()
	// Until its reply, the write may run at any moment: what it may change
	// is neither served nor stored (see Begin).
	w.flight = &Flight{}
	w.preImage = len(w.stmts) == 1 && returnsPreImage(w.command, e.Command)
	for _, ns := range flying {
		db, coll, _ := strings.Cut(ns, ".")
		ch := Change{DB: db, Coll: coll, Drop: !dataOnly[w.command], Writers: writers}
		if len(flying) == 1 && w.command != "commitTransaction" {
			ch.Stmts, ch.Hold = w.stmts, w.preImage
		}
		ch.Wide = ch.Stmts == nil
		onBus(func(c *Cache) { w.flight.add(c, ch) })
	}
	o.mu.Lock()
	o.pending[pendingKey{e.ConnectionID, e.RequestID}] = w
	o.mu.Unlock()
}

func (o *observer) finished(ctx context.Context, e *event.CommandFinishedEvent, reply bson.Raw, failure error) {
	if _, ok := writeCommands[e.CommandName]; !ok {
		return
	}
	k := pendingKey{e.ConnectionID, e.RequestID}
	o.mu.Lock()
	w, ok := o.pending[k]
	delete(o.pending, k)
	defer w.flight.land() // after the change is applied
	if ok && w.txn != "" {
		switch w.command {
		case "commitTransaction":
			set := o.txns[w.txn]
			if failure == nil {
				delete(o.txns, w.txn)
			}
			// A failed commit may be retried with the same transaction:
			// keep its namespaces, and treat this outcome as unknown.
			for ns := range set {
				w.ns = append(w.ns, ns)
			}
			if failure != nil {
				// Even an answered commit error can hide a commit (the
				// UnknownTransactionCommitResult label): unknown.
				o.mu.Unlock()
				o.apply(ctx, w, true, nil)
				return
			}
		case "abortTransaction":
			delete(o.txns, w.txn)
			w.ns = nil
		}
	}
	o.mu.Unlock()
	if !ok || len(w.ns) == 0 {
		return
	}
	if failure == nil && w.stmts != nil && !w.unacked {
		refineByReply(w.command, w.stmts, reply)
		if w.preImage && !w.stmts[0].Upserted {
			if v, ok := reply.Lookup("value").DocumentOK(); ok {
				w.stmts[0].PreImage = append(bson.Raw(nil), v...) // the reply's buffer is the driver's
			}
		}
	}
	unknown := (failure != nil && outcome.Of(failure) != outcome.Done) || w.unacked
	var images map[*Cache][]bson.Raw
	if !unknown {
		images = w.flight.images()
	}
	o.apply(ctx, w, unknown, images)
}

// returnsPreImage reports whether a write command's reply returns the
// document as it was before the write, whole: a findAndModify without
// new: true and without fields.
func returnsPreImage(name string, cmd bson.Raw) bool {
	if name != "findAndModify" && name != "findandmodify" {
		return false
	}
	if truthy(cmd.Lookup("new")) {
		return false
	}
	if f, err := cmd.LookupErr("fields"); err == nil {
		d, ok := f.DocumentOK()
		if !ok || len(d) > 5 {
			return false // projected: not whole
		}
	}
	return true
}

// apply reports w's change to every live cache: unsettled until its
// deadline when its outcome is unknown, by statement when the rules can
// read them, collection-wide otherwise.
func (o *observer) apply(ctx context.Context, w pendingWrite, unknown bool, images map[*Cache][]bson.Raw) {
	shared := false
	onBus(func(c *Cache) {
		for _, ns := range w.ns {
			db, coll, _ := strings.Cut(ns, ".")
			ch := Change{DB: db, Coll: coll, Unknown: unknown, Deadline: w.deadline, Ctx: ctx, flight: w.flight}
			if len(w.ns) == 1 {
				ch.Stmts, ch.images = w.stmts, images
			}
			ch.Wide = ch.Stmts == nil
			ch.Drop = !dataOnly[w.command]
			c.Apply(ch.own(&shared))
		}
	})
}

// firstValue names the collection in the command's first element, in the
// command's database.
func firstValue(e *event.CommandStartedEvent) []string {
	el, err := e.Command.IndexErr(0)
	if err != nil {
		return nil
	}
	coll, ok := el.Value().StringValueOK()
	if !ok {
		return nil
	}
	return []string{e.DatabaseName + "." + coll}
}

// aggregateTarget names the target of a pipeline ending in $out or $merge.
func aggregateTarget(e *event.CommandStartedEvent) []string {
	stages, ok := e.Command.Lookup("pipeline").ArrayOK()
	if !ok {
		return nil
	}
	d, err := pipeline.Of(e.DatabaseName, stages)
	switch {
	case err != nil:
		return everything // a shape not known here: be safe
	case d.Target == "":
		return nil
	}
	return []string{d.Target}
}

// renamed names both namespaces of a renameCollection ("db.coll" each).
func renamed(e *event.CommandStartedEvent) []string {
	var out []string
	for _, k := range []string{"renameCollection", "to"} {
		if s, ok := e.Command.Lookup(k).StringValueOK(); ok {
			out = append(out, s)
		}
	}
	return out
}

// nsInfo names the namespaces of a client-level bulkWrite.
func nsInfo(e *event.CommandStartedEvent) []string {
	arr, ok := e.Command.Lookup("nsInfo").ArrayOK()
	if !ok {
		return everything
	}
	vals, err := arr.Values()
	if err != nil {
		return everything
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return everything
		}
		ns, ok := d.Lookup("ns").StringValueOK()
		if !ok {
			return everything
		}
		out = append(out, ns)
	}
	return out
}

type loadingKey struct{}

// load is a cached load as the write observer of its client sees its
// commands.
type load struct {
	client *mongo.Client // the client it reads through (nil: not known)
	// lagging: a command of the load asked for a read concern or a read
	// preference whose result can lag this process's own writes (see
	// lags): the result must not be stored.
	lagging atomic.Bool
	// observed: a monitor of the bus saw a command of the load, so the
	// raw writes and transactions of its client reach the bus too.
	observed atomic.Bool
}

// loading marks ctx as the context of a cached load through cl, for the
// write observer of cl's client to learn which servers cl reads from, and
// to say whether the load may read data older than this process's writes.
func loading(ctx context.Context, cl *mongo.Client) (context.Context, *load) {
	l := &load{client: cl}
	return context.WithValue(ctx, loadingKey{}, l), l
}

// SeenByMonitor records that a command monitor of the bus saw a command of
// the load of ctx (a context Fetch gives its load), so that its result may
// be stored. The observer calls it for every command it sees; a load that
// builds its documents without the driver (a test's) calls it itself.
func SeenByMonitor(ctx context.Context) {
	if l := loadOf(ctx); l != nil {
		l.observed.Store(true)
	}
}

func loadOf(ctx context.Context) *load {
	l, _ := ctx.Value(loadingKey{}).(*load)
	return l
}

// lags reports whether a read command may return data older than a write
// this process made before it: a majority or snapshot read concern (a w:1
// write returns before it is majority-committed), or a read preference
// that may pick a secondary.
func lags(cmd bson.Raw) bool {
	if lvl, ok := cmd.Lookup("readConcern", "level").StringValueOK(); ok && (lvl == "majority" || lvl == "snapshot") {
		return true
	}
	if mode, ok := cmd.Lookup("$readPreference", "mode").StringValueOK(); ok && mode != "primary" {
		return true
	}
	return false
}

type probeKey struct{}

// Probe marks ctx, the context of a write odm leaves to the observer (one
// inside a transaction, invalidated at commit), so that seen reports
// whether a monitor of the bus saw it: if none did, its client has no
// observer, and nothing will see the commit either.
func Probe(ctx context.Context) (_ context.Context, seen *atomic.Bool) {
	seen = new(atomic.Bool)
	return context.WithValue(ctx, probeKey{}, seen), seen
}

func probeOf(ctx context.Context) *atomic.Bool {
	p, _ := ctx.Value(probeKey{}).(*atomic.Bool)
	return p
}

// unacknowledged reports whether a command is sent with an unacknowledged
// write concern: w is 0 and j is not true (as the driver's
// WriteConcern.Acknowledged says).
func unacknowledged(cmd bson.Raw) bool {
	wc, ok := cmd.Lookup("writeConcern").DocumentOK()
	if !ok {
		return false
	}
	w, ok := wc.Lookup("w").AsInt64OK()
	if !ok || w != 0 {
		return false
	}
	j, _ := wc.Lookup("j").BooleanOK()
	return !j
}

type handledKey struct{}

// Handled marks ctx as the context of a write that odm reports to the
// caches itself (Apply): the observer leaves its commands alone, so that
// each write is invalidated, and counted, once. A write inside a
// transaction must not be marked: the observer invalidates it at commit.
// unacked reports whether a monitor of the bus saw the write sent with an
// unacknowledged write concern (w: 0, without j): no reply then says what
// it did or when, so odm reports it as a write of unknown outcome (the
// driver does not let odm read a collection's write concern). One context
// value carries both: this is on every write.
func Handled(ctx context.Context) (_ context.Context, unacked *atomic.Bool) {
	unacked = new(atomic.Bool)
	return context.WithValue(ctx, handledKey{}, unacked), unacked
}

func isHandled(ctx context.Context) bool { return unackedOf(ctx) != nil }

// unackedOf returns the flag Handled put in ctx, or nil.
func unackedOf(ctx context.Context) *atomic.Bool {
	f, _ := ctx.Value(handledKey{}).(*atomic.Bool)
	return f
}
