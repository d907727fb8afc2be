// Package testdb gives integration tests a real MongoDB wire-protocol server.
//
// It connects to MONGODB_URI (set by the README's test command, which starts
// the embedded dev server, or by the user to point at a real MongoDB). Each
// test gets its own database, named after the test and dropped on cleanup.
//
// When no server is reachable, tests are skipped with a message saying how to
// start one; with CI=true they fail instead, so CI can never pass by skipping.
package testdb

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/databridge-go/databridge/internal/cachecore"
)

// EnvURI is the environment variable that names the server to test against.
const EnvURI = "MONGODB_URI"

const howToStart = "no MongoDB server: run `make test` (starts the embedded dev server), " +
	"or start one with `cd bench && go run ./cmd/devserver` and set " + EnvURI

var (
	once      sync.Once
	sharedCl  *mongo.Client
	sharedErr string
)

// URI returns the server URI from the environment, or "" when unset.
func URI() string { return os.Getenv(EnvURI) }

// Client returns a client shared by all tests of the package, connected to
// MONGODB_URI, with the cache's command monitor installed (cache.Observer),
// as the documented setup has it. It skips (or, under CI, fails) the test when no server answers.
func Client(tb testing.TB) *mongo.Client {
	tb.Helper()
	once.Do(func() {
		uri := URI()
		if uri == "" {
			sharedErr = EnvURI + " is not set; " + howToStart
			return
		}
		cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(cachecore.Observer(nil)))
		if err != nil {
			sharedErr = "connect " + uri + ": " + err.Error() + "; " + howToStart
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.Ping(ctx, nil); err != nil {
			_ = cl.Disconnect(context.Background())
			sharedErr = "ping " + uri + ": " + err.Error() + "; " + howToStart
			return
		}
		sharedCl = cl
	})
	if sharedCl == nil {
		unavailable(tb, sharedErr)
	}
	return sharedCl
}

// NewClient returns a new client connected to MONGODB_URI with the given
// options applied after the URI (for example a command monitor). It has
// no cache monitor unless the options install one (cache.Observer): a
// cache stores nothing it loads through it. It is disconnected when the test
// ends.
func NewClient(tb testing.TB, opts ...*options.ClientOptions) *mongo.Client {
	tb.Helper()
	Client(tb) // skip or fail early when there is no server
	all := append([]*options.ClientOptions{options.Client().ApplyURI(URI())}, opts...)
	cl, err := mongo.Connect(all...)
	if err != nil {
		tb.Fatalf("testdb: connect: %v", err)
	}
	tb.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("testdb: %s (CI=true, so this is a failure, not a skip)", msg)
	}
	tb.Skip("testdb: " + msg)
}

// DB returns a fresh database for the test on the shared client, named after
// the test and dropped when the test ends.
func DB(tb testing.TB) *mongo.Database {
	tb.Helper()
	return DBOn(tb, Client(tb))
}

// DBOn is DB on a given client (for example one from NewClient).
func DBOn(tb testing.TB, cl *mongo.Client) *mongo.Database {
	tb.Helper()
	db := cl.Database(Name(tb))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = db.Drop(ctx) // leftovers of an interrupted run
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			tb.Errorf("testdb: drop %s: %v", db.Name(), err)
		}
	})
	return db
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// Name returns the database name DB uses for tb: the test name with unsafe
// characters replaced, shortened with a hash suffix to fit MongoDB's and
// FerretDB's limits.
func Name(tb testing.TB) string {
	full := tb.Name()
	s := strings.Trim(unsafeChars.ReplaceAllString(full, "_"), "_")
	sum := sha1.Sum([]byte(full))
	suffix := hex.EncodeToString(sum[:4])
	const max = 63 - 1 - 8
	if len(s) > max {
		s = s[:max]
	}
	return s + "_" + suffix
}

// CommandLog records the names of the commands a client started, for tests
// that count round trips (for example killCursors or find).
type CommandLog struct {
	mu    sync.Mutex
	names []string
}

// Monitor returns a command monitor that records into l.
func (l *CommandLog) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			l.mu.Lock()
			l.names = append(l.names, e.CommandName)
			l.mu.Unlock()
		},
	}
}

// Count returns how many commands named name were started.
func (l *CommandLog) Count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.names {
		if c == name {
			n++
		}
	}
	return n
}

// Reset forgets the recorded commands.
func (l *CommandLog) Reset() {
	l.mu.Lock()
	l.names = nil
	l.mu.Unlock()
}

var (
	ferretOnce sync.Once
	ferret     bool
)

// IsFerretDB reports whether the shared server is FerretDB (its buildInfo
// carries ferretdbVersion), for tests of what FerretDB cannot run: they skip
// with a "NOT RUN on FerretDB" message naming what is missing.
func IsFerretDB(tb testing.TB) bool {
	tb.Helper()
	cl := Client(tb)
	ferretOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, err := cl.Database("admin").RunCommand(ctx, map[string]int{"buildInfo": 1}).Raw()
		if err == nil {
			_, err = raw.LookupErr("ferretdbVersion")
			ferret = err == nil
		}
	})
	return ferret
}

// NotRunOnFerretDB skips the test on FerretDB with a NOT RUN message that
// says what FerretDB lacks.
func NotRunOnFerretDB(tb testing.TB, lacks string) {
	tb.Helper()
	if IsFerretDB(tb) {
		tb.Skipf("NOT RUN on FerretDB: %s", lacks)
	}
}
