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
		if err := d.stage(db, elems[0].Key(), elems[0].Value(), seen, depth); err != nil {
			return err
		}
	}
	return nil
}

// stage records what one stage reads or writes.
func (d *Deps) stage(db, name string, arg bson.RawValue, seen map[string]bool, depth int) error {
	switch name {
	case "$lookup", "$graphLookup":
		return d.lookup(db, name, arg, seen, depth)
	case "$unionWith":
		if coll, ok := arg.StringValueOK(); ok {
			d.read(db+"."+coll, seen)
			return nil
		}
		spec, ok := arg.DocumentOK()
		if !ok {
			return errors.New("$unionWith is neither a name nor a document")
		}
		if coll, ok := spec.Lookup("coll").StringValueOK(); ok {
			d.read(db+"."+coll, seen)
		}
		return d.sub(db, spec, seen, depth)
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
		return d.target(db, name, arg, "")
	case "$merge":
		return d.target(db, name, arg, "into")
	}
	return nil
}

// lookup records the collection a $lookup or $graphLookup reads, and its
// sub-pipeline's.
func (d *Deps) lookup(db, name string, arg bson.RawValue, seen map[string]bool, depth int) error {
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
	return d.sub(db, spec, seen, depth)
}

// sub walks the pipeline of a stage's spec, if it has one.
func (d *Deps) sub(db string, spec bson.Raw, seen map[string]bool, depth int) error {
	if sub, ok := spec.Lookup("pipeline").ArrayOK(); ok {
		return d.walk(db, sub, seen, depth+1)
	}
	return nil
}

// target records the collection an $out or $merge writes: a name, or a
// {db, coll} document (under field, for $merge's into).
func (d *Deps) target(db, name string, arg bson.RawValue, field string) error {
	if s, ok := arg.StringValueOK(); ok {
		d.Target = db + "." + s
		return nil
	}
	spec, ok := arg.DocumentOK()
	if !ok {
		return fmt.Errorf("%s is neither a name nor a document", name)
	}
	if field != "" {
		into := spec.Lookup(field)
		if s, ok := into.StringValueOK(); ok {
			d.Target = db + "." + s
			return nil
		}
		if spec, ok = into.DocumentOK(); !ok {
			return fmt.Errorf("%s without %s", name, field)
		}
	}
	tdb, ok := spec.Lookup("db").StringValueOK()
	if !ok {
		tdb = db
	}
	tcoll, ok := spec.Lookup("coll").StringValueOK()
	if !ok {
		return fmt.Errorf("%s without coll", name)
	}
	d.Target = tdb + "." + tcoll
	return nil
}
