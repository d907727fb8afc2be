package cachecore

import (
	"context"
	"encoding/binary"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/internal/match"
)

// Change is what one write may have changed in one collection, as odm and
// the write observer report it (and, in another process, a coherence
// event): its statements, with what the server's reply said of them.
type Change struct {
	DB, Coll string
	// Stmts are the write's statements. None, or Wide, means anything in
	// the collection may have changed (a drop, a rename, a command the
	// rules do not read).
	Stmts []Stmt
	Wide  bool
	// Drop: the collection itself may have changed (dropped, created,
	// renamed, its options modified), not only its documents: what the
	// cache knows of it (Shape) is asked again. Drop implies Wide.
	Drop bool
	// Unknown: the write was sent and its reply is missing; it may still
	// be running until Deadline (zero: no deadline).
	Unknown  bool
	Deadline time.Time
	// Writers are the clients whose reads may stand for the writer's: the
	// writer's own client (odm), or the clients whose cached loads went to
	// the server the write was sent to (the write observer learns them).
	// The rules judge a write by the cached copy of a document (its image)
	// only when a load through one of these clients stored it: a cache
	// shared by clients of two deployments holds documents of both under
	// one namespace, and only the writer's deployment's are facts about
	// what it changes (TestImagesAreTheWritersDeployments). Nil: no image.
	Writers []*mongo.Client

	// Hold: the writer asks the server for the statement's pre-image
	// (Stmt.PreImage) when Begin holds an entry (see Flight.Held). Only
	// for a change of one statement.
	Hold bool

	// images are the images (see Stmt) each cache's part of the write's
	// flight still held at its end, by statement index: each cache's
	// rules read its own only.
	images map[*Cache][]bson.Raw

	// Ctx is the writer's context (nil: none), given to a tracer's Write;
	// flight, the write's flight, whose Begin a trace counts in.
	Ctx    context.Context
	flight *Flight
}

// Op is what a statement does.
type Op uint8

// The statements.
const (
	OpInsert Op = iota + 1
	OpUpdate
	OpReplace
	OpDelete
)

// Stmt is one statement of a write.
type Stmt struct {
	Op Op
	// Doc is the inserted document (OpInsert) or the replacement
	// (OpReplace, which may lack the _id it keeps). DocFunc encodes it
	// when Doc is nil: the cache calls it only when a rule needs the
	// document, before the write returns.
	Doc     bson.Raw
	DocFunc func() (bson.Raw, error)
	// Filter selects the documents of an update, replacement or delete.
	Filter bson.Raw
	// Update is an update's operators (a document) or pipeline (an array).
	Update       bson.RawValue
	Multi        bool
	Upsert       bool
	ArrayFilters bool // the update has arrayFilters: positional paths are cut anyway
	// Collation: the statement compares strings by a collation other than
	// the simple one.
	Collation bool

	// From the reply, when it came:
	// NoChange: the server says the statement changed nothing (matched or
	// modified nothing, deleted nothing, and inserted nothing).
	NoChange bool
	// Upserted: an upsert inserted a document, whose _id is UpsertedID
	// (zero Type when not reported). NotUpserted: the reply says no
	// document was inserted.
	Upserted, NotUpserted bool
	UpsertedID            bson.RawValue
	// PreImage is the document the statement changed, as it was right
	// before, returned by the server atomically with the write (a
	// findAndModify with new: false): a fact about the write, whatever
	// other writes and loads are doing. PreImageFields are the top-level
	// fields it holds (it was projected to them), nil when it is whole.
	// Nil PreImage: none (not asked for, or nothing matched).
	PreImage       bson.Raw
	PreImageFields []string

	// What the cache adds to its own copy (each cache on the bus has one):
	// never set by the writer.
	stmtState
}

// stmtState is the cache-private half of a Stmt: the image Begin found
// for it and what the rules derived from it.
type stmtState struct {
	// image is the one document the statement changes, as it was when the
	// write began: set by Begin when the statement names one _id and a
	// valid entry holds that document whole, and kept only while no other
	// write begins or is applied in the collection (so it is the document
	// as the server has it right before this write runs). The rules read
	// in it the fields the write does not touch.
	image bson.Raw
	// imageFields are the top-level fields image holds (a pre-image
	// projected to them); nil: it is the whole document. The rules judge
	// an entry by image only when it holds every field the entry reads.
	imageFields []string
	// post is the document after an update, as match.Apply computes it
	// from image (nil when it cannot).
	post bson.Raw
	// served: image is the server's pre-image (PreImage), not a cached
	// copy: post is then a fact about the document the write left.
	served bool
	// after is what an update, with the fields of image it leaves as they
	// are, determines of the document it changes: prepared by the first
	// decision that needs it (under the space's mu, as every decision),
	// then read by the others; setImage clears it.
	after *match.After

	// Derived by the rules, once (not for inserts, which the rules read
	// whole).
	derived bool
	*derivation
}

// derivation is what the rules read from an update, replacement or
// delete.
type derivation struct {
	ids      []idKey // the _ids the statement is confined to
	idsKnown bool
	w        *match.Filter // Filter compiled; nil when not analysable
	u        match.Update
	ui       match.Update // an upsert's update as it applies to the document it inserts
}

// derive derives every statement of stmts (under mu), when the cache takes
// its copy of a write: the rules (decide) then only read them.
func (sp *space) derive(stmts []Stmt) {
	simple := sp.simple.Load()
	for i := range stmts {
		stmts[i].derive(simple)
	}
}

// derive reads what the rules need from the statement.
func (s *Stmt) derive(simple bool) {
	if s.derived {
		return
	}
	s.derived = true
	opts := match.Options{SimpleStrings: simple && !s.Collation}
	if s.Op == OpInsert {
		return // the rules read an inserted document whole
	}
	s.derivation = &derivation{}
	if s.Filter != nil {
		s.ids, s.idsKnown = filterIDs(s.Filter, opts.SimpleStrings)
		if w, err := match.Compile(s.Filter, opts); err == nil {
			s.w = w
		}
	}
	switch s.Op {
	case OpUpdate:
		s.u = match.AnalyzeUpdate(s.Update)
		if s.Upsert {
			s.ui = match.AnalyzeUpsert(s.Update)
		}
	case OpReplace:
		s.u = match.Update{All: true}
	}
}

// entering returns an insert's document as it enters the collection, or
// nil when that is not known: not encoded, or without an _id (the server
// or the driver assigns one the rules cannot see; TestInsertWithoutID).
func (s *Stmt) entering() bson.Raw {
	doc := s.doc()
	if doc == nil {
		return nil
	}
	if _, err := doc.LookupErr("_id"); err != nil {
		return nil
	}
	return doc
}

// doc returns the statement's document, encoding it if needed.
func (s *Stmt) doc() bson.Raw {
	if s.Doc == nil && s.DocFunc != nil {
		if d, err := s.DocFunc(); err == nil {
			s.Doc = d
		}
		s.DocFunc = nil
	}
	return s.Doc
}

// idKey is an _id as the rules compare ids: equal _ids have equal keys
// (numbers by value, across types). Only ids whose equality cannot depend
// on a collation take part: strings only under the simple collation.
type idKey string

func keyOfID(v bson.RawValue, simpleStrings bool) (idKey, bool) {
	var buf [24]byte
	b, ok := appendIDKey(buf[:0], v, simpleStrings)
	return idKey(b), ok
}

// appendIDKey appends the key of an _id (see idKey) to b.
func appendIDKey(b []byte, v bson.RawValue, simpleStrings bool) ([]byte, bool) {
	switch v.Type {
	case bson.TypeObjectID:
		oid, ok := v.ObjectIDOK()
		return append(append(b, 7), oid[:]...), ok
	case bson.TypeString:
		s, ok := v.StringValueOK()
		return append(append(b, 2), s...), ok && simpleStrings
	case bson.TypeBinary:
		st, data, ok := v.BinaryOK()
		return append(append(b, 5, st), data...), ok
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		f, ok := v.AsFloat64OK()
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return b, false
		}
		if v.Type == bson.TypeInt64 {
			if i := v.Int64(); f >= 9.223372036854775807e18 || int64(f) != i {
				// Not a double exactly: no double equals it, so it is
				// keyed as the integer, and meets only equal int64s.
				return binary.LittleEndian.AppendUint64(append(b, 18), uint64(i)), true
			}
		}
		if f == 0 {
			f = 0 // -0 equals 0
		}
		return binary.LittleEndian.AppendUint64(append(b, 1), math.Float64bits(f)), true
	}
	return b, false
}

// filterIDs returns the _ids a filter confines its matches to: a top-level
// {_id: v}, {_id: {$eq: v}} or {_id: {$in: [...]}}, with or without other
// conditions (which only narrow them). ok is false otherwise.
func filterIDs(filter bson.Raw, simpleStrings bool) ([]idKey, bool) {
	v, err := filter.LookupErr("_id")
	if err != nil {
		return nil, false
	}
	if k, ok := keyOfID(v, simpleStrings); ok {
		return []idKey{k}, true
	}
	d, ok := v.DocumentOK()
	if !ok {
		return nil, false
	}
	elems, err := d.Elements()
	if err != nil || len(elems) != 1 {
		return nil, false
	}
	switch elems[0].Key() {
	case "$eq":
		k, ok := keyOfID(elems[0].Value(), simpleStrings)
		return []idKey{k}, ok
	case "$in":
		arr, ok := elems[0].Value().ArrayOK()
		if !ok {
			return nil, false
		}
		vals, err := arr.Values()
		if err != nil {
			return nil, false
		}
		out := make([]idKey, 0, len(vals))
		for _, x := range vals {
			k, ok := keyOfID(x, simpleStrings)
			if !ok {
				return nil, false
			}
			out = append(out, k)
		}
		return out, true
	}
	return nil, false
}
