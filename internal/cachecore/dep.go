package cachecore

import (
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/match"
	"github.com/databridge-go/databridge/internal/pipeline"
)

// kind is what a cached result is.
type kind uint8

const (
	kindFind  kind = iota // documents of the collection: their _ids are known
	kindCount             // a number of matching documents
	kindAgg               // an aggregation's output
)

// dep is what one cached entry depends on: registered in its collection's
// indexes while the entry may be served, so that a write finds the entries
// it may affect without looking at the others.
type dep struct {
	sp     *space
	key    string
	kind   kind
	client *mongo.Client // Key.Client: whose load stored it

	// filter is the query's filter (an aggregation's leading $match, or
	// every document): nil when the query is outside the analysable
	// forms, and then every write of the collection invalidates it.
	filter *match.Filter
	opts   match.Options
	fpaths []string // the paths the filter reads

	// finds
	sort    match.Sort
	spaths  []string // the sort's paths when the result is limited and full
	full    bool     // limited, and the result holds the limit: an insert enters only if it sorts before last
	last    bson.Raw
	proj    match.Projection
	docs    []bson.Raw
	ids     map[idKey]struct{} // nil when the result's _ids are not known (projected out)
	scalars map[string]bool    // equality field → every document holds a non-array value there

	// aggregations: the paths the output reads beyond the filter, or all
	outPaths []string
	outAll   bool

	eq       map[string]bson.RawValue // top-level equality fields of the filter
	groupKey string                   // the insert index's group (sorted equality fields)
	tuple    string                   // and this dep's values in it

	// validity: read without locks on every hit.
	invalid atomic.Bool
	held    atomic.Int32 // writes in flight holding it (see Change.Hold): not served until they end
	epoch   uint64       // the cache's InvalidateAll count when its load began
	wide    uint64       // its collection's collection-wide invalidations then
	seq0    uint64       // its collection's writes applied then
	also    []alsoDep

	indexed uint64 // the space's index generation it was registered in (0: not registered)

	why     Wide      // why it is under the collection-wide rule (filter nil), for Stats and traces
	expires time.Time // when its entry's TTL runs out (set when stored)
}

// alsoDep is another collection an entry reads ($lookup, $unionWith, …):
// any write applied to it invalidates the entry.
type alsoDep struct {
	sp  *space
	seq uint64
}

// valid reports whether the entry may be served.
func (d *dep) valid(c *Cache) bool {
	if d.invalid.Load() || d.held.Load() != 0 || d.epoch != c.epoch.Load() || d.wide != d.sp.wide.Load() {
		return false
	}
	for _, a := range d.also {
		if a.seq != a.sp.seq.Load() || a.sp.unsettledNow() {
			return false
		}
	}
	return true
}

// analyse reads, from the query and its result, what the entry depends on.
// A query outside the analysable forms leaves filter nil.
func (d *dep) analyse(q Key, docs []bson.Raw, wideOnly bool) {
	d.docs = docs
	d.opts = match.Options{SimpleStrings: q.Simple}
	d.why = d.wideWhy(q, wideOnly)
	if d.why == WideNone && d.filter == nil {
		d.why = WideFilter
	}
}

// wideWhy analyses the query, and returns why the rules cannot read it
// (WideNone when they can).
func (d *dep) wideWhy(q Key, wideOnly bool) Wide {
	switch {
	case wideOnly:
		return WideOption
	case len(q.Also) > 0:
		return WideJoins
	case q.Hint != nil:
		return WideHint
	case q.Skip != 0:
		return WideSkip
	}
	switch q.Op {
	case "":
		d.kind = kindFind
		return d.analyseFind(q)
	case "count":
		d.kind = kindCount
		if q.Limit != 0 {
			return WideLimit
		}
		d.setFilter(q, q.sent())
	case "aggregate":
		d.kind = kindAgg
		if !d.analyseAggregate(q) {
			return WidePipeline
		}
	}
	return WideNone
}

func (d *dep) setFilter(q Key, filter any) {
	raw, err := q.encode(filter)
	if err != nil {
		return
	}
	if raw == nil {
		raw = emptyDoc
	}
	f, err := match.Compile(raw, d.opts)
	if err != nil {
		return
	}
	d.filter, d.fpaths, d.eq = f, f.Paths(), f.EqualityFields()
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

func (d *dep) analyseFind(q Key) Wide {
	var projRaw bson.Raw
	if q.Projection != nil {
		var err error
		if projRaw, err = q.encode(q.Projection); err != nil {
			return WideFilter
		}
	}
	d.proj = match.CompileProjection(projRaw)
	if q.Sort != nil {
		raw, err := q.encode(q.Sort)
		if err != nil {
			return WideFilter
		}
		s, ok := match.CompileSort(raw)
		if !ok {
			return WideFilter
		}
		d.sort = s
	}
	switch {
	case q.Limit < 0:
		return WideBatch // a single batch: the server may cut it shorter than the limit
	case q.Limit > 0 && int64(len(d.docs)) >= q.Limit && !d.idsWithin(q):
		// Full: which documents the limit keeps is the sort's, when the
		// sort is total; otherwise the server's choice. (A result shorter
		// than its limit holds every matching document: as unlimited.)
		if !d.sort.Total() {
			return WideSort
		}
		d.full = true
		d.spaths = d.sort.Paths()
		d.last = d.docs[len(d.docs)-1]
	}
	d.setFilter(q, q.sent())
	if d.filter == nil {
		return WideFilter
	}
	if d.proj.Keeps("_id") {
		d.ids = make(map[idKey]struct{}, len(d.docs))
		for _, doc := range d.docs {
			id, err := doc.LookupErr("_id")
			k, ok := keyOfID(id, d.opts.SimpleStrings)
			if err != nil || !ok {
				d.ids = nil // an _id the rules cannot compare: by-id writes are matched by filter
				break
			}
			d.ids[k] = struct{}{}
		}
	}
	d.scalars = map[string]bool{}
	for f := range d.eq {
		scalar := d.proj.Keeps(f)
		for _, doc := range d.docs {
			if v, err := doc.LookupErr(f); err != nil || v.Type == bson.TypeArray {
				scalar = false
				break
			}
		}
		d.scalars[f] = scalar
	}
	return WideNone
}

// idsWithin reports whether q's filter confines it to at most q.Limit _ids
// (a FindOne by _id): the limit then cuts nothing.
func (d *dep) idsWithin(q Key) bool {
	raw, err := q.encode(q.sent())
	if err != nil || raw == nil {
		return false
	}
	ids, ok := filterIDs(raw, d.opts.SimpleStrings)
	return ok && int64(len(ids)) <= q.Limit
}

// analyseAggregate reports whether the pipeline is in the forms the rules
// read.
func (d *dep) analyseAggregate(q Key) bool {
	// The pipeline encoded as a value of a document, so that the
	// collection's codecs encode what it holds as the driver does.
	doc, err := q.encode(bson.D{{Key: "p", Value: q.sent()}})
	if err != nil {
		return false
	}
	arr, ok := doc.Lookup("p").ArrayOK()
	if !ok {
		return false
	}
	a, ok := pipeline.Analyse(arr)
	if !ok {
		return false
	}
	d.setFilter(q, a.Match)
	d.outPaths, d.outAll = a.Reads, a.All
	return true
}

// hasID reports whether the result holds the document with that _id;
// Maybe when the result's ids are not known.
func (d *dep) hasID(k idKey) match.Tri {
	if d.ids == nil {
		return match.Maybe
	}
	if _, ok := d.ids[k]; ok {
		return match.Yes
	}
	return match.No
}
