package pipeline

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Analysis is what the cache's rules read from an aggregation on one
// collection: the documents it starts from (its leading $match, or every
// document), and the paths its output can depend on.
type Analysis struct {
	Match bson.Raw // the leading $match's filter; nil for every document
	Reads []string // paths of the source documents the later stages read
	All   bool     // the output carries source documents whole (or reads $$ROOT)
}

// Analyse reads a pipeline made of stages whose reads are known: a leading
// $match, then $match, $sort, $limit, $skip, $project, $addFields, $set,
// $unset, $group, $count, $unwind, $replaceRoot and $replaceWith. ok is
// false for any other stage (one that reads another collection, writes, or
// is not known here).
func Analyse(stages bson.RawArray) (Analysis, bool) {
	vals, err := stages.Values()
	if err != nil {
		return Analysis{}, false
	}
	var a Analysis
	passthrough := true // the documents flowing are the source's
	for i, v := range vals {
		stage, ok := v.DocumentOK()
		if !ok {
			return Analysis{}, false
		}
		elems, err := stage.Elements()
		if err != nil || len(elems) != 1 {
			return Analysis{}, false
		}
		name, arg := elems[0].Key(), elems[0].Value()
		if i == 0 && name == "$match" {
			if a.Match, ok = arg.DocumentOK(); !ok {
				return Analysis{}, false
			}
			continue
		}
		switch name {
		case "$match":
			d, ok := arg.DocumentOK()
			if !ok {
				return Analysis{}, false
			}
			a.keys(d, true) // the fields it reads (operators are not fields)
		case "$sort":
			d, ok := arg.DocumentOK()
			if !ok {
				return Analysis{}, false
			}
			a.keys(d, false)
		case "$limit", "$skip":
		case "$unwind":
			a.refs(arg)
		case "$project":
			d, ok := arg.DocumentOK()
			if !ok {
				return Analysis{}, false
			}
			if a.project(d) {
				passthrough = false // only the projected fields flow on
			} else {
				a.All = true // an exclusion: every other field flows on
			}
		case "$addFields", "$set", "$unset":
			a.refs(arg)
			a.All = a.All || passthrough // the documents flow on, extended
		case "$group", "$replaceRoot", "$replaceWith":
			a.refs(arg)
			passthrough = false
		case "$count":
			passthrough = false
		default:
			return Analysis{}, false
		}
	}
	if passthrough {
		a.All = true
	}
	return a, true
}

// keys records the fields of a document's keys (a $match's, recursively
// through $and/$or/$nor; a $sort's), and the references of its values.
func (a *Analysis) keys(d bson.Raw, filter bool) {
	elems, err := d.Elements()
	if err != nil {
		a.All = true
		return
	}
	for _, el := range elems {
		k := el.Key()
		if strings.HasPrefix(k, "$") {
			if filter && (k == "$and" || k == "$or" || k == "$nor") {
				if arr, ok := el.Value().ArrayOK(); ok {
					subs, _ := arr.Values()
					for _, s := range subs {
						if sd, ok := s.DocumentOK(); ok {
							a.keys(sd, true)
						}
					}
					continue
				}
			}
			a.All = true // $expr and other operators: not read here
			continue
		}
		a.Reads = append(a.Reads, k)
		a.refs(el.Value())
	}
}

// project reads an inclusion projection's fields and references; it
// reports false for an exclusion (every other field flows on). A value
// that is a document of fields, not of an operator, is a nested projection
// ({n: {x: 0}} excludes n.x, so it is an exclusion: every other field,
// and the rest of n, flow on).
func (a *Analysis) project(d bson.Raw) bool {
	elems, err := d.Elements()
	if err != nil {
		return false
	}
	inclusion := false
	for _, el := range elems {
		v := el.Value()
		if excludes(v) && el.Key() != "_id" {
			return false
		}
		// An included "m.n" is output as m: {} when m is a document
		// without n: what the output holds depends on all of m, not only
		// on m.n (TestAnalyse/a_dotted_inclusion).
		a.Reads = append(a.Reads, top(el.Key()))
		a.refs(v)
		if el.Key() != "_id" {
			inclusion = true // {_id: 0} alone excludes
		}
	}
	return inclusion
}

// top returns the first segment of a path.
func top(path string) string {
	f, _, _ := strings.Cut(path, ".")
	return f
}

// excludes reports whether a $project value excludes: 0 or false, or a
// nested projection that excludes somewhere below. A document whose first
// key is an operator is an expression, which computes a field.
func excludes(v bson.RawValue) bool {
	if n, ok := v.AsInt64OK(); ok {
		return n == 0
	}
	if b, ok := v.BooleanOK(); ok {
		return !b
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return false
	}
	elems, err := doc.Elements()
	if err != nil {
		return true // not readable: as if it excluded (every field flows on)
	}
	if len(elems) > 0 && strings.HasPrefix(elems[0].Key(), "$") {
		return false
	}
	for _, el := range elems {
		if excludes(el.Value()) {
			return true
		}
	}
	return false
}

// byName are the expression operators that read a field by its name (a
// string, not a "$path"): the paths they read are not references.
var byName = map[string]bool{"$getField": true, "$setField": true, "$unsetField": true}

// refs records every field reference ("$path") in an expression; $$ROOT
// and $$CURRENT read everything.
func (a *Analysis) refs(v bson.RawValue) {
	switch v.Type {
	case bson.TypeString:
		s := v.StringValue()
		switch {
		case strings.HasPrefix(s, "$$ROOT") || strings.HasPrefix(s, "$$CURRENT"):
			a.All = true
		case strings.HasPrefix(s, "$$"):
		case strings.HasPrefix(s, "$"):
			a.Reads = append(a.Reads, s[1:])
		}
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		elems, err := bson.Raw(v.Value).Elements()
		if err != nil {
			a.All = true
			return
		}
		for _, el := range elems {
			if v.Type == bson.TypeEmbeddedDocument && byName[el.Key()] {
				a.All = true // reads a field named by a value, of $$CURRENT by default
				return
			}
			a.refs(el.Value())
		}
	}
}
