package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/cache"
	"github.com/databridge-go/databridge/internal/testdb"
	"github.com/databridge-go/databridge/odm"
	"github.com/databridge-go/databridge/query"
)

// TestEmptyResultIsTheSameCachedOrNot: a read that finds nothing returns
// nil, cached (miss or hit) as uncached. On 09ccb81 the cached read
// returned an empty, non-nil slice (found by the concurrent stale-read
// checker, which compares the two).
func TestEmptyResultIsTheSameCachedOrNot(t *testing.T) {
	coll := testdb.DB(t).Collection("empty")
	c := newCache(t, cache.Config{})
	h := handle[Order](t, coll, odm.WithCache(c))
	for _, o := range [][]query.ReadOption{nil, {query.Cached(time.Minute)}, {query.Cached(time.Minute)}} {
		got, err := h.FindMany(context.Background(), query.Eq("x", 1), o...)
		require.NoError(t, err)
		assert.Nil(t, got)
	}
}
