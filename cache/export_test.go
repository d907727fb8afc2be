package cache

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/databridge-go/databridge/internal/cachecore"
)

// Core returns c's implementation, for the tests that drive it below the
// public API (Fetch with a hand-made load, Unsettled, Wait).
func Core(c *Cache) *cachecore.Cache { return c.core }

// Observed returns load, marked as seen by a command monitor (as a real
// client's monitor marks a load's first command): the hand-made loads of
// these tests send no command, and a load no monitor saw is not stored.
func Observed(load cachecore.LoadFunc) cachecore.LoadFunc {
	return func(ctx context.Context) ([]bson.Raw, error) {
		cachecore.SeenByMonitor(ctx)
		return load(ctx)
	}
}
