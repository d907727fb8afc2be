package cache_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/databridge-go/databridge/odm"
)

// handle returns the typed handle of coll for a test.
func handle[T any](tb testing.TB, coll *mongo.Collection, opts ...odm.Option) *odm.Collection[T] {
	tb.Helper()
	h, err := odm.New[T](coll, opts...)
	require.NoError(tb, err)
	return h
}
