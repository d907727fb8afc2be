// Command devserver runs an embedded MongoDB wire-protocol server (FerretDB
// v1.24 with its SQLite handler) for databridge's tests and benchmarks.
//
// It prints the server's MongoDB URI as the first line of standard output,
// and one line on standard error pointing to docs/ferretdb.md (where it
// differs from MongoDB). It stops cleanly on SIGINT or SIGTERM, with exit
// status 0. The server runs in its own process so that a client's CPU time
// can be measured apart from the server's.
//
// Its log, on standard error, is FerretDB's from level ERROR up, each line
// starting "devserver (FerretDB): " so that in the middle of a test run it
// reads as the server's. An error FerretDB answers a client with (a command
// error) is logged below ERROR, so not at all. What it logs concerns one
// client's request that it could not handle: it closed the connection, and
// the client got a network error while the server went on. ERROR+1 means it
// recovered from a panic there; a passing `make test` shows a few such lines:
// on a Decimal128 value (internal/testdb's TestFerretDBGaps/Decimal128 pins
// that) and "key not found: \"_id\"" on some writes that cache's
// differential fuzzer (TestDifferentialRules) generates. FerretDB's own
// background failures are logged too. A failure to start is not a log line:
// it is printed as "devserver: ..." and the exit status is 1.
//
// Usage:
//
//	make devserver [ADDR=127.0.0.1:27017]
//	devserver [-addr 127.0.0.1:27017] [-data DIR]
//
// make devserver builds the command and runs it in the foreground. go run
// ./cmd/devserver works too, but go run exits with status 1 when
// interrupted, whatever the server's status.
//
// With -addr :0 (or 127.0.0.1:0) the server listens on a free port. Without
// -data, the data lives in a new temporary directory under /dev/shm when that
// exists or under the system temp directory otherwise, and is removed on exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/databridge-go/databridge/bench/internal/devserver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:27017", "TCP `address` to listen on; use :0 for a free port")
	dataDir := flag.String("data", "", "data `directory` (default: a temporary directory on /dev/shm when present, removed on exit)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := devserver.Serve(ctx, *addr, *dataDir, func(uri string) {
		fmt.Println(uri)
		fmt.Fprintln(os.Stderr, "devserver: FerretDB v1.24.2, not MongoDB: some results differ, some silently (a $group with two accumulators, $elemMatch on documents); the list is docs/ferretdb.md")
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "devserver:", err)
		os.Exit(1)
	}
}
