package odm_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

// ValidSmall is benchdata.Small with a no-op hook and a validator, for the
// default (safe) path.
type ValidSmall benchdata.Small

func (v *ValidSmall) BeforeSave(context.Context) error { return nil }
func (v *ValidSmall) Validate() error                  { return nil }

var (
	_ odm.BeforeSaveHook = (*ValidSmall)(nil)
	_ odm.Validator      = (*ValidSmall)(nil)
)

func benchColl(b *testing.B) *mongo.Collection {
	b.Helper()
	return testdb.DB(b).Collection("bench")
}

func BenchmarkInsertOne(b *testing.B) {
	ctx := context.Background()
	b.Run("lib=databridge-fast", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](benchColl(b))
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		benchdata.Measure(b, func() error {
			u := benchdata.NewSmall(i)
			u.ID = bson.ObjectID{}
			i++
			return users.Save(ctx, &u, odm.WithoutValidation(), odm.WithoutHooks())
		})
	})
	b.Run("lib=databridge", func(b *testing.B) {
		users, err := odm.New[ValidSmall](benchColl(b))
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		benchdata.Measure(b, func() error {
			u := ValidSmall(benchdata.NewSmall(i))
			u.ID = bson.ObjectID{}
			i++
			return users.Save(ctx, &u)
		})
	})
	b.Run("lib=driver", func(b *testing.B) {
		coll := benchColl(b)
		i := 0
		benchdata.Measure(b, func() error {
			u := benchdata.NewSmall(i)
			i++
			_, err := coll.InsertOne(ctx, &u)
			return err
		})
	})
}

func BenchmarkInsertMany(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	fresh := func() []benchdata.Small {
		docs := make([]benchdata.Small, n)
		for i := range docs {
			docs[i] = benchdata.NewSmall(i)
		}
		return docs
	}
	b.Run("docs=1000/lib=databridge", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](benchColl(b))
		if err != nil {
			b.Fatal(err)
		}
		benchdata.Measure(b, func() error {
			docs := fresh()
			for i := range docs {
				docs[i].ID = bson.ObjectID{} // new documents: odm assigns the ids
			}
			return users.InsertMany(ctx, docs)
		})
	})
	b.Run("docs=1000/lib=driver", func(b *testing.B) {
		coll := benchColl(b)
		benchdata.Measure(b, func() error {
			docs := fresh()
			_, err := coll.InsertMany(ctx, docs)
			return err
		})
	})
}

// BenchmarkBulkSave upserts 1000 documents with fresh _ids per op (on
// FerretDB v1.24, an update command with 100 or more statements matching
// existing documents deadlocks the server: see docs/ferretdb.md).
func BenchmarkBulkSave(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	fresh := func() []benchdata.Small {
		docs := make([]benchdata.Small, n)
		for i := range docs {
			docs[i] = benchdata.NewSmall(i)
		}
		return docs
	}
	b.Run("docs=1000/lib=databridge", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](benchColl(b))
		if err != nil {
			b.Fatal(err)
		}
		benchdata.Measure(b, func() error { return users.BulkSave(ctx, fresh(), odm.WithoutValidation(), odm.WithoutHooks()) })
	})
	b.Run("docs=1000/lib=driver", func(b *testing.B) {
		coll := benchColl(b)
		benchdata.Measure(b, func() error {
			docs := fresh()
			models := make([]mongo.WriteModel, len(docs))
			for i := range docs {
				models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: docs[i].ID}}).SetReplacement(&docs[i]).SetUpsert(true)
			}
			_, err := coll.BulkWrite(ctx, models)
			return err
		})
	})
}

func BenchmarkUpdateMany(b *testing.B) {
	ctx := context.Background()
	seed := func(b *testing.B) *mongo.Collection {
		coll := benchColl(b)
		if err := benchdata.Seed(ctx, coll, "small", 1000); err != nil {
			b.Fatal(err)
		}
		return coll
	}
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}}
	b.Run("docs=1000/lib=databridge", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](seed(b))
		if err != nil {
			b.Fatal(err)
		}
		benchdata.Measure(b, func() error {
			res, err := users.UpdateMany(ctx, nil, inc)
			if err == nil && res.Matched != 1000 {
				b.Fatalf("matched %d", res.Matched)
			}
			return err
		})
	})
	b.Run("docs=1000/lib=driver", func(b *testing.B) {
		coll := seed(b)
		benchdata.Measure(b, func() error {
			_, err := coll.UpdateMany(ctx, bson.D{}, inc, options.UpdateMany())
			return err
		})
	})
}
