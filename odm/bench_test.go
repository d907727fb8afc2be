package odm_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/benchdata"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
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
		benchNewSmalls(b, func(users *odm.Collection[benchdata.Small], u *benchdata.Small) error {
			return users.Save(ctx, u, odm.WithoutValidation(), odm.WithoutHooks())
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
	b.Run("lib=databridge-insert", func(b *testing.B) {
		benchNewSmalls(b, func(users *odm.Collection[benchdata.Small], u *benchdata.Small) error {
			return users.Insert(ctx, u)
		})
	})
	b.Run("lib=driver", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverInsertOne(benchColl(b))) })
}

// BenchmarkInsertOneWithDeadline is BenchmarkInsertOne's fast path and
// driver rows under a caller's deadline, as in a service whose request
// context has one: odm then adds no deadline of its own, and the driver
// does its timeout work (maxTimeMS, its round-trip statistics) for both.
func BenchmarkInsertOneWithDeadline(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.Run("lib=databridge-fast", func(b *testing.B) {
		benchNewSmalls(b, func(users *odm.Collection[benchdata.Small], u *benchdata.Small) error {
			return users.Save(ctx, u, odm.WithoutValidation(), odm.WithoutHooks())
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

// BenchmarkUpdateOneByID increments a field of one of 1,000 documents by
// _id: odm's UpdateOne against the driver's, same filter and update.
func BenchmarkUpdateOneByID(b *testing.B) {
	ctx := context.Background()
	coll := benchColl(b)
	docs := benchdata.NewSmalls(0, 1000)
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		b.Fatal(err)
	}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}}
	b.Run("lib=databridge", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](coll)
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		benchdata.Measure(b, func() error {
			i++
			_, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: docs[i%len(docs)].ID}}, update)
			return err
		})
	})
	b.Run("lib=driver", func(b *testing.B) {
		i := 0
		benchdata.Measure(b, func() error {
			i++
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: docs[i%len(docs)].ID}}, update)
			return err
		})
	})
}

// benchNewSmalls measures write, given a new small document with a zero
// _id (odm assigns one) per op.
func benchNewSmalls(b *testing.B, write func(*odm.Collection[benchdata.Small], *benchdata.Small) error) {
	users, err := odm.New[benchdata.Small](benchColl(b))
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	benchdata.Measure(b, func() error {
		u := benchdata.NewSmall(i)
		u.ID = bson.ObjectID{}
		i++
		return write(users, &u)
	})
}

// BenchmarkInsertMany inserts 1000 fresh small documents per op: with ids
// the caller set (ids=set) and with zero ids that odm assigns
// (ids=generated), against the driver's InsertMany of documents with ids.
// Both bulk benchmarks report caller-cpu-ns/op beside cpu-ns/op: the CPU of
// the calling goroutine's thread alone (see benchdata.MeasureCaller).
func BenchmarkInsertMany(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	for _, ids := range []string{"set", "generated"} {
		b.Run("docs=1000/ids="+ids+"/lib=databridge", func(b *testing.B) {
			users, err := odm.New[benchdata.Small](benchColl(b))
			if err != nil {
				b.Fatal(err)
			}
			benchdata.MeasureCaller(b, func() error {
				docs := benchdata.NewSmalls(0, n)
				if ids == "generated" {
					for i := range docs {
						docs[i].ID = bson.ObjectID{} // new documents: odm assigns the ids
					}
				}
				return users.InsertMany(ctx, docs)
			})
		})
	}
	b.Run("docs=1000/ids=set/lib=driver", func(b *testing.B) { benchdata.MeasureCallerOp(b, benchdata.DriverInsertMany(benchColl(b), n)) })
}

// BenchmarkBulkSave upserts 1000 documents with fresh _ids per op (on
// FerretDB v1.24, an update command with 100 or more statements matching
// existing documents deadlocks the server: see docs/ferretdb.md).
func BenchmarkBulkSave(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	b.Run("docs=1000/lib=databridge", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](benchColl(b))
		if err != nil {
			b.Fatal(err)
		}
		benchdata.MeasureCaller(b, func() error {
			return users.BulkSave(ctx, benchdata.NewSmalls(0, n), odm.WithoutValidation(), odm.WithoutHooks())
		})
	})
	b.Run("docs=1000/lib=driver", func(b *testing.B) { benchdata.MeasureCallerOp(b, benchdata.DriverBulkSave(benchColl(b), n)) })
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
	b.Run("docs=1000/lib=databridge", func(b *testing.B) {
		users, err := odm.New[benchdata.Small](seed(b))
		if err != nil {
			b.Fatal(err)
		}
		benchdata.Measure(b, func() error {
			res, err := users.UpdateMany(ctx, bson.D{}, benchdata.IncAge)
			if err != nil {
				return err
			}
			return benchdata.Count(int(res.MatchedCount), 1000)
		})
	})
	b.Run("docs=1000/lib=driver", func(b *testing.B) { benchdata.MeasureOp(b, benchdata.DriverUpdateMany(seed(b), 1000)) })
}

// BenchmarkFindOneAndUpdate: odm's typed FindOneAndUpdate (returning the
// document after) against the driver's FindOneAndUpdate + Decode, on one
// document by _id.
//
//	go test ./odm -run '^$' -bench BenchmarkFindOneAndUpdate -count 6 | benchstat -col /lib -
func BenchmarkFindOneAndUpdate(b *testing.B) {
	ctx := context.Background()
	coll := benchColl(b)
	doc := benchdata.NewSmall(1)
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		b.Fatal(err)
	}
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}}
	filter := bson.D{{Key: "_id", Value: doc.ID}}
	users, err := odm.New[benchdata.Small](coll)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("lib=databridge", func(b *testing.B) {
		benchdata.Measure(b, func() error {
			_, err := users.FindOneAndUpdate(ctx, filter, inc, odm.ReturnAfter())
			return err
		})
	})
	b.Run("lib=driver", func(b *testing.B) {
		o := options.FindOneAndUpdate().SetReturnDocument(options.After)
		benchdata.Measure(b, func() error {
			var v benchdata.Small
			return coll.FindOneAndUpdate(ctx, filter, inc, o).Decode(&v)
		})
	})
}

// BenchmarkCachedHitFilter is a cached FindMany served from the cache, by
// the shape of its filter: a bson.D, and a bson.M of three fields (whose
// encoding for the server is pinned, see stable.go, only when a load needs
// it: a hit pays nothing for it).
//
//	go test ./odm -run '^$' -bench BenchmarkCachedHitFilter -count 6 | benchstat -col /filter -
func BenchmarkCachedHitFilter(b *testing.B) {
	coll := benchColl(b)
	ctx := context.Background()
	c, err := cache.New(cache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	h, err := odm.New[benchdata.Small](coll, odm.WithCache(c))
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		filter any
	}{
		{"bson.D", bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 18}}}, {Key: "name", Value: bson.D{{Key: "$exists", Value: true}}}, {Key: "x", Value: bson.D{{Key: "$exists", Value: false}}}}},
		{"bson.M", bson.M{"age": bson.M{"$gte": 18}, "name": bson.M{"$exists": true}, "x": bson.M{"$exists": false}}},
	} {
		b.Run("filter="+tt.name, func(b *testing.B) {
			if _, err := h.FindMany(ctx, tt.filter, query.Cached(time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.FindMany(ctx, tt.filter, query.Cached(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
