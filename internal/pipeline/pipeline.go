// Package pipeline reads, from an aggregation pipeline, the collections it
// depends on and the one it writes: for the cache (an aggregation's entry
// depends on every collection it reads) and for the write observer (a
// pipeline ending in $out or $merge is a write to its target). One reader
// for both, so that they never disagree.
package pipeline

import (
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Deps is what a pipeline reads besides its source collection, and the
// collection it writes ($out, $merge), as "db.coll".
type Deps struct {
	Reads  []string // sorted
	Target string   // "" for a pipeline that writes nothing
}

// Of reads the collections the pipeline stages read (those of $lookup,
// $graphLookup and $unionWith, also inside $facet and sub-pipelines) and
// the one its $out or $merge writes, for a pipeline run in database db. A
// stage it cannot read is an error: the caller must not guess.
func Of(db string, stages bson.RawArray) (Deps, error) {
	var d Deps
	seen := map[string]bool{}
	if err := d.walk(db, stages, seen, 0); err != nil {
		return Deps{}, err
	}
	slices.Sort(d.Reads)
	return d, nil
}

func (d *Deps) read(ns string, seen map[string]bool) {
	if !seen[ns] {
		seen[ns] = true
		d.Reads = append(d.Reads, ns)
	}
}

func (d *Deps) walk(db string, stages bson.RawArray, seen map[string]bool, depth int) error {
	if depth > 20 {
		return errors.New("sub-pipelines nested too deeply")
	}
	vals, err := stages.Values()
	if err != nil {
		return err
	}
	for _, v := range vals {
		stage, ok := v.DocumentOK()
		if !ok {
			return errors.New("a stage is not a document")
		}
		elems, err := stage.Elements()
		if err != nil || len(elems) != 1 {
			return errors.New("a stage is not a one-field document")
		}
		name, arg := elems[0].Key(), elems[0].Value()
		switch name {
		case "$lookup", "$graphLookup":
			spec, ok := arg.DocumentOK()
			if !ok {
				return fmt.Errorf("%s is not a document", name)
			}
			if from, ok := spec.Lookup("from").StringValueOK(); ok {
				d.read(db+"."+from, seen)
			} else if fromDoc, ok := spec.Lookup("from").DocumentOK(); ok {
				fdb, _ := fromDoc.Lookup("db").StringValueOK()
				fcoll, _ := fromDoc.Lookup("coll").StringValueOK()
				if fdb == "" || fcoll == "" {
					return fmt.Errorf("%s from a document without db and coll", name)
				}
				d.read(fdb+"."+fcoll, seen)
			} else if name == "$graphLookup" {
				return errors.New("$graphLookup without from")
			}
			if sub, ok := spec.Lookup("pipeline").ArrayOK(); ok {
				if err := d.walk(db, sub, seen, depth+1); err != nil {
					return err
				}
			}
		case "$unionWith":
			if coll, ok := arg.StringValueOK(); ok {
				d.read(db+"."+coll, seen)
				continue
			}
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$unionWith is neither a name nor a document")
			}
			if coll, ok := spec.Lookup("coll").StringValueOK(); ok {
				d.read(db+"."+coll, seen)
			}
			if sub, ok := spec.Lookup("pipeline").ArrayOK(); ok {
				if err := d.walk(db, sub, seen, depth+1); err != nil {
					return err
				}
			}
		case "$facet":
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$facet is not a document")
			}
			facets, err := spec.Elements()
			if err != nil {
				return err
			}
			for _, f := range facets {
				sub, ok := f.Value().ArrayOK()
				if !ok {
					return errors.New("a $facet is not a pipeline")
				}
				if err := d.walk(db, sub, seen, depth+1); err != nil {
					return err
				}
			}
		case "$out":
			if s, ok := arg.StringValueOK(); ok {
				d.Target = db + "." + s
				continue
			}
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$out is neither a name nor a document")
			}
			tdb, ok := spec.Lookup("db").StringValueOK()
			if !ok {
				tdb = db
			}
			tcoll, ok := spec.Lookup("coll").StringValueOK()
			if !ok {
				return errors.New("$out without coll")
			}
			d.Target = tdb + "." + tcoll
		case "$merge":
			if s, ok := arg.StringValueOK(); ok {
				d.Target = db + "." + s
				continue
			}
			spec, ok := arg.DocumentOK()
			if !ok {
				return errors.New("$merge is neither a name nor a document")
			}
			into := spec.Lookup("into")
			if s, ok := into.StringValueOK(); ok {
				d.Target = db + "." + s
			} else if doc, ok := into.DocumentOK(); ok {
				tdb, ok := doc.Lookup("db").StringValueOK()
				if !ok {
					tdb = db
				}
				tcoll, ok := doc.Lookup("coll").StringValueOK()
				if !ok {
					return errors.New("$merge into a document without coll")
				}
				d.Target = tdb + "." + tcoll
			} else {
				return errors.New("$merge without into")
			}
		}
	}
	return nil
}
