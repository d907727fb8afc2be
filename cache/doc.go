// Package cache is databridge's in-process query-result cache.
package cache
