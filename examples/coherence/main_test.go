package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/databridge-go/databridge/internal/leakcheck"
	"github.com/databridge-go/databridge/internal/testdb"
)

// TestCoherence runs the example against the dev server, each replica on a
// client of its own.
func TestCoherence(t *testing.T) {
	leakcheck.Check(t, 10*time.Second)
	dbA := testdb.DB(t)
	dbB := testdb.NewClient(t).Database(dbA.Name())
	var out strings.Builder
	require.NoError(t, run(context.Background(), dbA, dbB, &out))
	assert.Equal(t, "A reads 10\nB writes 12\nA reads 12\n", out.String())
}
