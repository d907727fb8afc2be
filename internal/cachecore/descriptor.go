package cachecore

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// A descriptor is a write's change as another process reads it: the
// statements and what the server's reply said of them, in the form the
// rules read (Stmt), encoded as one BSON document
//
//	{v: 1, s: [{o: op, f: filter, u: update, d: document, m: multi,
//	            up: upsert, af: arrayFilters, c: collation, n: noChange,
//	            ui: upserted, nu: notUpserted, id: upsertedID,
//	            p: preImage, pf: [preImage's fields]}, …]}
//
// with the fields a statement does not have left out. BSON, not msgpack:
// the filters, updates and documents are BSON already, and a log event
// embeds the descriptor as it is (BenchmarkDescriptorEncoding measures
// both).
//
// What a descriptor carries is what the writer knew from the write itself
// (its statements, the server's reply, the server's pre-image); never the
// images the writer took from its own cache, which are facts about the
// writer's cache, not about the server at the time another process applies
// the event (events arrive in any order). The receiver applies a
// descriptor like a change-stream event: with the rules, and with no image
// of its own (Change.Writers is nil).

// DescriptorVersion is the version a descriptor carries; a reader
// refuses (and invalidates the namespace for) any other.
const DescriptorVersion = 1

// MaxDescriptor is the largest descriptor a cache publishes, in bytes: a
// write whose descriptor would be larger (a 1,000-document InsertMany of
// 100-byte documents is about 110 KiB) is published as its namespace only.
const MaxDescriptor = 16 << 10

// errTooLarge ends an encoding that passed the limit.
var errTooLarge = errors.New("descriptor over its limit")

// AppendDescriptor appends ch's descriptor to dst and reports whether it
// could: not for a change the rules read collection-wide (Wide, Drop, no
// statements), one of unknown outcome, one whose documents cannot be
// encoded, or one whose descriptor would pass limit bytes. dst is returned
// unchanged when it cannot.
func AppendDescriptor(dst []byte, ch *Change, limit int) ([]byte, bool) {
	if ch.Unknown || ch.Wide || ch.Drop || ch.Coll == "" || len(ch.Stmts) == 0 {
		return dst, false
	}
	start := len(dst)
	out, err := appendDescriptor(dst, ch, start+limit)
	if err != nil {
		return dst[:start], false
	}
	return out, true
}

func appendDescriptor(dst []byte, ch *Change, end int) ([]byte, error) {
	di, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendInt32Element(dst, "v", DescriptorVersion)
	ai, dst := bsoncore.AppendArrayElementStart(dst, "s")
	var key [20]byte
	for i := range ch.Stmts {
		s := &ch.Stmts[i]
		var si int32
		si, dst = bsoncore.AppendDocumentElementStart(dst, string(arrayKey(key[:0], i)))
		dst = bsoncore.AppendInt32Element(dst, "o", int32(s.Op))
		if s.Op == OpInsert || s.Op == OpReplace {
			doc := s.doc()
			if doc == nil {
				return nil, errors.New("document not encoded")
			}
			dst = bsoncore.AppendDocumentElement(dst, "d", doc)
		}
		if s.Filter != nil {
			dst = bsoncore.AppendDocumentElement(dst, "f", s.Filter)
		}
		if s.Update.Type != 0 {
			dst = bsoncore.AppendValueElement(dst, "u", bsoncore.Value{Type: bsoncore.Type(s.Update.Type), Data: s.Update.Value})
		}
		for _, f := range [...]struct {
			key string
			set bool
		}{{"m", s.Multi}, {"up", s.Upsert}, {"af", s.ArrayFilters}, {"c", s.Collation}, {"n", s.NoChange}, {"ui", s.Upserted}, {"nu", s.NotUpserted}} {
			if f.set {
				dst = bsoncore.AppendBooleanElement(dst, f.key, true)
			}
		}
		if s.UpsertedID.Type != 0 {
			dst = bsoncore.AppendValueElement(dst, "id", bsoncore.Value{Type: bsoncore.Type(s.UpsertedID.Type), Data: s.UpsertedID.Value})
		}
		if s.PreImage != nil {
			dst = bsoncore.AppendDocumentElement(dst, "p", s.PreImage)
			if s.PreImageFields != nil {
				var fi int32
				fi, dst = bsoncore.AppendArrayElementStart(dst, "pf")
				for j, f := range s.PreImageFields {
					dst = bsoncore.AppendStringElement(dst, string(arrayKey(key[:0], j)), f)
				}
				dst, _ = bsoncore.AppendArrayEnd(dst, fi)
			}
		}
		dst, _ = bsoncore.AppendDocumentEnd(dst, si)
		if len(dst) > end {
			return nil, errTooLarge
		}
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, ai)
	dst, _ = bsoncore.AppendDocumentEnd(dst, di)
	if len(dst) > end {
		return nil, errTooLarge
	}
	return dst, nil
}

// flag returns the flag a descriptor's boolean field key sets.
func (s *Stmt) flag(key string) *bool {
	switch key {
	case "m":
		return &s.Multi
	case "up":
		return &s.Upsert
	case "af":
		return &s.ArrayFilters
	case "c":
		return &s.Collation
	case "n":
		return &s.NoChange
	case "ui":
		return &s.Upserted
	}
	return &s.NotUpserted
}

// arrayKey appends the decimal key of array index i.
func arrayKey(b []byte, i int) []byte {
	if i < 10 {
		return append(b, byte('0'+i))
	}
	return fmt.Appendf(b, "%d", i)
}

// ChangeOfDescriptor returns the change a descriptor describes, in
// db.coll, and ok; ok is false for a descriptor this version cannot read
// whole (another version, a field it does not know, a value of the wrong
// type): the caller invalidates the namespace instead. The change's
// statements point into desc.
func ChangeOfDescriptor(db, coll string, desc []byte) (ch Change, ok bool) {
	ch = Change{DB: db, Coll: coll}
	stmts, err := readDescriptor(bson.Raw(desc))
	if err != nil || len(stmts) == 0 {
		return ch, false
	}
	ch.Stmts = stmts
	return ch, true
}

func readDescriptor(doc bson.Raw) ([]Stmt, error) {
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	var version int32
	var stmts []Stmt
	for _, el := range elems {
		switch v := el.Value(); el.Key() {
		case "v":
			var ok bool
			if version, ok = v.Int32OK(); !ok {
				return nil, errors.New("v: not an int32")
			}
		case "s":
			arr, ok := v.ArrayOK()
			if !ok {
				return nil, errors.New("s: not an array")
			}
			vals, err := arr.Values()
			if err != nil {
				return nil, err
			}
			stmts = make([]Stmt, len(vals))
			for i, sv := range vals {
				sd, ok := sv.DocumentOK()
				if !ok {
					return nil, errors.New("a statement that is not a document")
				}
				if err := readStmt(sd, &stmts[i]); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("unknown field %q", el.Key())
		}
	}
	if version != DescriptorVersion {
		return nil, fmt.Errorf("version %d", version)
	}
	return stmts, nil
}

func readStmt(doc bson.Raw, s *Stmt) error {
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	for _, el := range elems {
		v := el.Value()
		ok := true
		switch el.Key() {
		case "o":
			var op int32
			op, ok = v.Int32OK()
			ok = ok && op >= int32(OpInsert) && op <= int32(OpDelete)
			s.Op = Op(op)
		case "d":
			s.Doc, ok = v.DocumentOK()
		case "f":
			s.Filter, ok = v.DocumentOK()
		case "u":
			ok = v.Type == bson.TypeEmbeddedDocument || v.Type == bson.TypeArray
			s.Update = v
		case "m", "up", "af", "c", "n", "ui", "nu":
			*s.flag(el.Key()), ok = v.BooleanOK()
		case "id":
			s.UpsertedID = v
		case "p":
			s.PreImage, ok = v.DocumentOK()
		case "pf":
			var arr bson.RawArray
			if arr, ok = v.ArrayOK(); ok {
				vals, err := arr.Values()
				if err != nil {
					return err
				}
				s.PreImageFields = make([]string, 0, len(vals))
				for _, fv := range vals {
					f, isStr := fv.StringValueOK()
					if !isStr {
						return errors.New("pf: not a string")
					}
					s.PreImageFields = append(s.PreImageFields, f)
				}
			}
		default:
			return fmt.Errorf("unknown statement field %q", el.Key())
		}
		if !ok {
			return fmt.Errorf("statement field %q: wrong type %s", el.Key(), v.Type)
		}
	}
	switch {
	case s.Op == 0:
		return errors.New("a statement without an operation")
	case (s.Op == OpInsert || s.Op == OpReplace) && s.Doc == nil:
		return errors.New("an insert or replacement without its document")
	case s.Op != OpInsert && s.Filter == nil:
		return errors.New("a statement without its filter")
	case s.Op == OpUpdate && s.Update.Type == 0:
		return errors.New("an update without its update")
	}
	return nil
}
