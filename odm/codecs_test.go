package odm_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

// Email is stored with a "mailto:" prefix by the test registry's encoder.
type Email string

type Member struct {
	ID    bson.ObjectID `bson:"_id"`
	Name  string        `bson:"name"`
	Email Email         `bson:"email"`
	Nick  *string       `bson:"nick"`
	Tags  []string      `bson:"tags"`
	N     int64         `bson:"n"`
}

// TestWritesStoreWhatTheDriverStores: with a client whose registry encodes
// Email its own way and whose BSON options change encoding, every write
// path (the fast-path Save, Save, Insert, InsertMany without hooks,
// BulkSave) stores what the driver's InsertOne of the same struct stores.
// On 16a31ad the compiled encoder (fast-path Save, InsertMany, BulkSave)
// ignored the codec and the options: one struct, two stored forms.
func TestWritesStoreWhatTheDriverStores(t *testing.T) {
	reg := bson.NewRegistry()
	reg.RegisterTypeEncoder(reflect.TypeFor[Email](), bson.ValueEncoderFunc(func(_ bson.EncodeContext, vw bson.ValueWriter, v reflect.Value) error {
		return vw.WriteString("mailto:" + v.String())
	}))
	for name, bo := range map[string]*options.BSONOptions{
		"registry":                              nil,
		"registry, IntMinSize, NilSliceAsEmpty": {IntMinSize: true, NilSliceAsEmpty: true},
		// Each encoding option alone, with the registry.
		"ErrorOnInlineDuplicates": {ErrorOnInlineDuplicates: true},
		"IntMinSize":              {IntMinSize: true},
		"NilByteSliceAsEmpty":     {NilByteSliceAsEmpty: true},
		"NilMapAsEmpty":           {NilMapAsEmpty: true},
		"NilSliceAsEmpty":         {NilSliceAsEmpty: true},
		"OmitZeroStruct":          {OmitZeroStruct: true},
		"OmitEmpty":               {OmitEmpty: true},
		"StringifyMapKeysWithFmt": {StringifyMapKeysWithFmt: true},
		"UseJSONStructTags":       {UseJSONStructTags: true},
	} {
		t.Run(name, func(t *testing.T) {
			opts := options.Client().ApplyURI(testdb.URI()).SetRegistry(reg).SetBSONOptions(bo)
			cl := testdb.NewClient(t, opts)
			db := testdb.DBOn(t, cl)
			ctx := context.Background()
			stored := func(coll string) []bson.Raw {
				// Read back through the shared default client: the bytes as stored.
				cur, err := testdb.Client(t).Database(db.Name()).Collection(coll).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}}))
				require.NoError(t, err)
				var out []bson.Raw
				for cur.Next(ctx) {
					out = append(out, append(bson.Raw(nil), cur.Current...))
				}
				require.NoError(t, cur.Err())
				return out
			}
			member := func() Member { return Member{Name: "Ada", Email: "ada@x.org", N: 3} }

			// The driver's own write of the struct: the reference.
			ref := member()
			ref.ID = bson.NewObjectID()
			_, err := db.Collection("driver").InsertOne(ctx, &ref)
			require.NoError(t, err)
			want := stored("driver")
			require.Len(t, want, 1)
			email, _ := want[0].Lookup("email").StringValueOK()
			require.Equal(t, "mailto:ada@x.org", email)

			writes := map[string]func(c *odm.Collection[Member]) error{
				"fast-path Save": func(c *odm.Collection[Member]) error {
					m := member()
					return c.Save(ctx, &m, odm.WithoutHooks(), odm.WithoutValidation())
				},
				"Save":   func(c *odm.Collection[Member]) error { m := member(); return c.Save(ctx, &m) },
				"Insert": func(c *odm.Collection[Member]) error { m := member(); return c.Insert(ctx, &m) },
				"InsertMany without hooks": func(c *odm.Collection[Member]) error {
					return c.InsertMany(ctx, []Member{member()}, odm.WithoutHooks())
				},
				"BulkSave": func(c *odm.Collection[Member]) error { return c.BulkSave(ctx, []Member{member()}) },
			}
			for wname, write := range writes {
				coll := "w" + string(rune('a'+len(wname)%26)) + wname[:3]
				c, err := odm.New[Member](db.Collection(coll), odm.WithBSON(reg, bo))
				require.NoError(t, err)
				require.NoError(t, write(c), wname)
				got := stored(coll)
				require.Len(t, got, 1, wname)
				assert.Equal(t, want[0].String(), got[0].String(), wname)
			}
		})
	}
}
