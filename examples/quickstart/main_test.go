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
func TestQuickstart(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(context.Background(), testdb.DB(t), &out))
	assert.Equal(t, "Grace is 40\nBarbara is 50\n3 users\n", out.String())
}
