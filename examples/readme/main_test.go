package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/internal/testdb"
)

// TestReadme runs the README's example against the test server, twice:
// the second run's cached read starts from a fresh cache and prints the
// same.
func TestReadme(t *testing.T) {
	db := testdb.DB(t)
	for range 2 {
		var out strings.Builder
		require.NoError(t, run(context.Background(), db, &out))
		assert.Equal(t, "Grace is 40\nBarbara is 50\n3 users\n", out.String())
	}
}
