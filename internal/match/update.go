package match

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Update is what an update says about the documents it changes: the paths
// it may change, and the values some of them certainly hold afterwards.
type Update struct {
	// All: a replacement or a pipeline, or an operator this package does
	// not know: any path may change.
	All bool
	// Touched are the paths it may change, cut at the first positional or
	// numeric segment ("items.$.qty" and "items.0.qty" touch "items").
	Touched []string
	// Set holds, for the paths of a $set with no numeric or positional
	// segment, the value the path holds after the update (when the update
	// succeeds: a $set through an array fails and changes nothing).
	Set map[string]bson.RawValue
	// Unset holds the top-level fields an $unset removes.
	Unset map[string]bool
}

// operators lists the update operators whose fields are paths.
var operators = map[string]bool{
	"$set": true, "$unset": true, "$inc": true, "$mul": true, "$min": true, "$max": true,
	"$currentDate": true, "$push": true, "$addToSet": true, "$pop": true, "$pull": true,
	"$pullAll": true, "$bit": true, "$rename": true,
}

// AnalyzeUpdate reads an update document (operators) or pipeline (an
// array). A document without operators is a replacement: All.
// $setOnInsert changes only a document an upsert inserts, so it is not
// among the paths of the documents the update changes.
func AnalyzeUpdate(update bson.RawValue) Update { return analyzeUpdate(update, false) }

// AnalyzeUpsert reads an update as an upsert applies it to the document it
// inserts: $setOnInsert sets its paths as $set does. (The inserted
// document starts from the filter's equalities; every path the update
// touches, $setOnInsert's included, is then the update's.)
func AnalyzeUpsert(update bson.RawValue) Update { return analyzeUpdate(update, true) }

func analyzeUpdate(update bson.RawValue, inserting bool) Update {
	doc, ok := update.DocumentOK()
	if !ok {
		return Update{All: true} // a pipeline
	}
	elems, err := doc.Elements()
	if err != nil || len(elems) == 0 || !strings.HasPrefix(elems[0].Key(), "$") {
		return Update{All: true}
	}
	u := Update{Set: map[string]bson.RawValue{}, Unset: map[string]bool{}}
	for _, el := range elems {
		op := el.Key()
		if op == "$setOnInsert" {
			if !inserting {
				continue
			}
			op = "$set"
		}
		if !operators[op] {
			return Update{All: true}
		}
		fields, ok := el.Value().DocumentOK()
		if !ok {
			return Update{All: true}
		}
		fes, err := fields.Elements()
		if err != nil {
			return Update{All: true}
		}
		for _, fe := range fes {
			path := fe.Key()
			u.Touched = append(u.Touched, cut(path))
			switch op {
			case "$rename":
				to, ok := fe.Value().StringValueOK()
				if !ok {
					return Update{All: true}
				}
				u.Touched = append(u.Touched, cut(to))
			case "$set":
				if plain(path) {
					u.Set[path] = fe.Value()
				}
			case "$unset":
				if !strings.Contains(path, ".") && plain(path) {
					u.Unset[path] = true
				}
			}
		}
	}
	return u
}

// cut returns path up to its first positional or numeric segment.
func cut(path string) string {
	segs := split(path)
	for i, s := range segs {
		if strings.HasPrefix(s, "$") || isIndex(s) {
			if i == 0 {
				return ""
			}
			return strings.Join(segs[:i], ".")
		}
	}
	return path
}

// plain reports whether path has no positional and no numeric segment.
func plain(path string) bool { return cut(path) == path && path != "" }

// Overlaps reports whether two paths can name the same data: one is the
// other or a prefix of it, segment by segment. The empty path (the whole
// document) overlaps every path.
func Overlaps(a, b string) bool {
	if a == "" || b == "" || a == b {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a) && b[len(a)] == '.'
}

// Field returns the first segment of a path.
func Field(path string) string {
	f, _, _ := strings.Cut(path, ".")
	return f
}

// CanMatchAfter says whether a document the update changes can match the
// filter afterwards, from what the update alone determines: every
// top-level clause of the filter whose paths all lie under a path the
// update sets (or a top-level field it removes), or under one of extra
// (values known otherwise, such as an upserted _id), is evaluated on those
// values; one that fails means No. Otherwise Maybe (or Yes, when every
// clause is determined and holds).
func (f *Filter) CanMatchAfter(u Update, extra map[string]bson.RawValue) Tri {
	return f.CanMatch(PrepareAfter(u, extra))
}

// After is what an update and values known besides determine of the
// document it changes (see CanMatchAfter), prepared once for the many
// filters one write is judged against.
type After struct {
	facts   map[string]bson.RawValue
	unset   map[string]bool
	doc     bson.Raw // the facts as a document
	nothing bool     // nothing determined: every filter may match
}

// PrepareAfter prepares what u and extra determine (see CanMatchAfter).
func PrepareAfter(u Update, extra map[string]bson.RawValue) *After {
	if u.All && len(extra) == 0 {
		return &After{nothing: true}
	}
	a := &After{facts: map[string]bson.RawValue{}}
	if !u.All {
		for p, v := range u.Set {
			a.facts[p] = v
		}
		a.unset = u.Unset
	}
	for p, v := range extra {
		a.facts[p] = v
	}
	if len(a.facts) == 0 && len(a.unset) == 0 {
		return &After{nothing: true}
	}
	doc, ok := buildDoc(a.facts)
	if !ok {
		return &After{nothing: true}
	}
	a.doc = doc
	return a
}

// CanMatch is CanMatchAfter with what the update determines prepared.
func (f *Filter) CanMatch(a *After) Tri {
	if a.nothing {
		return Maybe
	}
	res := Yes
	for _, c := range f.clauses {
		if !determined(c.paths(nil), a.facts, a.unset) {
			res = Maybe
			continue
		}
		if t := c.eval(f.env, a.doc); t == No {
			return No
		} else if t == Maybe {
			res = Maybe
		}
	}
	return res
}

// determined reports whether every path lies under a fact or a removed
// top-level field.
func determined(paths []string, facts map[string]bson.RawValue, unset map[string]bool) bool {
	for _, p := range paths {
		ok := unset[Field(p)] // everything under a removed field is missing
		for q := range facts {
			if q == p || (strings.HasPrefix(p, q) && p[len(q)] == '.') {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// buildDoc builds the document that holds each fact at its path (paths
// that conflict, one inside another, make it fail).
func buildDoc(facts map[string]bson.RawValue) (bson.Raw, bool) {
	root := bson.D{}
	for p, v := range facts {
		if !place(&root, split(p), v) {
			return nil, false
		}
	}
	raw, err := bson.Marshal(root)
	return raw, err == nil
}

func place(d *bson.D, segs []string, v bson.RawValue) bool {
	for i := range *d {
		e := &(*d)[i]
		if e.Key != segs[0] {
			continue
		}
		sub, ok := e.Value.(bson.D)
		if len(segs) == 1 || !ok {
			return false // a conflict
		}
		if !place(&sub, segs[1:], v) {
			return false
		}
		e.Value = sub
		return true
	}
	if len(segs) == 1 {
		*d = append(*d, bson.E{Key: segs[0], Value: v})
		return true
	}
	sub := bson.D{}
	if !place(&sub, segs[1:], v) {
		return false
	}
	*d = append(*d, bson.E{Key: segs[0], Value: sub})
	return true
}
