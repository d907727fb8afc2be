package odm_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// Mail has codecs of its own in the test registry: "mailto:" is added on
// encode, and decoding lower-cases.
type Mail string

func mailRegistry() *bson.Registry {
	reg := bson.NewRegistry()
	t := reflect.TypeFor[Mail]()
	reg.RegisterTypeEncoder(t, bson.ValueEncoderFunc(func(_ bson.EncodeContext, vw bson.ValueWriter, v reflect.Value) error {
		return vw.WriteString("mailto:" + v.String())
	}))
	reg.RegisterTypeDecoder(t, bson.ValueDecoderFunc(func(_ bson.DecodeContext, vr bson.ValueReader, v reflect.Value) error {
		s, err := vr.ReadString()
		if err != nil {
			return err
		}
		v.SetString(strings.ToLower(s))
		return nil
	}))
	reg.RegisterTypeMapEntry(bson.TypeEmbeddedDocument, reflect.TypeFor[bson.M]())
	return reg
}

type Contact struct {
	ID    int       `bson:"_id"`
	Name  string    `bson:"name"`
	Email Mail      `bson:"email"`
	At    time.Time `bson:"at"`
	Meta  any       `bson:"meta"`
	Tags  []string  `bson:"tags"`
}

// TestClientCodecs connects a client with a registry (a type codec and a
// type-map entry) and BSON options, declares them with odm.WithBSON, and
// reads through every path: each gives what the
// driver's own cursor gives for that client. On 16a31ad databridge decoded
// with the default registry (the raw email, bson.D documents, UTC times).
func TestClientCodecs(t *testing.T) {
	opts := options.Client().ApplyURI(testdb.URI()).SetRegistry(mailRegistry()).
		SetBSONOptions(&options.BSONOptions{UseLocalTimeZone: true, DefaultDocumentM: true})
	cl := testdb.NewClient(t, opts)
	coll := testdb.DBOn(t, cl).Collection("people")
	ctx := context.Background()
	_, err := coll.Database().Collection("people").InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "Ada"}, {Key: "email", Value: "ADA@X.ORG"}, {Key: "at", Value: bson.DateTime(1_700_000_000_000)}, {Key: "meta", Value: bson.D{{Key: "k", Value: bson.D{{Key: "v", Value: 1}}}}}, {Key: "tags", Value: bson.A{"a"}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "name", Value: "Grace"}, {Key: "email", Value: "Grace@Y.Org"}, {Key: "at", Value: bson.DateTime(0)}},
	})
	require.NoError(t, err)

	// The driver's own reading, for this client.
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var want []Contact
	require.NoError(t, cur.All(ctx, &want))
	require.Len(t, want, 2)
	require.Equal(t, Mail("ada@x.org"), want[0].Email, "the registry's decoder")
	require.IsType(t, bson.M{}, want[0].Meta, "the type map / DefaultDocumentM")
	require.Equal(t, time.Local, want[0].At.Location())

	c, err := cache.New(cache.Config{})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	h := handle[Contact](t, coll, odm.WithCache(c), odm.WithBSON(opts.Registry, opts.BSONOptions))
	sort := query.Sort(bson.D{{Key: "_id", Value: 1}})

	got, err := h.FindMany(ctx, nil, sort)
	require.NoError(t, err)
	assert.Equal(t, want, got, "FindMany")

	var iterated []Contact
	for p, err := range h.Iter(ctx, nil, sort, query.BatchSize(1)) {
		require.NoError(t, err)
		iterated = append(iterated, p)
	}
	assert.Equal(t, want, iterated, "Iter over getMores")

	one, err := h.FindOne(ctx, query.Eq("_id", 1))
	require.NoError(t, err)
	assert.Equal(t, want[0], one, "FindOne")

	for range 2 {
		cached, err := h.FindMany(ctx, nil, sort, query.Cached(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, want, cached, "cached FindMany (miss, then hit)")
	}

	// A handle without the declaration reads the stored bytes as they are.
	plain := handle[Contact](t, coll)
	def, err := plain.FindOne(ctx, query.Eq("_id", 1))
	require.NoError(t, err)
	assert.Equal(t, Mail("ADA@X.ORG"), def.Email)
	assert.IsType(t, bson.D{}, def.Meta)
}
