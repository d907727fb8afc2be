package odm_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/odm"
)

// indexed declares an index, so that EnsureIndexes has work to refuse.
type indexed struct {
	ID   bson.ObjectID `bson:"_id"`
	Name string        `bson:"name"`
}

func (indexed) Indexes() []mongo.IndexModel {
	return []mongo.IndexModel{{Keys: bson.D{{Key: "name", Value: 1}}}}
}

// TestNilCollection: New of a nil *mongo.Collection, and every method of a
// nil *Collection or a zero Collection, return ErrNilCollection instead of
// panicking (41 calls made 30 panics before), and iterators yield it once.
func TestNilCollection(t *testing.T) {
	ctx := context.Background()
	t.Run("New", func(t *testing.T) {
		var h *odm.Collection[indexed]
		var err error
		require.NotPanics(t, func() { h, err = odm.New[indexed](nil) })
		require.ErrorIs(t, err, odm.ErrNilCollection)
		assert.Nil(t, h)
	})

	f := bson.D{{Key: "name", Value: "a"}}
	set := bson.D{{Key: "$set", Value: f}}
	calls := []struct {
		name string
		call func(c *odm.Collection[indexed]) error
	}{
		{"Iter", func(c *odm.Collection[indexed]) error {
			var errs []error
			n := 0
			for _, err := range c.Iter(ctx, f) {
				n++
				errs = append(errs, err)
			}
			require.Len(t, errs, 1, "the error is yielded once")
			return errs[0]
		}},
		{"Cursor", func(c *odm.Collection[indexed]) error { _, err := c.Cursor(ctx, f); return err }},
		{"FindMany", func(c *odm.Collection[indexed]) error { _, err := c.FindMany(ctx, f); return err }},
		{"FindOne", func(c *odm.Collection[indexed]) error { _, err := c.FindOne(ctx, f); return err }},
		{"Count", func(c *odm.Collection[indexed]) error { _, err := c.Count(ctx, f); return err }},
		{"EstimatedCount", func(c *odm.Collection[indexed]) error { _, err := c.EstimatedCount(ctx); return err }},
		{"Save", func(c *odm.Collection[indexed]) error { return c.Save(ctx, &indexed{}) }},
		{"Save fast path", func(c *odm.Collection[indexed]) error {
			return c.Save(ctx, &indexed{}, odm.WithoutHooks(), odm.WithoutValidation())
		}},
		{"Insert", func(c *odm.Collection[indexed]) error { return c.Insert(ctx, &indexed{}) }},
		{"Replace", func(c *odm.Collection[indexed]) error { return c.Replace(ctx, &indexed{ID: bson.NewObjectID()}) }},
		{"Delete", func(c *odm.Collection[indexed]) error { return c.Delete(ctx, &indexed{ID: bson.NewObjectID()}) }},
		{"InsertMany", func(c *odm.Collection[indexed]) error { return c.InsertMany(ctx, []indexed{{}}) }},
		{"BulkSave", func(c *odm.Collection[indexed]) error { return c.BulkSave(ctx, []indexed{{}}) }},
		{"BulkWrite", func(c *odm.Collection[indexed]) error {
			_, err := c.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(&indexed{}), mongo.NewDeleteOneModel().SetFilter(f)})
			return err
		}},
		{"UpdateOne", func(c *odm.Collection[indexed]) error { _, err := c.UpdateOne(ctx, f, set); return err }},
		{"UpdateMany", func(c *odm.Collection[indexed]) error { _, err := c.UpdateMany(ctx, f, set); return err }},
		{"DeleteOne", func(c *odm.Collection[indexed]) error { _, err := c.DeleteOne(ctx, f); return err }},
		{"DeleteMany", func(c *odm.Collection[indexed]) error { _, err := c.DeleteMany(ctx, f); return err }},
		{"FindOneAndUpdate", func(c *odm.Collection[indexed]) error { _, err := c.FindOneAndUpdate(ctx, f, set); return err }},
		{"FindOneAndReplace", func(c *odm.Collection[indexed]) error {
			_, err := c.FindOneAndReplace(ctx, f, &indexed{})
			return err
		}},
		{"FindOneAndDelete", func(c *odm.Collection[indexed]) error { _, err := c.FindOneAndDelete(ctx, f); return err }},
		{"EnsureIndexes", func(c *odm.Collection[indexed]) error { return c.EnsureIndexes(ctx) }},
		{"Aggregate", func(c *odm.Collection[indexed]) error {
			_, err := odm.Aggregate[bson.M](ctx, c, bson.A{bson.D{{Key: "$match", Value: f}}})
			return err
		}},
		{"AggregateCursor", func(c *odm.Collection[indexed]) error {
			_, err := odm.AggregateCursor[bson.M](ctx, c, bson.A{})
			return err
		}},
		{"Distinct", func(c *odm.Collection[indexed]) error {
			_, err := odm.Distinct[string](ctx, c, "name", f)
			return err
		}},
	}
	handles := []struct {
		name string
		give *odm.Collection[indexed]
	}{
		{"nil", nil},
		{"zero value", &odm.Collection[indexed]{}},
	}
	for _, h := range handles {
		for _, tt := range calls {
			t.Run(h.name+"/"+tt.name, func(t *testing.T) {
				var err error
				require.NotPanics(t, func() { err = tt.call(h.give) })
				require.ErrorIs(t, err, odm.ErrNilCollection)
			})
		}
	}
}
