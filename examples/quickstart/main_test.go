package main

import (
	"context"
	"net"
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

// TestConnectErrors: the quickstart's failure says what the driver said,
// never prints the password, and suggests the dev server only when nothing
// listens. On d78d092 every failure printed the URI with its password and
// "start the dev server", hiding the driver's error.
func TestConnectErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	_, err = connect("mongodb://bob:s3cret@" + closed + "/?directConnection=true")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Contains(t, err.Error(), "bob:xxxxx@")
	assert.Contains(t, err.Error(), "connection refused", "the driver's error")
	assert.Contains(t, err.Error(), "make devserver")

	// A URI the driver refuses: its error, not a hint to start a server.
	_, err = connect("mongodb://bob:s3cret@localhost/?replicaSet=a&directConnection=true&tls=maybe")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.NotContains(t, err.Error(), "make devserver")

	assert.Equal(t, "mongodb://a:1,b:2/db", redact("mongodb://a:1,b:2/db"))
	assert.Equal(t, "mongodb+srv://u:xxxxx@h/db?x=y", redact("mongodb+srv://u:p@ss@h/db?x=y"))
}
