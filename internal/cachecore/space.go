package cachecore

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/match"
)

// space is what the cache knows of one collection: its live entries,
// indexed so that a write looks only at those it may affect, and the
// writes applied while loads were in flight.
type space struct {
	db, coll string
	wide     atomic.Uint64 // collection-wide invalidations; read without mu on every hit
	settle   atomic.Int64  // unix nanoseconds until which an unsettled write may still run; 0 if none
	simple   atomic.Bool   // the collection compares strings by the simple collation (its shape says so)
	shape    atomic.Pointer[shapeAt]
	drops    atomic.Uint64 // Drop changes: the shape is asked again after one
	watch    atomic.Int32  // live entries and loads in flight (written under mu)

	seq atomic.Uint64 // writes applied (written under mu)

	mu       sync.Mutex
	inflight int       // loads between beginLoad and commit
	ring     []applied // writes applied while loads were in flight, oldest first
	stmts    int       // statements in ring
	floor    uint64    // the newest write dropped from the ring while loads were in flight
	gen      uint64    // index generation: a collection-wide invalidation starts afresh
	stamp    uint64    // visit stamp of the write being applied

	flying  []*flying    // writes between Begin and End
	nflying atomic.Int32 // len(flying), read without mu

	deps     set
	byID     map[idKey]set             // _id → finds whose result holds it
	groups   map[string]*group         // the insert index, by sorted equality fields
	eqOnly   map[string]map[string]set // field → value → finds reading the field only by that equality
	readers  map[string]set            // field → entries reading it otherwise
	finds    set                       // finds whose result's ids are known
	countish set                       // counts and aggregations: a delete or replacement may change them
	opaque   set                       // results without known ids, or outputs of whole documents
	wild     set                       // unanalysable: every write invalidates them
	visited  map[*dep]uint64           // stamp of the last write that looked at each

	watchers map[*Watch]struct{} // live queries of the collection (watch.go)
}

// shapeAt is a collection's shape as known after a number of Drop changes.
type shapeAt struct {
	Shape
	drops uint64
}

type set map[*dep]struct{}

func (s set) add(d *dep) { s[d] = struct{}{} }

func addTo[K comparable](m map[K]set, k K, d *dep) {
	s, ok := m[k]
	if !ok {
		s = set{}
		m[k] = s
	}
	s.add(d)
}

func removeFrom[K comparable](m map[K]set, k K, d *dep) {
	if s, ok := m[k]; ok {
		delete(s, d)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// group is the insert index of the entries whose filters require the same
// top-level fields to equal scalar values: an inserted document is a
// candidate of the entries keyed by its own values of those fields.
type group struct {
	fields  []string
	byTuple map[string]set
}

// applied is a write applied while a load was in flight.
type applied struct {
	seq uint64
	ch  *Change // nil: a collection-wide invalidation
}

const (
	ringChanges = 1024
	ringStmts   = 16 << 10
)

func newSpace(db, coll string) *space {
	sp := &space{db: db, coll: coll}
	sp.reset()
	return sp
}

// reset empties the indexes (a collection-wide invalidation: every entry
// is invalid through its wide generation).
func (sp *space) reset() {
	sp.gen++
	sp.deps, sp.finds, sp.countish, sp.opaque, sp.wild = set{}, set{}, set{}, set{}, set{}
	sp.byID, sp.groups = map[idKey]set{}, map[string]*group{}
	sp.eqOnly, sp.readers = map[string]map[string]set{}, map[string]set{}
	sp.visited = map[*dep]uint64{}
	sp.recount()
}

// unsettledNow reports whether a write of unknown outcome may still be
// running in the collection.
func (sp *space) unsettledNow() bool {
	s := sp.settle.Load()
	return s != 0 && time.Now().UnixNano() < s
}

// valueKey is the index key of an equality operand or a document's value:
// equal values (numbers across types) have equal keys.
func valueKey(v bson.RawValue, simple bool) (string, bool) {
	var buf [24]byte
	b, ok := appendValueKey(buf[:0], v, simple)
	return string(b), ok
}

// appendValueKey appends the key of a value (see valueKey) to b.
func appendValueKey(b []byte, v bson.RawValue, simple bool) ([]byte, bool) {
	switch v.Type {
	case bson.TypeBoolean:
		t, ok := v.BooleanOK()
		if t {
			return append(b, 8, 1), ok
		}
		return append(b, 8, 0), ok
	case bson.TypeDateTime:
		t, ok := v.DateTimeOK()
		return binary.LittleEndian.AppendUint64(append(b, 9), uint64(t)), ok
	}
	return appendIDKey(b, v, simple)
}

// eqFields returns the dep's equality fields the insert index can key, in
// order, with their keys.
func (d *dep) eqFields() (fields, keys []string) {
	for f, v := range d.eq {
		if _, ok := valueKey(v, d.opts.SimpleStrings); ok {
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	for _, f := range fields {
		k, _ := valueKey(d.eq[f], d.opts.SimpleStrings)
		keys = append(keys, k)
	}
	return fields, keys
}

// eqOnlyField reports whether the dep reads field f only through its
// top-level equality (so that an update setting f to another value can
// never make a document enter it).
func (d *dep) eqOnlyField(f string) bool {
	if d.kind != kindFind || d.ids == nil {
		return false
	}
	if _, ok := valueKey(d.eq[f], d.opts.SimpleStrings); !ok {
		return false
	}
	n := 0
	for _, p := range d.fpaths {
		if match.Field(p) == f {
			if n++; n > 1 || p != f {
				return false
			}
		}
	}
	for _, p := range d.spaths {
		if match.Field(p) == f {
			return false
		}
	}
	return true
}

// recount updates watch (under mu).
func (sp *space) recount() { sp.watch.Store(int32(sp.inflight + len(sp.deps))) }

// register adds d to the indexes (under mu).
func (sp *space) register(d *dep) {
	sp.deps.add(d)
	defer sp.recount()
	d.indexed = sp.gen
	if d.filter == nil {
		sp.wild.add(d)
		return
	}
	switch {
	case d.kind == kindFind && d.ids != nil:
		sp.finds.add(d)
		for id := range d.ids {
			addTo(sp.byID, id, d)
		}
	case d.kind == kindFind || d.outAll:
		sp.opaque.add(d)
	}
	if d.kind != kindFind {
		sp.countish.add(d)
	}
	fields, keys := d.eqFields()
	d.groupKey, d.tuple = strings.Join(fields, "\x00"), strings.Join(keys, "\x00")
	g, ok := sp.groups[d.groupKey]
	if !ok {
		g = &group{fields: fields, byTuple: map[string]set{}}
		sp.groups[d.groupKey] = g
	}
	addTo(g.byTuple, d.tuple, d)
	for _, f := range d.readFields() {
		if d.eqOnlyField(f) {
			k, _ := valueKey(d.eq[f], d.opts.SimpleStrings)
			m, ok := sp.eqOnly[f]
			if !ok {
				m = map[string]set{}
				sp.eqOnly[f] = m
			}
			addTo(m, k, d)
			continue
		}
		addTo(sp.readers, f, d)
	}
}

// readFields returns the top-level fields d reads: its filter's, its
// sort's when limited and full, its output's.
func (d *dep) readFields() []string {
	var out []string
	for _, group := range [][]string{d.fpaths, d.spaths, d.outPaths} {
		for _, p := range group {
			if f := match.Field(p); !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// unregister removes d from the indexes (under mu), if it is still there.
func (sp *space) unregister(d *dep) {
	if d.indexed != sp.gen {
		return // the indexes were reset, or d was never registered
	}
	d.indexed = 0
	delete(sp.deps, d)
	defer sp.recount()
	delete(sp.visited, d)
	delete(sp.wild, d)
	delete(sp.finds, d)
	delete(sp.countish, d)
	delete(sp.opaque, d)
	for id := range d.ids {
		removeFrom(sp.byID, id, d)
	}
	if g, ok := sp.groups[d.groupKey]; ok {
		removeFrom(g.byTuple, d.tuple, d)
		if len(g.byTuple) == 0 {
			delete(sp.groups, d.groupKey)
		}
	}
	for _, f := range d.readFields() {
		if m, ok := sp.eqOnly[f]; ok {
			k, _ := valueKey(d.eq[f], d.opts.SimpleStrings)
			removeFrom(m, k, d)
			if len(m) == 0 {
				delete(sp.eqOnly, f)
			}
		}
		removeFrom(sp.readers, f, d)
	}
}

func namespace(db, coll string) string { return db + "." + coll }

// space returns the state of collection db.coll, made on first use. It is
// on every hit: two map loads, no allocation (a "db.coll" key would be
// concatenated on every call).
func (c *Cache) space(db, coll string) *space {
	colls, ok := c.spaces.Load(db)
	if !ok {
		colls, _ = c.spaces.LoadOrStore(db, new(sync.Map))
	}
	m := colls.(*sync.Map)
	if sp, ok := m.Load(coll); ok {
		return sp.(*space)
	}
	sp, _ := m.LoadOrStore(coll, newSpace(db, coll))
	return sp.(*space)
}

// spaceNS is space for a namespace "db.coll".
func (c *Cache) spaceNS(ns string) *space {
	db, coll, _ := strings.Cut(ns, ".")
	return c.space(db, coll)
}

// eachSpace calls f for every collection the cache knows.
func (c *Cache) eachSpace(f func(*space)) {
	c.spaces.Range(func(_, colls any) bool {
		colls.(*sync.Map).Range(func(_, sp any) bool {
			f(sp.(*space))
			return true
		})
		return true
	})
}
