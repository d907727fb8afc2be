package cache

import "github.com/databridge-go/databridge/internal/cachecore"

// Core returns c's implementation, for the tests that drive it below the
// public API (Fetch with a hand-made load, Unsettled, Wait).
func Core(c *Cache) *cachecore.Cache { return c.core }
