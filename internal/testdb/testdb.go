// Package testdb gives integration tests a real MongoDB wire-protocol server.
//
// It connects to MONGODB_URI (set by the README's test command, which starts
// the embedded dev server, or by the user to point at a real MongoDB). When
// MONGODB_URI is unset it tries mongodb://127.0.0.1:27017/, where
// `make devserver` listens, and uses it if a server answers there. Each test
// gets its own database, named after the test and dropped on cleanup.
//
// When no server is reachable, tests are skipped with a message saying how to
// start one, and the first skip of a test binary prints a banner saying that
// the package's integration tests are SKIPPED (not run); with CI=true they
// fail instead, so CI can never pass by skipping.
package testdb

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
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

const howToStart = "run `make test` (starts the embedded dev server), or `make devserver` in another " +
	"terminal (tests try 127.0.0.1:27017 when " + EnvURI + " is unset), or set " + EnvURI

// fallbackAddr is where tests look for a server when MONGODB_URI is unset:
// the address `make devserver` listens on by default.
var fallbackAddr = "127.0.0.1:27017"

var (
	once      sync.Once
	sharedURI string // MONGODB_URI, or the fallback's URI when a server answered there
	sharedCl  *mongo.Client
	sharedErr string // why sharedCl is nil: what was tried and how it failed
)

// URI returns the URI of the server the tests use: MONGODB_URI when set,
// else mongodb://127.0.0.1:27017/ when a server answered there, else "".
// Its first call in a test binary (or Client's) connects the shared client:
// at once when nothing listens on 127.0.0.1:27017, at most a few seconds
// otherwise.
func URI() string {
	connect()
	return sharedURI
}

// Client returns a client shared by all tests of the package, connected to
// [URI], with the cache's command monitor installed (cache.Observer), as the
// documented setup has it. It skips (or, under CI, fails) the test when no
// server answers.
func Client(tb testing.TB) *mongo.Client {
	tb.Helper()
	connect()
	if sharedCl == nil {
		unavailable(tb, "NO MONGODB SERVER: "+sharedErr+"; "+howToStart)
	}
	return sharedCl
}

// connect connects the shared client, once per test binary.
func connect() {
	once.Do(func() {
		uri := os.Getenv(EnvURI)
		sharedURI = uri // the fallback's URI is kept only once a server answered there
		if uri == "" {
			// Dial first: when nothing listens, that fails at once, where
			// the driver's server selection would wait out its timeout.
			uri = "mongodb://" + fallbackAddr + "/"
			c, err := net.DialTimeout("tcp", fallbackAddr, time.Second)
			if err != nil {
				sharedErr = EnvURI + " is not set, and no server answered at " + uri + " (" + err.Error() + ")"
				return
			}
			c.Close()
		}
		cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(cachecore.Observer(nil)))
		if err != nil {
			sharedErr = "connect " + uri + ": " + err.Error()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.Ping(ctx, nil); err != nil {
			_ = cl.Disconnect(context.Background())
			sharedErr = "ping " + uri + ": " + err.Error()
			return
		}
		sharedURI, sharedCl = uri, cl
	})
}

// NewClient returns a new client connected to [URI] with the given
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

// unavailable fails the test under CI=true and skips it otherwise, with msg:
// what is missing, why, and how to get it. The first skip with each msg in a
// test binary also prints a banner (see announce).
func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("testdb: %s (CI=true, so this is a failure, not a skip)", msg)
	}
	announce(msg)
	tb.Skip("testdb: " + msg)
}

var (
	announceMu sync.Mutex
	announced  = map[string]bool{}
)

// announce prints, once per test binary and skip message, a banner saying
// that tests were skipped (not run), why, and how to run them: the message,
// a clause a line. It goes to standard error, and also to the terminal
// (/dev/tty) when go test would drop it: for a package that passes,
// `go test ./...` prints only "ok" unless -v is given, and a skipped test
// passes.
func announce(msg string) {
	announceMu.Lock()
	defer announceMu.Unlock()
	if announced[msg] {
		return
	}
	announced[msg] = true
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	rule := "testdb: " + strings.Repeat("=", 72) + "\n"
	var b strings.Builder
	b.WriteString(rule)
	fmt.Fprintf(&b, "testdb: SKIPPED (not run): tests of %s that need the following (go test -v lists them)\n", pkg)
	for _, clause := range strings.Split(msg, "; ") {
		b.WriteString("testdb:   " + clause + "\n")
	}
	b.WriteString("testdb: go test may replay this result from its cache: add -count=1 to run them again\n")
	b.WriteString(rule)
	text := b.String()
	fmt.Fprint(os.Stderr, text)
	if testing.Verbose() || isTerminal(os.Stderr) {
		return // go test shows standard error as it is
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprint(tty, text)
		tty.Close()
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
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
