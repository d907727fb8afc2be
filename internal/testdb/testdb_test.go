package testdb_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/devproc"
	"github.com/databridge-go/databridge/internal/testdb"
)

// TestSmoke proves the wiring every integration test relies on: insert, a
// find whose results span several batches (so getMore runs), and drop.
func TestSmoke(t *testing.T) {
	var log testdb.CommandLog
	cl := testdb.NewClient(t, options.Client().SetMonitor(log.Monitor()))
	db := testdb.DBOn(t, cl)
	ctx := context.Background()
	coll := db.Collection("smoke")

	const n = 250
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: int32(i)}, {Key: "name", Value: "doc"}}
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)

	log.Reset()
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(100).SetSort(bson.D{{Key: "i", Value: 1}}))
	require.NoError(t, err)
	var got []struct {
		I int `bson:"i"`
	}
	require.NoError(t, cur.All(ctx, &got))
	require.Len(t, got, n)
	for i, g := range got {
		assert.Equal(t, i, g.I)
	}
	assert.Equal(t, 1, log.Count("find"))
	assert.GreaterOrEqual(t, log.Count("getMore"), 2, "a 250-document result in batches of 100 needs getMore")

	require.NoError(t, db.Drop(ctx))
	names, err := cl.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: db.Name()}})
	require.NoError(t, err)
	assert.Empty(t, names)
}

func TestName(t *testing.T) {
	tests := []struct{ give string }{{"a"}, {"a/b c"}, {string(make([]byte, 200))}}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			n := testdb.Name(t)
			assert.LessOrEqual(t, len(n), 63)
			assert.Regexp(t, `^[A-Za-z0-9_]+$`, n)
		})
	}
}

// fallbackChildEnv makes TestFallbackChild run: it names the address the
// child tries when MONGODB_URI is unset.
const fallbackChildEnv = "TESTDB_FALLBACK_CHILD"

// TestFallbackChild is TestFallback's child process: two tests that need a
// server, run without MONGODB_URI.
func TestFallbackChild(t *testing.T) {
	addr := os.Getenv(fallbackChildEnv)
	if addr == "" {
		return // not a child
	}
	testdb.SetFallbackAddr(addr)
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Logf("uri=[%s]", testdb.URI())
			require.NoError(t, testdb.Client(t).Ping(context.Background(), nil))
		})
	}
}

// TestFallback runs TestFallbackChild without MONGODB_URI: it uses a server
// that answers at the fallback address, and without one its skips print one
// banner. On fe625ca both tests skipped with a server there, and silently:
// `go test ./...` showed only "ok" for a package whose integration tests had
// all been skipped.
func TestFallback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())

	tests := []struct {
		name       string
		give       string // the fallback address; "" for the server this test uses
		ci         bool
		wantURI    string // "" for mongodb://give/
		wantBanner bool
		wantResult string // how each child test ends
	}{
		{name: "no server", give: closed, wantURI: "[]", wantBanner: true, wantResult: "--- SKIP"},
		{name: "no server in CI", give: closed, ci: true, wantURI: "[]", wantResult: "--- FAIL"},
		{name: "server", give: "", wantResult: "--- PASS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.give
			if addr == "" {
				testdb.Client(t) // skips without a server
				u, err := url.Parse(testdb.URI())
				if err != nil || u.Scheme != "mongodb" || u.User != nil || u.RawQuery != "" || strings.Contains(u.Host, ",") {
					t.Skip("needs a server URI that the fallback can stand for: mongodb://, one host, no credentials or options")
				}
				addr = u.Host
			}
			wantURI := tt.wantURI
			if wantURI == "" {
				wantURI = "[mongodb://" + addr + "/]"
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFallbackChild$", "-test.v", "-test.count=1")
			cmd.Env = []string{fallbackChildEnv + "=" + addr}
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, testdb.EnvURI+"=") && !strings.HasPrefix(kv, "CI=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			if tt.ci {
				cmd.Env = append(cmd.Env, "CI=true")
			}
			out, err := cmd.CombinedOutput()
			if tt.wantResult == "--- FAIL" {
				require.Error(t, err, "%s", out)
			} else {
				require.NoError(t, err, "%s", out)
			}
			s := string(out)
			assert.Equal(t, 2, strings.Count(s, "uri="+wantURI), "%s", s)
			assert.Equal(t, 2, strings.Count(s, "    "+tt.wantResult), "%s", s)
			if tt.wantBanner {
				assert.Equal(t, 1, strings.Count(s, "testdb: SKIPPED (not run): tests of testdb that need the following"), "one banner for both skips:\n%s", s)
				assert.Contains(t, s, "testdb:   NO MONGODB SERVER: MONGODB_URI is not set, and no server answered at mongodb://"+addr+"/ (")
				assert.Contains(t, s, "testdb:   run `make test`")
			} else {
				assert.NotContains(t, s, "SKIPPED (not run)")
			}
		})
	}
}

// TestDevServerLog runs the dev server binary that make test builds: a
// request FerretDB cannot handle (a Decimal128 value: it recovers from a
// panic and closes the connection) is logged on a line that says it is the
// dev server's, and SIGINT stops the server with status 0. On fe625ca the
// line was FerretDB's bare "time=... level=ERROR+1 msg=...", which in the
// middle of a passing test run read as a failure.
func TestDevServerLog(t *testing.T) {
	bin := os.Getenv(testdb.EnvServerBinary)
	if bin == "" {
		testdb.Unavailable(t, testdb.EnvServerBinary+" is not set: run `make test`, which builds the dev server for fault-injection tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	uri, err := devproc.Start(ctx, cmd)
	require.NoError(t, err)
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	d, err := bson.ParseDecimal128("1.5")
	require.NoError(t, err)
	_, err = cl.Database("devserverlog").Collection("c").InsertOne(ctx, bson.D{{Key: "d", Value: d}})
	require.Error(t, err, "FerretDB closes the connection on a Decimal128")
	require.NoError(t, cl.Disconnect(ctx)) // the server waits for open connections when it stops

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
		exited = true
		require.NoError(t, err, "exit status after SIGINT; standard error:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the dev server did not stop within 30 s of SIGINT; standard error:\n%s", stderr.String())
	}

	out := stderr.String()
	assert.Contains(t, out, "devserver (FerretDB): time=", "FerretDB's line about the Decimal128")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.True(t, strings.HasPrefix(line, "devserver: ") || strings.HasPrefix(line, "devserver (FerretDB): "),
			"a line that does not say whose it is: %q", line)
	}
}

// lockedBuffer is a bytes.Buffer that a process's output can be copied
// into while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
