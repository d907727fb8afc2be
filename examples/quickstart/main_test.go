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
}

// TestStartHint: the hint names the address the URI names. On fe625ca it
// said `make devserver` whatever the port, which starts a server on
// 127.0.0.1:27017 that a URI naming another port never reaches.
func TestStartHint(t *testing.T) {
	tests := []struct {
		give string
		want string // the command the hint names; "" for none
	}{
		{give: "mongodb://127.0.0.1:27017", want: "`make devserver`"},
		{give: "mongodb://bob:s3cret@127.0.0.1:27017/db?x=y", want: "`make devserver`"},
		{give: "mongodb://127.0.0.1", want: "`make devserver`"},
		{give: "mongodb://127.0.0.1:27018/", want: "`make devserver ADDR=127.0.0.1:27018`"},
		{give: "mongodb://localhost:27017/?directConnection=true", want: "`make devserver ADDR=localhost:27017`"},
		{give: "mongodb://[::1]:27019", want: "`make devserver ADDR=[::1]:27019`"},
		{give: "mongodb://[::1]", want: "`make devserver ADDR=[::1]:27017`"},
		{give: "mongodb://a:1,b:2/db", want: ""},
		{give: "mongodb+srv://cluster.example.com/db", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := startHint(tt.give)
			if tt.want == "" {
				assert.NotContains(t, got, "make devserver")
				return
			}
			assert.Contains(t, got, "start the dev server with "+tt.want+", ")
		})
	}

	// Through connect: nothing listens at a port other than the default.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = connect("mongodb://" + closed + "/?directConnection=true")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "`make devserver ADDR="+closed+"`")
	assert.Equal(t, "mongodb+srv://u:xxxxx@h/db?x=y", redact("mongodb+srv://u:p@ss@h/db?x=y"))
}
