package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/internal/testdb"
)

// TestQuickstart runs the README's example against the dev server.
// It runs twice on one database: each run prints the same.
func TestQuickstart(t *testing.T) {
	db := testdb.DB(t)
	for range 2 {
		var out strings.Builder
		require.NoError(t, run(context.Background(), db, &out))
		assert.Equal(t, "Grace is 40\nBarbara is 50\n3 users\n", out.String())
	}
}
