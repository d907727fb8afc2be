package cachecore

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// commandStmts reads the statements of an insert, update, delete or
// findAndModify command as the driver sent it (the write observer's view
// of a write). ok is false for any other command, or a shape it does not
// know: the write is then collection-wide.
func commandStmts(name string, cmd bson.Raw) (stmts []Stmt, ok bool) {
	if name == "findAndModify" || name == "findandmodify" {
		return findAndModifyStmt(cmd)
	}
	var list string
	switch name {
	case "insert":
		list = "documents"
	case "update":
		list = "updates"
	case "delete":
		list = "deletes"
	default:
		return nil, false
	}
	if dupKeys(cmd) {
		return nil, false // which of two values the server takes: not known
	}
	arr, isArr := cmd.Lookup(list).ArrayOK()
	if !isArr || len(arr) < 5 {
		return nil, false
	}
	// Walked in place (twice: counted, then read): an insert of 1,000
	// documents builds no slice of values first.
	body := []byte(arr)[4 : len(arr)-1]
	n := 0
	for rest := body; len(rest) > 0; n++ {
		_, next, ok := bsoncore.ReadElement(rest)
		if !ok {
			return nil, false
		}
		rest = next
	}
	stmts = make([]Stmt, 0, n)
	for len(body) > 0 {
		el, next, ok := bsoncore.ReadElement(body)
		if !ok {
			return nil, false
		}
		body = next
		d, isDoc := bson.RawValue{Type: bson.Type(el.Value().Type), Value: el.Value().Data}.DocumentOK()
		if !isDoc || (name != "insert" && dupKeys(d)) {
			return nil, false
		}
		var s Stmt
		switch name {
		case "insert":
			s = Stmt{Op: OpInsert, Doc: d}
		case "update":
			q, ok1 := d.Lookup("q").DocumentOK()
			u, err := d.LookupErr("u")
			if !ok1 || err != nil {
				return nil, false
			}
			s = updateStmt(q, u)
			s.Multi = truthy(d.Lookup("multi"))
			s.Upsert = truthy(d.Lookup("upsert"))
			_, af := d.LookupErr("arrayFilters")
			s.ArrayFilters = af == nil
			s.Collation = nonSimple(d)
		case "delete":
			q, ok := d.Lookup("q").DocumentOK()
			if !ok {
				return nil, false
			}
			limit, _ := d.Lookup("limit").AsInt64OK()
			s = Stmt{Op: OpDelete, Filter: q, Multi: limit == 0, Collation: nonSimple(d)}
		}
		stmts = append(stmts, s)
	}
	return stmts, len(stmts) > 0
}

// truthy reads a command's flag as the server does: a boolean, or any
// number (non-zero is true). A value of another type counts as true: the
// rules assume the more the flag allows (several documents, an upsert).
func truthy(v bson.RawValue) bool {
	switch v.Type {
	case 0, bson.TypeNull, bson.TypeUndefined:
		return false
	case bson.TypeBoolean:
		return v.Boolean()
	}
	if f, ok := v.AsFloat64OK(); ok {
		return f != 0
	}
	return true
}

// dupKeys reports whether a document names a field twice: which of the
// values a server takes is its own (the dev server takes the last).
func dupKeys(d bson.Raw) bool {
	elems, err := d.Elements()
	if err != nil {
		return true
	}
	if len(elems) < 2 {
		return false
	}
	seen := make(map[string]struct{}, len(elems))
	for _, el := range elems {
		k := el.Key()
		if _, ok := seen[k]; ok {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// updateStmt is an update statement of filter q and update u: operators,
// a pipeline, or a replacement.
func updateStmt(q bson.Raw, u bson.RawValue) Stmt {
	s := Stmt{Op: OpUpdate, Filter: q, Update: u}
	if d, ok := u.DocumentOK(); ok {
		if el, err := d.IndexErr(0); err != nil || len(el.Key()) == 0 || el.Key()[0] != '$' {
			s.Op, s.Doc, s.Update = OpReplace, d, bson.RawValue{}
		}
	}
	return s
}

// nonSimple reports whether a statement (or command) has a collation other
// than the simple one.
func nonSimple(d bson.Raw) bool {
	coll, ok := d.Lookup("collation").DocumentOK()
	if !ok {
		return false
	}
	loc, _ := coll.Lookup("locale").StringValueOK()
	return loc != "simple"
}

func findAndModifyStmt(cmd bson.Raw) ([]Stmt, bool) {
	q := emptyDoc
	if v, err := cmd.LookupErr("query"); err == nil {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, false
		}
		q = d
	}
	var s Stmt
	if dupKeys(cmd) {
		return nil, false
	}
	if truthy(cmd.Lookup("remove")) {
		s = Stmt{Op: OpDelete, Filter: q}
	} else {
		u, err := cmd.LookupErr("update")
		if err != nil {
			return nil, false
		}
		s = updateStmt(q, u)
		s.Upsert = truthy(cmd.Lookup("upsert"))
		_, af := cmd.LookupErr("arrayFilters")
		s.ArrayFilters = af == nil
	}
	s.Collation = nonSimple(cmd)
	return []Stmt{s}, true
}

// refineByReply applies what a successful reply says of the statements:
// which changed nothing, which upserted (and which _id), and, for a
// findAndModify, which document it changed.
func refineByReply(name string, stmts []Stmt, reply bson.Raw) {
	// With write errors the totals may not say which statement did what
	// (a multi-document statement can fail partway): only the upserts
	// listed are read then.
	_, werr := reply.LookupErr("writeErrors")
	partial := werr == nil
	switch name {
	case "update":
		n, nOK := reply.Lookup("n").AsInt64OK()
		if !nOK {
			// MongoDB always counts; the dev server leaves the counts
			// out when a statement fails, even when one before it
			// upserted (TestReplyWithoutCountsIsNoFact): no facts.
			return
		}
		mod, modOK := reply.Lookup("nModified").AsInt64OK()
		up := map[int64]bson.RawValue{}
		if arr, ok := reply.Lookup("upserted").ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, v := range vals {
				d, ok := v.DocumentOK()
				if !ok {
					return
				}
				i, ok := d.Lookup("index").AsInt64OK()
				if !ok {
					return
				}
				up[i] = copyValue(d.Lookup("_id"))
			}
		}
		for i := range stmts {
			s := &stmts[i]
			if id, ok := up[int64(i)]; ok {
				// The reply is the fact, whatever the flag was read as.
				s.Upsert, s.Upserted, s.UpsertedID = true, true, id
				continue
			}
			s.NotUpserted = true
			// No statement matched, or none modified what it matched, and
			// none upserted: nothing changed.
			if !partial && len(up) == 0 && (n == 0 || (modOK && mod == 0)) {
				s.NoChange = true
			}
		}
	case "delete":
		if n, ok := reply.Lookup("n").AsInt64OK(); ok && n == 0 && !partial {
			for i := range stmts {
				stmts[i].NoChange = true
			}
		}
	case "findAndModify", "findandmodify":
		if len(stmts) != 1 {
			return
		}
		s := &stmts[0]
		leo, _ := reply.Lookup("lastErrorObject").DocumentOK()
		n, nOK := leo.Lookup("n").AsInt64OK()
		upID, upErr := leo.LookupErr("upserted")
		switch {
		case upErr == nil:
			s.Upserted, s.UpsertedID = true, copyValue(upID)
			return
		case nOK && n == 0:
			s.NoChange = true
			return
		}
		s.NotUpserted = nOK
		// The document it changed, before or after: its _id confines the
		// statement (unless a projection left the _id out).
		value, ok := reply.Lookup("value").DocumentOK()
		if !ok {
			return
		}
		if id, err := value.LookupErr("_id"); err == nil {
			s.Filter = idFilter(id)
		}
	}
}

// idFilter is the filter {_id: id}.
func idFilter(id bson.RawValue) bson.Raw {
	doc := bsoncore.NewDocumentBuilder().AppendValue("_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value}).Build()
	return bson.Raw(doc)
}

func copyValue(v bson.RawValue) bson.RawValue {
	v.Value = append([]byte(nil), v.Value...)
	return v
}
