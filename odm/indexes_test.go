package odm_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

type Indexed struct {
	ID    bson.ObjectID `bson:"_id"`
	Email string        `bson:"email"`
	Team  string        `bson:"team"`
}

var _ odm.Indexer = Indexed{}

func (Indexed) Indexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true).SetName("email_unique")},
		{Keys: bson.D{{Key: "team", Value: 1}, {Key: "email", Value: 1}}},
	}
}

// TestEnsureIndexes creates the declared indexes, is idempotent, and
// reports an index that exists in another form as an IndexConflictError.
func TestEnsureIndexes(t *testing.T) {
	coll := testdb.DB(t).Collection("indexed")
	ctx := context.Background()
	c, err := odm.New[Indexed](coll)
	require.NoError(t, err)
	require.NoError(t, c.EnsureIndexes(ctx))
	require.NoError(t, c.EnsureIndexes(ctx), "idempotent")
	specs, err := coll.Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	assert.True(t, names["email_unique"])
	assert.True(t, names["team_1_email_1"])
	require.NoError(t, c.Insert(ctx, &Indexed{Email: "a@x"}))
	assert.True(t, mongo.IsDuplicateKeyError(c.Insert(ctx, &Indexed{Email: "a@x"})), "the unique index is in force")

	// The same name with other options.
	other := testdb.DB(t).Collection("conflict")
	_, err = other.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetName("email_unique")})
	require.NoError(t, err)
	oc, err := odm.New[Indexed](other)
	require.NoError(t, err)
	err = oc.EnsureIndexes(ctx)
	var ice *odm.IndexConflictError
	if !assert.ErrorAs(t, err, &ice) {
		return
	}
	assert.Equal(t, "conflict", ice.Collection)
	specs, err = other.Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	assert.Len(t, specs, 3, "_id, the old email index, and the other declaration, created anyway")

	// A type without declarations: nothing to do.
	plain, err := odm.New[User](testdb.DB(t).Collection("plain"))
	require.NoError(t, err)
	assert.NoError(t, plain.EnsureIndexes(ctx))
}
