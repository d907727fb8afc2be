package cachecore

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ChangeOfEvent returns what a change-stream event of a write to
// documents says the write changed, in the rules' form, and ok. ok is
// false when the event cannot tell (another operation type, a missing
// field, paths the server had to disambiguate): the caller invalidates the
// event's namespace instead.
//
// The event is the server's document as the driver returns it, with at
// least operationType, ns, documentKey, fullDocument (inserts and
// replaces, which carry it without updateLookup) and updateDescription
// (updates). An update becomes an update by its documentKey whose $set is
// the event's updatedFields (their values after the write), whose $unset
// is its removedFields, and which touches each truncated array (a $pop:
// the array's new content is not in the event). No rule needs an update's
// post-image, so the stream does not ask for one (no updateLookup). An
// event's fullDocumentBeforeChange, when the stream asked for it
// (coherence.PreImages) and the server had it, is the statement's
// PreImage.
func ChangeOfEvent(ev bson.Raw) (ch Change, ok bool) {
	op, ok1 := ev.Lookup("operationType").StringValueOK()
	ns, ok2 := ev.Lookup("ns").DocumentOK()
	if !ok1 || !ok2 {
		return Change{}, false
	}
	db, okd := ns.Lookup("db").StringValueOK()
	coll, okc := ns.Lookup("coll").StringValueOK()
	if !okd || !okc {
		return Change{}, false
	}
	ch = Change{DB: db, Coll: coll}
	key, hasKey := ev.Lookup("documentKey").DocumentOK()
	if hasKey {
		if _, err := key.LookupErr("_id"); err != nil {
			hasKey = false
		}
	}
	full, hasFull := ev.Lookup("fullDocument").DocumentOK()
	var s Stmt
	switch op {
	case "insert":
		if !hasFull {
			return ch, false
		}
		s = Stmt{Op: OpInsert, Doc: full}
	case "replace":
		if !hasKey || !hasFull {
			return ch, false
		}
		s = Stmt{Op: OpReplace, Filter: key, Doc: full}
	case "delete":
		if !hasKey {
			return ch, false
		}
		s = Stmt{Op: OpDelete, Filter: key}
	case "update":
		if !hasKey {
			return ch, false
		}
		u, ok := updateOfDescription(ev.Lookup("updateDescription"))
		if !ok {
			return ch, false
		}
		s = Stmt{Op: OpUpdate, Filter: key, Update: u}
	default:
		return ch, false
	}
	if op != "insert" {
		// With fullDocumentBeforeChange (MongoDB 6.0+, a collection with
		// changeStreamPreAndPostImages): the document as it was before
		// the write, returned by the server with the event: a fact, as
		// an odm write's pre-image is. Null or absent: none.
		if pre, ok := ev.Lookup("fullDocumentBeforeChange").DocumentOK(); ok {
			s.PreImage = pre
		}
	}
	ch.Stmts = []Stmt{s}
	return ch, true
}

// updateOfDescription turns an update event's updateDescription into
// update operators that touch the same paths and set the same values.
func updateOfDescription(v bson.RawValue) (bson.RawValue, bool) {
	desc, ok := v.DocumentOK()
	if !ok {
		return bson.RawValue{}, false
	}
	// Without showExpandedEvents (which the stream does not ask for: it
	// needs MongoDB 6.0) the server does not say when a path is ambiguous.
	// The rules read every path as a filter reads it: "a.1" as field "1"
	// of a document or element 1 of an array alike, as the server does.
	// When a field's own name holds a dot, the real change is one no filter
	// path can see (a filter's "a.b" never addresses a field named "a.b"),
	// so keeping an entry is right and dropping it only imprecise.
	if d, ok := desc.Lookup("disambiguatedPaths").DocumentOK(); ok {
		if elems, _ := d.Elements(); len(elems) > 0 {
			// Field names with dots or numbers: which path is which, the
			// rules' dotted paths cannot say.
			return bson.RawValue{}, false
		}
	}
	var update bson.D
	if set, ok := desc.Lookup("updatedFields").DocumentOK(); ok {
		elems, err := set.Elements()
		if err != nil {
			return bson.RawValue{}, false
		}
		if len(elems) > 0 {
			update = append(update, bson.E{Key: "$set", Value: set})
		}
	} else if _, err := desc.LookupErr("updatedFields"); err == nil {
		return bson.RawValue{}, false // present, not a document
	}
	if removed, ok := desc.Lookup("removedFields").ArrayOK(); ok {
		vals, err := removed.Values()
		if err != nil {
			return bson.RawValue{}, false
		}
		unset := make(bson.D, 0, len(vals))
		for _, p := range vals {
			s, ok := p.StringValueOK()
			if !ok {
				return bson.RawValue{}, false
			}
			unset = append(unset, bson.E{Key: s, Value: ""})
		}
		if len(unset) > 0 {
			update = append(update, bson.E{Key: "$unset", Value: unset})
		}
	}
	if truncated, ok := desc.Lookup("truncatedArrays").ArrayOK(); ok {
		vals, err := truncated.Values()
		if err != nil {
			return bson.RawValue{}, false
		}
		pop := make(bson.D, 0, len(vals))
		for _, t := range vals {
			doc, ok := t.DocumentOK()
			if !ok {
				return bson.RawValue{}, false
			}
			f, ok := doc.Lookup("field").StringValueOK()
			if !ok {
				return bson.RawValue{}, false
			}
			pop = append(pop, bson.E{Key: f, Value: 1})
		}
		if len(pop) > 0 {
			update = append(update, bson.E{Key: "$pop", Value: pop})
		}
	}
	if len(update) == 0 {
		return bson.RawValue{}, false // an update event that changed nothing: not one the rules know
	}
	if overlapping(update) {
		// A path both set and truncated (an array element set, the array
		// cut): update operators cannot say both; the server refuses them.
		return bson.RawValue{}, false
	}
	raw, err := bson.Marshal(update)
	if err != nil {
		return bson.RawValue{}, false
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw}, true
}

// overlapping reports whether two paths of the update's operators are the
// same or one is a prefix of the other.
func overlapping(update bson.D) bool {
	var paths []string
	for _, op := range update {
		var fields []string
		switch v := op.Value.(type) {
		case bson.Raw:
			elems, _ := v.Elements()
			for _, el := range elems {
				fields = append(fields, el.Key())
			}
		case bson.D:
			for _, e := range v {
				fields = append(fields, e.Key)
			}
		}
		paths = append(paths, fields...)
	}
	for i, a := range paths {
		for _, b := range paths[i+1:] {
			if a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".") {
				return true
			}
		}
	}
	return false
}
