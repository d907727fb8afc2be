package cachecore

import (
	"bytes"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/match"
)

// rule is why a write invalidated an entry (Stats counts each).
type rule uint8

const (
	keep      rule = iota
	ruleID         // the write's _ids are among the result's documents
	ruleMatch      // a document the write inserts, replaces or selects matches the entry
	rulePath       // the write changes a path the entry reads, and can make a document enter it
	ruleWide       // the entry or the write is outside the rules: collection-wide
)

// decide is the one decision of the rules, for local writes, log events
// and change events alike: can statement s change the result of entry d?
// Sound before precise: whatever it cannot decide, it invalidates. It
// reads s and d and changes neither (but for preparing s.after, once): s
// was derived when the cache took its copy of the write (space.derive). The rules, in the order they apply:
//
//	entry outside the rules (no compiled filter)   → wide
//	the reply says the statement changed nothing   → keep
//	insert (or an upsert's new document):
//	  matches the filter, and enters a full limited
//	  sorted result only if it sorts before its last → match, else keep
//	delete, find with known _ids:
//	  by _id: one of them → id; by filter: one of
//	  the result's documents matches → match        → else keep
//	delete, count or aggregation: the image (the
//	  document as it was) matches → match; no image  → wide
//	update or replace, find with known _ids:
//	  selects a result document (as delete)         → id, match
//	  else a replacement that may enter (as insert),
//	  a pipeline, or a touched filter/sort path
//	  whose document may match afterwards and sort
//	  before the last                               → path
//	  else an upsert that may insert                 → match, else keep
//	update or replace, count, aggregation or a find
//	without ids: the image matches neither before
//	  nor after → keep; a replacement, a pipeline or
//	  a find → wide; a touched path the entry reads  → path
//
// docs/caching.md, "Precise invalidation", states them for users. Every
// entry a rule can invalidate must be named by the index walk (walk.go),
// which TestIndexNamesEveryAffectedEntry checks on random entries and
// writes.
func decide(s *Stmt, d *dep) rule {
	if d.filter == nil {
		return ruleWide
	}
	if s.NoChange {
		return keep
	}
	if d.reflects(s) {
		return keep
	}
	switch s.Op {
	case OpInsert:
		return d.inserted(s.entering(), nil)
	case OpDelete:
		if d.kind != kindFind || d.ids == nil {
			if img := s.imageFor(d); img != nil { // the document deleted, as it was
				if d.filter.Match(img) == match.No {
					return keep
				}
				return ruleMatch
			}
			return ruleWide // a count's or an aggregation's document: which one, the rules cannot tell
		}
		return d.selected(s)
	case OpReplace, OpUpdate:
		return d.updated(s)
	}
	return ruleWide
}

// reflects reports whether a find's result already holds, whole and byte
// for byte, the one document statement s leaves behind (inserted, the
// replacement, or an update's document computed from the server's
// pre-image): its load read the collection after the write. Then the
// write changes nothing in it. Sound whatever the order writes are
// applied in (another process's event arrives after the reads that see
// its write): had the load read the document before the write, the
// document would have been as it was before it, which differs from what
// the write left (or the write changed nothing); and any other write that
// changed the document after the load is judged by its own statement, the
// first of them against the document as the result holds it.
//
// An update by one _id that, applied to the result's own copy of its
// document, changes nothing in it (match.Apply: a $set of the values the
// copy holds) is kept for the same reason: loaded before the write, the
// copy was the document the write found (or a write between them, judged
// by its own statement, changed it), and the write changed nothing;
// loaded after, the copy is the write's result.
func (d *dep) reflects(s *Stmt) bool {
	if d.kind != kindFind || d.ids == nil || !d.proj.KeepsAll() {
		return false
	}
	if s.Op == OpUpdate && s.idsKnown && len(s.ids) == 1 && !s.u.All && d.hasID(s.ids[0]) == match.Yes {
		if doc := d.docWithID(s.ids[0]); doc != nil {
			if _, modified, ok := match.Apply(doc, s.Update); ok && !modified {
				return true
			}
		}
	}
	var after bson.Raw
	switch s.Op {
	case OpInsert:
		after = s.entering()
	case OpReplace:
		after = s.replacement()
	case OpUpdate:
		if s.served && s.imageFields == nil {
			after = s.post
		}
	}
	if after == nil {
		return false
	}
	id, err := after.LookupErr("_id")
	if err != nil {
		return false
	}
	k, ok := keyOfID(id, d.opts.SimpleStrings)
	if !ok || d.hasID(k) != match.Yes || (s.Op != OpInsert && !(s.idsKnown && len(s.ids) == 1 && s.ids[0] == k)) {
		return false
	}
	doc := d.docWithID(k)
	return doc != nil && bytes.Equal(doc, after)
}

// inserted decides for a document that enters the collection (an insert,
// a replacement's new content, an upsert's document); extra are values the
// document is known to hold besides doc (nil doc: only those).
func (d *dep) inserted(doc bson.Raw, extra map[string]bson.RawValue) rule {
	if doc == nil {
		return ruleMatch // not known: as if it matched
	}
	if d.filter.Match(doc) == match.No {
		return keep
	}
	if d.kind == kindFind && d.full {
		// It enters a full, limited result only if it sorts before the
		// last document there.
		for _, p := range d.spaths {
			if !d.proj.Keeps(p) {
				return ruleMatch
			}
		}
		if d.sort.Before(doc, d.last, d.opts) == match.No {
			return keep
		}
	}
	return ruleMatch
}

// selected decides whether a statement's documents (by _id or by filter)
// are among a find's result.
func (d *dep) selected(s *Stmt) rule {
	if s.idsKnown {
		res := keep
		for _, id := range s.ids {
			switch d.hasID(id) {
			case match.Yes:
				return ruleID
			case match.Maybe:
				res = ruleWide
			}
		}
		return res
	}
	if len(d.docs) == 0 {
		return keep
	}
	w := s.w
	if w == nil {
		return ruleWide // a filter the rules cannot read: it may select any document
	}
	// Fast refusal: the write requires a field to equal a value, and every
	// document here holds another, non-array value there.
	for f, v := range w.EqualityFields() {
		dv, ok := d.eq[f]
		if !ok || !d.scalars[f] {
			continue
		}
		a, ok1 := valueKey(v, d.opts.SimpleStrings)
		b, ok2 := valueKey(dv, d.opts.SimpleStrings)
		if ok1 && ok2 && a != b {
			return keep
		}
	}
	for _, p := range w.Paths() {
		if !d.proj.Keeps(p) {
			return ruleMatch // the result lacks what the filter reads: assume it matches
		}
	}
	for _, doc := range d.docs {
		if w.Match(doc) != match.No {
			return ruleMatch
		}
	}
	return keep
}

// updated decides for an update or a replacement.
func (d *dep) updated(s *Stmt) rule {
	if d.kind != kindFind || d.ids == nil {
		// No ids: a document may enter, leave or change in the output
		// whenever the write changes a path the entry reads; unless the
		// document, as it was and as it is after, is outside the filter.
		if img := s.imageFor(d); img != nil && d.filter.Match(img) == match.No && d.afterwards(s) == match.No {
			return keep
		}
		if s.Op == OpReplace || s.u.All || d.outAll || d.kind == kindFind {
			return ruleWide
		}
		if touches(s.u.Touched, d.fpaths) || touches(s.u.Touched, d.outPaths) {
			return rulePath
		}
		return d.upserted(s)
	}
	if r := d.selected(s); r != keep {
		return r
	}
	// The documents it changes are not in the result: can one enter?
	switch {
	case s.Op == OpReplace:
		if r := d.inserted(s.replacement(), nil); r != keep {
			return r
		}
	case s.u.All:
		return rulePath // a pipeline: any path may change
	case touches(s.u.Touched, d.fpaths) || (d.full && touches(s.u.Touched, d.spaths)):
		if d.afterwards(s) != match.No && !d.sortsAfterLast(s) {
			return rulePath
		}
	}
	return d.upserted(s)
}

// afterwards says whether the document an update changes can match the
// entry's filter afterwards: from what the update sets, and, with an
// image, from the fields of the document it does not touch.
func (d *dep) afterwards(s *Stmt) match.Tri {
	if s.Op == OpReplace {
		doc := s.replacement()
		if doc == nil {
			return match.Maybe
		}
		return d.filter.Match(doc)
	}
	if post := s.postFor(d); post != nil {
		return d.filter.Match(post)
	}
	if s.after == nil {
		s.after = match.PrepareAfter(s.u, untouched(s)) // once per statement, not per entry
	}
	return d.filter.CanMatch(s.after)
}

// imageFor returns the statement's image when it holds every field d
// reads (a pre-image may be projected), or nil.
func (s *Stmt) imageFor(d *dep) bson.Raw {
	if s.image == nil || s.imageFields == nil || d.readsOnly(s.imageFields) {
		return s.image
	}
	return nil
}

// postFor is imageFor for the document after an update.
func (s *Stmt) postFor(d *dep) bson.Raw {
	if s.post == nil || s.imageFields == nil || d.readsOnly(s.imageFields) {
		return s.post
	}
	return nil
}

// readsOnly reports whether every path d's filter and sort read lies
// under one of fields.
func (d *dep) readsOnly(fields []string) bool {
	for _, group := range [][]string{d.fpaths, d.spaths} {
		for _, p := range group {
			if !slices.Contains(fields, match.Field(p)) {
				return false
			}
		}
	}
	return true
}

// setImage sets the statement's image (fields: the top-level fields it
// holds, nil for all), and the document after it when the statement is
// an update match.Apply reproduces. s is derived.
func (s *Stmt) setImage(img bson.Raw, fields []string) {
	s.image, s.imageFields, s.post, s.after, s.served = img, fields, nil, nil, false
	if img == nil || s.Op != OpUpdate || s.derivation == nil || s.u.All {
		return
	}
	for _, t := range s.u.Touched {
		if fields != nil && !slices.Contains(fields, match.Field(t)) {
			return // the image lacks what the update changes
		}
	}
	if post, _, ok := match.Apply(img, s.Update); ok {
		s.post = post
	}
}

// untouched returns the top-level fields of the statement's image that its
// update leaves as they are (nil without an image).
func untouched(s *Stmt) map[string]bson.RawValue {
	if s.image == nil || s.u.All { // a projected image: only the fields it holds are facts
		return nil
	}
	elems, err := s.image.Elements()
	if err != nil {
		return nil
	}
	out := make(map[string]bson.RawValue, len(elems))
	for _, el := range elems {
		f := el.Key()
		if s.u.Unset[f] || touches(s.u.Touched, []string{f}) {
			continue
		}
		out[f] = el.Value()
	}
	return out
}

// sortsAfterLast reports whether the document an update changes, which
// may match a full limited result afterwards, still cannot enter it: by
// the document after the update (computed from its image), or, when the
// update leaves its sort fields as they are, by its image, it sorts after
// the result's last document.
func (d *dep) sortsAfterLast(s *Stmt) bool {
	if !d.full || s.Op != OpUpdate {
		return false
	}
	for _, p := range d.spaths {
		if !d.proj.Keeps(p) {
			return false
		}
	}
	if post := s.postFor(d); post != nil { // its sort key after the update, computed
		return d.sort.Before(post, d.last, d.opts) == match.No
	}
	img := s.imageFor(d)
	if img == nil || touches(s.u.Touched, d.spaths) {
		return false
	}
	return d.sort.Before(img, d.last, d.opts) == match.No
}

// upserted decides for the document an upsert may insert.
func (d *dep) upserted(s *Stmt) rule {
	if !s.Upsert || s.NotUpserted || s.image != nil { // with an image, the document exists: no insert
		return keep
	}
	if s.Op == OpReplace {
		return d.inserted(s.replacement(), nil)
	}
	if d.kind != kindFind {
		return ruleMatch
	}
	// The inserted document: the filter's equalities, then the update
	// ($setOnInsert included) applied to them. A path the update touches is
	// the update's, whatever the filter said of it
	// (TestUpsertSetsFieldsOfItsFilter).
	extra := map[string]bson.RawValue{}
	if s.w != nil {
		for f, v := range s.w.EqualityFields() {
			if !s.ui.All && !touches(s.ui.Touched, []string{f}) {
				extra[f] = v
			}
		}
	}
	if s.UpsertedID.Type != 0 {
		extra["_id"] = s.UpsertedID
	}
	if d.filter.CanMatchAfter(s.ui, extra) == match.No {
		return keep
	}
	return ruleMatch
}

// replacement is a replacement's document with the _id it keeps, when the
// statement selects one document by _id.
func (s *Stmt) replacement() bson.Raw {
	doc := s.doc()
	if doc == nil {
		return nil
	}
	if _, err := doc.LookupErr("_id"); err == nil {
		return doc
	}
	id := s.UpsertedID
	if id.Type == 0 && s.Filter != nil {
		id, _ = s.Filter.LookupErr("_id")
		if _, isOp := id.DocumentOK(); isOp {
			return nil // {_id: {$in: …}}: which one, not known
		}
	}
	if id.Type == 0 {
		return nil
	}
	out := make([]byte, 0, len(doc)+len(id.Value)+8)
	out = append(out, 0, 0, 0, 0, byte(id.Type), '_', 'i', 'd', 0)
	out = append(out, id.Value...)
	out = append(out, doc[4:]...)
	out[0], out[1], out[2], out[3] = byte(len(out)), byte(len(out)>>8), byte(len(out)>>16), byte(len(out)>>24)
	return out
}

// touches reports whether a path the write touches overlaps one of paths.
func touches(touched, paths []string) bool {
	for _, t := range touched {
		for _, p := range paths {
			if match.Overlaps(t, p) {
				return true
			}
		}
	}
	return false
}
