// Command devserver runs an embedded MongoDB wire-protocol server (FerretDB
// v1.24 with its SQLite handler) for databridge's tests and benchmarks.
//
// It prints the server's MongoDB URI as the first line of standard output,
// one line on standard error pointing to docs/ferretdb.md (where it differs
// from MongoDB), logs only errors, and stops cleanly on SIGINT or SIGTERM. The server runs in
// its own process so that a client's CPU time can be measured apart from the
// server's.
//
// Usage:
//
//	go run ./cmd/devserver [-addr 127.0.0.1:27017] [-data DIR]
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
