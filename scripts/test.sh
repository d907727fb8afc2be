#!/usr/bin/env bash
# The one test command (make test): on a fresh clone it downloads modules,
# starts the embedded dev server on a free port unless MONGODB_URI is set,
# checks gofmt and go mod tidy, and runs go vet and go test -race for the
# four modules (the library, bench, otel, examples/live/browser: NOT RUN
# without Chromium) against that server, ending
# with a summary: tests passed, skipped and failed per package, and each
# skipped test with its reason. The server is stopped on exit, also on
# failure.
#
# `scripts/test.sh browser` (make browser-test) runs only the browser test.
#
# `scripts/test.sh soak` (make soak) runs the long load tests instead: the
# cache under 64 goroutines for $SOAK (default 10m), the stale-read checker
# for 20,000 checked reads, the differential fuzzer of the invalidation
# rules for 20,000 writes, and a 1,000,000-document stream whose heap must
# stay flat.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
modules=(. bench otel examples/live/browser)
mode=${1:-test}

# Each step prints the time since the start, so a slow step shows.
start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*" >&2; }

step "download modules"
for m in "${modules[@]}"; do (cd "$m" && go mod download); done

if [ "$mode" = test ]; then
step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi

step "go mod tidy"
for m in "${modules[@]}"; do (cd "$m" && go mod tidy -diff) || { echo "go mod tidy changes $m/go.mod or go.sum" >&2; exit 1; }; done

step "go vet"
for m in "${modules[@]}"; do (cd "$m" && go vet ./...); done

step "staticcheck (the library module)"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
fi

server_pid=""
tmp=$(mktemp -d)
cleanup() {
	if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

step "build the dev server (the first build compiles SQLite: ~1-2 min)"
(cd bench && go build -o "$tmp/devserver" ./cmd/devserver)
# Tests that need a server process of their own (the compare command's) run
# this binary rather than a race-instrumented copy of themselves.
export DATABRIDGE_DEVSERVER="$tmp/devserver"

if [ -z "${MONGODB_URI:-}" ]; then
	step "start the dev server"
	mkfifo "$tmp/uri"
	"$tmp/devserver" -addr 127.0.0.1:0 >"$tmp/uri" &
	server_pid=$!
	read -r -t 60 MONGODB_URI <"$tmp/uri" || { echo "dev server did not start" >&2; exit 1; }
	export MONGODB_URI
fi
step "testing against $MONGODB_URI"

if [ "$mode" = browser ]; then
	step "the live example's page in a real browser (make browser-test)"
	(cd examples/live/browser && go test -count=1 -v ./...)
	exit 0
fi

if [ "$mode" = soak ]; then
	step "soak: cache load for ${SOAK:-10m}, the stale-read checker for 20,000 reads, the differential fuzzer for 20,000 writes, then a 1,000,000-document stream"
	DATABRIDGE_SOAK=${SOAK:-10m} DATABRIDGE_STREAM_DOCS=1000000 DATABRIDGE_STALE_READS=20000 DATABRIDGE_DIFF_STEPS=20000 DATABRIDGE_DIFF_SEED=random \
		go test -count=1 -timeout 2h -v -run 'TestCacheUnderLoad|TestNoStaleReads|TestNoStaleReadsConcurrentWriters|TestDifferentialRules|TestStreamHeapIsFlat' ./cache ./cursor
	exit 0
fi

step "go test -race (each package's result as it ends, then a summary with every skip and its reason)"
go build -o "$tmp/testsum" ./internal/testsum
: >"$tmp/status"
# The bench packages that embed the dev server (cmd/compare: FerretDB and
# its SQLite) run without -race: race-compiling SQLite took minutes on a
# 2-core machine, and those tests run the prebuilt server binary anyway.
# Every other package of the three modules runs under -race; the
# allocation tests run once more without it (its instrumentation allocates).
embeds=github.com/databridge-go/databridge/bench/cmd/compare
{
	(go test -json -race -count=1 -timeout 15m ${GOTESTFLAGS:-} ./...) || echo "." >>"$tmp/status"
	(cd bench && go test -json -race -count=1 -timeout 15m ${GOTESTFLAGS:-} $(go list ./... | grep -vx "$embeds")) || echo "bench" >>"$tmp/status"
	(cd bench && go test -json -count=1 -timeout 15m ${GOTESTFLAGS:-} "$embeds") || echo "bench (no -race)" >>"$tmp/status"
	(cd otel && go test -json -race -count=1 -timeout 15m ${GOTESTFLAGS:-} ./...) || echo "otel" >>"$tmp/status"
	(cd examples/live/browser && go test -json -count=1 -timeout 5m ${GOTESTFLAGS:-} ./...) || echo "browser" >>"$tmp/status"
} | "$tmp/testsum"
step "allocation tests, without -race (whose instrumentation allocates too)"
go test -count=1 -run 'Allocations$' ./odm || echo "allocations" >>"$tmp/status"
step "done"
if [ -s "$tmp/status" ]; then
	echo "go test failed in: $(tr '\n' ' ' <"$tmp/status")" >&2
	exit 1
fi
