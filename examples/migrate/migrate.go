// Package migrate shows one read path written with the official driver and
// the same path with databridge, side by side; docs/migration.md quotes it
// and its test checks that both return the same users.
package migrate

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// User is the model; its bson tags are unchanged by the migration.
type User struct {
	ID    bson.ObjectID `bson:"_id"`
	Name  string        `bson:"name"`
	Email string        `bson:"email"`
	Age   int           `bson:"age"`
}

// AdultsWithDriver is the driver version: Find, then cursor.All.
func AdultsWithDriver(ctx context.Context, users *mongo.Collection, minAge int) ([]User, error) {
	cur, err := users.Find(ctx,
		bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: minAge}}}},
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}}).SetLimit(100))
	if err != nil {
		return nil, err
	}
	var out []User
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AdultsWithDatabridge is the same read with databridge: the collection's
// typed handle (odm.New, once at start-up), the same filter semantics, the
// same result type.
func AdultsWithDatabridge(ctx context.Context, users *odm.Collection[User], minAge int) ([]User, error) {
	return users.FindMany(ctx,
		query.Gte("age", minAge),
		query.Sort(bson.D{{Key: "name", Value: 1}}), query.Limit(100))
}

// EachAdult streams instead of collecting: the loop form of the same read.
func EachAdult(ctx context.Context, users *odm.Collection[User], minAge int, fn func(User)) error {
	for u, err := range users.Iter(ctx, query.Gte("age", minAge)) {
		if err != nil {
			return err
		}
		fn(u)
	}
	return nil
}
