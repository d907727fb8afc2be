package odm

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/bsontag"
	"github.com/databridge-go/databridge/internal/outcome"
)

// idField locates the _id field of a model type.
type idField struct {
	index []int
	typ   reflect.Type
	isOID bool
}

var idCache sync.Map // reflect.Type → idField

var tOID = reflect.TypeFor[bson.ObjectID]()

func idFieldOf(t reflect.Type) (idField, error) {
	if v, ok := idCache.Load(t); ok {
		return v.(idField), nil
	}
	if t.Kind() != reflect.Struct {
		return idField{}, fmt.Errorf("odm: %s is not a struct: writes of whole documents need a struct with an _id field", t)
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" {
			continue
		}
		if tag := bsontag.Parse(sf); !tag.Skip && !tag.Inline && tag.Name == "_id" {
			f := idField{index: sf.Index, typ: sf.Type, isOID: sf.Type == tOID}
			idCache.Store(t, f)
			return f, nil
		}
	}
	return idField{}, fmt.Errorf("odm: %s has no field tagged bson:\"_id\": writes of whole documents need one", t)
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
			v.Set(reflect.ValueOf(oid))
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

// idValue is doc's _id field.
func (c *Collection[T]) idValue(doc *T) reflect.Value {
	return reflect.ValueOf(doc).Elem().FieldByIndex(c.id.index)
}

func (c *Collection[T]) idIsZero(doc *T) bool { return c.idValue(doc).IsZero() }

func (c *Collection[T]) setID(doc *T, id bson.ObjectID) { c.idValue(doc).Set(reflect.ValueOf(id)) }

func (c *Collection[T]) idOf(doc *T) any { return c.idValue(doc).Interface() }
