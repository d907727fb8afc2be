package odm

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/bsontag"
	"github.com/databridge-go/databridge/internal/outcome"
)

// idField locates the _id field of a model type.
type idField struct {
	index []int // the field's index path, through inlined structs
	typ   reflect.Type
	isOID bool
}

var idCache sync.Map // reflect.Type → idField

var tOID = reflect.TypeFor[bson.ObjectID]()

// idFieldOf finds the field of t that the driver writes as the document's
// _id: a field whose bson key is "_id", at the top level or in a struct (or
// pointer to one) inlined with bson:",inline", at any depth. It follows
// the driver's struct codec: unexported and "-" fields are skipped, a
// struct embedded without the inline tag is a subdocument (its _id is not
// the document's), and the shallowest _id dominates; two at the same depth
// are refused, as the driver refuses them.
func idFieldOf(t reflect.Type) (idField, error) {
	if v, ok := idCache.Load(t); ok {
		return v.(idField), nil
	}
	if t.Kind() != reflect.Struct {
		return idField{}, fmt.Errorf("odm: %s is not a struct: writes of whole documents need a struct with an _id field", t)
	}
	var found []idField
	var embedded []string // structs embedded without the inline tag that hold an _id
	findID(t, nil, map[reflect.Type]bool{t: true}, &found, &embedded)
	if len(found) == 0 {
		hint := ""
		if len(embedded) > 0 {
			hint = fmt.Sprintf(" (%s is embedded without bson:\",inline\", so the driver stores it as a subdocument and its _id is not the document's: tag it bson:\",inline\")", embedded[0])
		}
		return idField{}, fmt.Errorf("odm: %s has no field tagged bson:\"_id\"%s: writes of whole documents need one", t, hint)
	}
	slices.SortStableFunc(found, func(a, b idField) int { return len(a.index) - len(b.index) })
	if len(found) > 1 && len(found[0].index) == len(found[1].index) {
		return idField{}, fmt.Errorf("odm: %s has two fields with the bson key \"_id\" at the same depth: writes of whole documents need one", t)
	}
	f := found[0]
	idCache.Store(t, f)
	return f, nil
}

// findID appends to found every _id field of struct type t (reached by
// index path at), through inlined structs; onPath guards against a type
// that inlines itself. Structs embedded without the inline tag that hold an
// _id are named in embedded, for the error's hint.
func findID(t reflect.Type, at []int, onPath map[reflect.Type]bool, found *[]idField, embedded *[]string) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" {
			continue // unexported, embedded or not: the driver skips it
		}
		tag := bsontag.Parse(sf)
		if tag.Skip {
			continue
		}
		index := append(slices.Clip(at), i)
		st := sf.Type
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if tag.Inline {
			if st.Kind() == reflect.Struct && !onPath[st] {
				onPath[st] = true
				findID(st, index, onPath, found, embedded)
				delete(onPath, st)
			}
			continue // an inline map's keys are the document's, never a field
		}
		if tag.Name == "_id" {
			*found = append(*found, idField{index: index, typ: sf.Type, isOID: sf.Type == tOID})
			continue
		}
		if sf.Anonymous && st.Kind() == reflect.Struct && !onPath[st] {
			var inner []idField
			onPath[st] = true
			findID(st, nil, onPath, &inner, new([]string))
			delete(onPath, st)
			if len(inner) > 0 {
				*embedded = append(*embedded, sf.Name)
			}
		}
	}
}

// documents reports why the collection cannot write whole documents (the
// handle is nil, or T is not a struct with an _id field), or nil: reads,
// aggregations and the writes by filter need no _id field.
func (c *Collection[T]) documents() error {
	if err := c.usable(); err != nil {
		return err
	}
	return c.idErr
}

// document is documents for a write of doc: a nil doc is refused with
// ErrNilModel (nothing is sent).
func (c *Collection[T]) document(doc *T) error {
	if err := c.documents(); err != nil {
		return err
	}
	if doc == nil {
		return fmt.Errorf("odm: %w: the document is a nil *%s", ErrNilModel, reflect.TypeFor[T]())
	}
	return nil
}

// ErrNoID is returned by a write that would store a document under an _id
// nobody chose: a nil pointer or interface, an empty string or an empty
// byte slice. (A zero ObjectID is different: it means "new", and odm
// assigns one.) Nothing is sent.
var ErrNoID = errors.New("odm: the document's _id is empty (nil, \"\" or no bytes); only a zero ObjectID is assigned one")

// assignID returns doc's _id for a write. A zero ObjectID is replaced by a
// new one (fresh is then true: the document is new, and the caller must
// clearID if the write is not made). Any other _id is the caller's, zero
// values such as 0 included, except values that cannot have been chosen
// (ErrNoID).
func (c *Collection[T]) assignID(doc *T) (id any, fresh bool, err error) {
	v := c.idValue(doc)
	if c.id.isOID {
		oid := v.Interface().(bson.ObjectID)
		if oid.IsZero() {
			oid = bson.NewObjectID()
			c.setID(doc, oid)
			return oid, true, nil
		}
		return oid, false, nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map:
		if v.IsNil() {
			return nil, false, ErrNoID
		}
	case reflect.String, reflect.Slice:
		if v.Len() == 0 {
			return nil, false, ErrNoID
		}
	}
	return v.Interface(), false, nil
}

// clearID puts back the zero ObjectID that assignID replaced.
func (c *Collection[T]) clearID(doc *T) { c.setID(doc, bson.ObjectID{}) }

// keepID reports whether a fresh id must stay in the document after a
// write that returned err: when the write may have stored it (it did, or
// its outcome is unknown, so that a retry upserts the same document).
func keepID(err error) bool {
	return err == nil || outcome.Of(err) == outcome.Unknown
}

// idValue is doc's _id field, to read. A nil pointer to an inlined struct
// on the way holds no _id (the driver writes none from it): the zero value
// of the field's type is returned.
func (c *Collection[T]) idValue(doc *T) reflect.Value {
	v := reflect.ValueOf(doc).Elem()
	for i, x := range c.id.index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Zero(c.id.typ)
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// idSettable is doc's _id field, to set: a nil pointer to an inlined
// struct on the way is allocated first, as the driver's decoder does.
func (c *Collection[T]) idSettable(doc *T) reflect.Value {
	v := reflect.ValueOf(doc).Elem()
	for i, x := range c.id.index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func (c *Collection[T]) idIsZero(doc *T) bool { return c.idValue(doc).IsZero() }

func (c *Collection[T]) setID(doc *T, id bson.ObjectID) { c.idSettable(doc).Set(reflect.ValueOf(id)) }

func (c *Collection[T]) idOf(doc *T) any { return c.idValue(doc).Interface() }
