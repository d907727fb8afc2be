package migrate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/examples/migrate"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
)

func TestBothVersionsAgree(t *testing.T) {
	coll := testdb.DB(t).Collection("users")
	ctx := context.Background()
	for i := range 30 {
		_, err := coll.InsertOne(ctx, migrate.User{ID: bson.NewObjectID(), Name: fmt.Sprintf("u%02d", i), Email: "e", Age: i})
		require.NoError(t, err)
	}
	want, err := migrate.AdultsWithDriver(ctx, coll, 18)
	require.NoError(t, err)
	users, err := odm.New[migrate.User](coll)
	require.NoError(t, err)
	got, err := migrate.AdultsWithDatabridge(ctx, users, 18)
	require.NoError(t, err)
	require.Len(t, want, 12)
	assert.Equal(t, want, got)

	n := 0
	require.NoError(t, migrate.EachAdult(ctx, users, 18, func(migrate.User) { n++ }))
	assert.Equal(t, 12, n)
}
