package cachecore

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A write is reported twice: Begin before it is sent, End after its reply
// (or its failure). Between the two the server may run it at any moment,
// so every entry it may change is invalidated at Begin (as by the rules,
// on the statements as sent), and a load that ends meanwhile is stored
// only if the write cannot change its result. Without Begin, a write whose
// reply comes late would leave the cached documents out of date for the
// rules' decision on a later write that the server ran after it: the
// later write would be judged against documents the earlier one had
// already changed (TestWriteAppliedBeforeAnEarlierOne).

// Flight is a write between Begin and End.
type Flight struct {
	parts []flightPart
}

type flightPart struct {
	c  *Cache
	sp *space
	w  *flying
	// A write with Change.Hold that held entries at Begin: the top-level
	// fields the collection's entries read.
	fields []string
}

// flying is a write in flight in one collection of one cache: its
// statements (the cache's own copy), or wide.
type flying struct {
	stmts []Stmt
	wide  bool
	// A write that will carry a pre-image (Change.Hold, and Held said so):
	// hold says so, and held are the entries it holds (neither served nor
	// dropped until End decides them with its pre-image): those Begin
	// would have invalidated, and those loads stored while it flew that
	// it might change (under mu).
	hold bool
	held []*dep
	// t counts what Begin did, when the cache has a tracer.
	t *tally
}

// writing reports whether a write is in flight in the collection.
func (sp *space) writing() bool { return sp.nflying.Load() > 0 }

// add begins ch in c, with c's own copy of the statements (the caller
// refines its own until End, while c's loads read c's copy).
func (f *Flight) add(c *Cache, ch Change) {
	ch.Stmts = slices.Clone(ch.Stmts)
	if p, ok := c.beginWrite(ch); ok {
		f.parts = append(f.parts, p)
	}
}

// Held reports whether Begin held an entry (Change.Hold), or whether a
// cache the flight reached publishes descriptors (another process may hold
// entries the pre-image keeps, and this one cannot know): only then is the
// statement's pre-image worth asking the server for. The writer asks once,
// right after Begin, and sends the write with its pre-image when it says
// so: loads that end while the write flies are then held too.
func (f *Flight) Held() bool {
	held := false
	for _, p := range f.parts {
		p.sp.mu.Lock()
		held = held || len(p.w.held) > 0 || (p.w.hold && p.c.describer != nil)
		p.sp.mu.Unlock()
	}
	for _, p := range f.parts {
		p.sp.mu.Lock()
		p.w.hold = p.w.hold && held
		p.sp.mu.Unlock()
	}
	return held
}

// Fields returns the top-level fields the entries of the collection read,
// in every cache the flight reached, when Begin held an entry: a
// pre-image projected to them (and to what the write itself changes)
// decides every entry it held. It returns nil (the whole document) when a
// cache publishes descriptors: what the other processes' entries read is
// not known here.
func (f *Flight) Fields() []string {
	var out []string
	for _, p := range f.parts {
		if p.c.describer != nil {
			return nil
		}
	}
	for _, p := range f.parts {
		for _, x := range p.fields {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// End applies the write's change, refined by its reply (or Unknown), to
// the caches Begin reached, publishes it, and ends the flight. Caches made
// since Begin get the change too. The entries Begin held are decided with
// the change like every other (by its pre-image, when it carries one),
// then served again unless that invalidated them.
func (f *Flight) End(ch Change) {
	if !ch.Unknown {
		ch.images = f.images()
	}
	ch.flight = f
	Apply(ch)
	f.land()
}

// land removes the flight from the collections it was in, and lets go of
// the entries it held.
func (f *Flight) land() {
	if f == nil {
		return
	}
	for _, p := range f.parts {
		p.sp.mu.Lock()
		if i := slices.Index(p.sp.flying, p.w); i >= 0 {
			p.sp.flying = slices.Delete(p.sp.flying, i, i+1)
			p.sp.nflying.Add(-1)
		}
		for _, d := range p.w.held {
			if d.held.Add(-1) == 0 && d.valid(p.c) {
				p.c.released.Add(1)
			}
		}
		p.sp.mu.Unlock()
	}
}

// beginWrite records a write in flight in this cache, and invalidates the
// entries it may change.
func (c *Cache) beginWrite(ch Change) (flightPart, bool) {
	if ch.Coll == "" {
		return flightPart{}, false // a database or everything: End invalidates every entry
	}
	sp := c.space(ch.DB, ch.Coll)
	w := &flying{stmts: ch.Stmts, wide: ch.Wide || ch.Drop || ch.Unknown || len(ch.Stmts) == 0 || c.wideOnly}
	w.hold = ch.Hold && len(w.stmts) == 1 && !w.wide
	if c.tracer != nil {
		w.t = &tally{}
	}
	sp.mu.Lock()
	sp.derive(w.stmts) // this cache's copy: what the rules read from it, once
	sp.forgetImages()  // what another write in flight read may change now
	if !w.wide && c.source == nil {
		// With a Source, other processes write too, and their writes
		// reach this cache after the server applied them: a cached copy
		// may miss one that came before this write, and a write judged
		// by it, and kept, would stay kept when that write's event, judged
		// by what it carries, arrives
		// (TestLocalWriteInAFleetIsNotJudgedByTheCopy). Only the server's
		// pre-images are facts there.
		sp.images(c, w.stmts, ch.Writers)
	}
	sp.flying = append(sp.flying, w)
	sp.nflying.Add(1)
	if len(sp.deps) == 0 {
		sp.mu.Unlock()
		return flightPart{c: c, sp: sp, w: w}, true
	}
	var stale []string
	switch {
	case w.wide:
		c.byWide.Add(uint64(len(sp.deps)))
		if w.t != nil {
			w.t.byWide += len(sp.deps)
		}
		for d := range sp.deps {
			d.invalid.Store(true)
			stale = append(stale, d.key)
		}
		sp.reset()
	case w.hold:
		stale, w.held = c.decideHolding(sp, &w.stmts[0], w.t)
	default:
		stale = c.decideAll(sp, w.stmts, w.t)
	}
	part := flightPart{c: c, sp: sp, w: w}
	if len(w.held) > 0 {
		part.fields = sp.readFields()
	}
	sp.mu.Unlock()
	c.ristretto(func() {
		for _, k := range stale {
			c.rc.Del(k)
		}
	})
	return part, true
}

// decideHolding is decideAll for the statement of a write that will carry
// its pre-image (Change.Hold): an entry the rules would invalidate for
// want of the document's other values is held instead, unserved until End
// decides it with them. An entry whose documents the statement selects
// by _id, or that is outside the rules, is invalidated now: no pre-image
// can keep it.
func (c *Cache) decideHolding(sp *space, s *Stmt, t *tally) (stale []string, held []*dep) {
	if s.NoChange {
		return nil, nil
	}
	sp.stamp++
	sp.candidates(s, func(d *dep) {
		switch r := decide(s, d); {
		case r == keep:
			c.kept.Add(1)
			t.add(r)
		case r != ruleID && d.filter != nil:
			d.held.Add(1)
			held = append(held, d)
			c.held.Add(1)
			if t != nil {
				t.held++
			}
		default:
			t.add(r)
			c.count(r)
			d.invalid.Store(true)
			sp.unregister(d)
			stale = append(stale, d.key)
		}
	})
	return stale, held
}

// readFields returns the top-level fields the collection's entries read
// (under mu).
func (sp *space) readFields() []string {
	out := make([]string, 0, len(sp.readers)+len(sp.eqOnly)+1)
	out = append(out, "_id")
	for f := range sp.readers {
		out = append(out, f)
	}
	for f := range sp.eqOnly {
		if _, dup := sp.readers[f]; !dup {
			out = append(out, f)
		}
	}
	return out
}

// images sets the image of each statement that names one _id, from a
// valid entry of the writer's scope that holds the document whole, when no
// other statement of the write can change that document (under mu). An
// image is the document as the server holds it right before the write: a
// statement after another that changes the same document (an ordered bulk
// runs them in order; an unordered one in any) would be judged by a
// document that no longer exists (TestMultiStatementWriteOnOneID).
func (sp *space) images(c *Cache, stmts []Stmt, writers []*mongo.Client) {
	if len(writers) == 0 {
		return // a write whose deployment is not known: no cached document is its
	}
	var ids map[idKey]int
	if len(stmts) > 1 {
		var all bool
		if ids, all = sp.shared(stmts); all {
			return // a statement may change any document: no image is the others'
		}
	}
	for i := range stmts {
		s := &stmts[i]
		if s.Op == OpInsert || s.Filter == nil {
			continue
		}
		s.derive(sp.simple.Load())
		if !s.idsKnown || len(s.ids) != 1 || ids[s.ids[0]] > 1 {
			continue
		}
		for d := range sp.byID[s.ids[0]] {
			if !slices.Contains(writers, d.client) || !d.valid(c) || !d.proj.KeepsAll() { // valid: also not flushed since its load
				continue
			}
			if doc := d.docWithID(s.ids[0]); doc != nil {
				s.setImage(doc, nil) // immutable: the entry's buffer is never written
				break
			}
		}
	}
}

// shared returns, for a write of several statements, the _ids more than
// one statement may change (an update, replacement or delete by _id, an
// insert of that _id), and whether some statement's documents are not
// known by _id (then every statement may change any document). One pass:
// a bulk of 1,000 statements is read once, not once per statement.
func (sp *space) shared(stmts []Stmt) (ids map[idKey]int, all bool) {
	simple := sp.simple.Load()
	ids = make(map[idKey]int, len(stmts))
	for j := range stmts {
		o := &stmts[j]
		if o.Op == OpInsert {
			doc := o.doc()
			if doc == nil {
				return nil, true
			}
			v, err := doc.LookupErr("_id")
			if err != nil {
				return nil, true // the server assigns one: not an image's, but be plain
			}
			k, ok := keyOfID(v, simple && !o.Collation)
			if !ok {
				return nil, true
			}
			ids[k]++
			continue
		}
		o.derive(simple)
		if !o.idsKnown {
			return nil, true
		}
		for _, k := range o.ids {
			ids[k]++
		}
	}
	return ids, false
}

// forgetImages drops the images of the writes in flight (under mu): a
// write begins or is applied, which may change their documents.
func (sp *space) forgetImages() {
	for _, w := range sp.flying {
		for i := range w.stmts {
			w.stmts[i].setImage(nil, nil)
		}
	}
}

// images returns, for each cache the flight reached, the images its own
// part still holds, by statement index (nil when it holds none). A cache
// judges the write only with the images taken from its own entries and
// not forgotten since: what one cache knows of a document (another
// process's write it was told of, a flush) another may not.
func (f *Flight) images() map[*Cache][]bson.Raw {
	if f == nil {
		return nil
	}
	var out map[*Cache][]bson.Raw
	for _, p := range f.parts {
		p.sp.mu.Lock()
		for i := range p.w.stmts {
			if img := p.w.stmts[i].image; img != nil {
				if out == nil {
					out = map[*Cache][]bson.Raw{}
				}
				if out[p.c] == nil {
					out[p.c] = make([]bson.Raw, len(p.w.stmts))
				}
				out[p.c][i] = img
			}
		}
		p.sp.mu.Unlock()
	}
	return out
}

// docWithID returns the stored document with _id k, or nil.
func (d *dep) docWithID(k idKey) bson.Raw {
	for _, doc := range d.docs {
		if id, err := doc.LookupErr("_id"); err == nil {
			if dk, ok := keyOfID(id, d.opts.SimpleStrings); ok && dk == k {
				return doc
			}
		}
	}
	return nil
}
