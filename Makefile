.PHONY: test soak devserver bench bench-quick bench-readme bench-precision fuzz browser-test

# Everything CI runs: modules, dev server, gofmt, go mod tidy, vet, test -race.
test:
	./scripts/test.sh

# The long load tests, not run in CI (SOAK=30m for a longer run).
soak:
	./scripts/test.sh soak

# Run the embedded dev server in the foreground (ADDR=host:port to choose
# where; the command also takes -data DIR) until Ctrl-C, which stops it with
# status 0. It is built into a temporary directory, removed on exit, rather
# than run with go run, which exits 1 when interrupted; the shell ignores
# SIGINT, so the server's exit status is the recipe's.
ADDR ?= 127.0.0.1:27017
devserver:
	@echo "building bench/cmd/devserver (the first build compiles SQLite: 1-2 min)" >&2
	@bin=$$(mktemp -d) && trap 'rm -rf "$$bin"' EXIT && \
	(cd bench && go build -o "$$bin/devserver" ./cmd/devserver) && \
	trap '' INT && "$$bin/devserver" -addr $(ADDR)

# databridge vs the official driver, side by side (the duration of the last
# full run is stamped in the README's results; bench-quick is about a fifth
# of it; add 1-2 min for the first build of the dev server).
bench:
	cd bench && go run ./cmd/compare

bench-quick:
	cd bench && go run ./cmd/compare -quick

# Regenerate the README's results table from a real run.
bench-readme:
	./scripts/bench-readme.sh

# The cache's invalidation precision against a perfect invalidator (about 10
# minutes), written into the README's "Cache precision" section.
bench-precision:
	cd bench && go run ./cmd/precision -readme ../README.md

# The live example's page in a real browser: installs Debian's chromium
# (as root, with apt-get) unless it is there, then runs the browser test
# against the dev server (started by the test command when MONGODB_URI is
# not set). make test runs the same test, NOT RUN without chromium.
browser-test:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	./scripts/test.sh browser

# Fuzz the decoder against the driver, its delegation paths, the encoder,
# the matcher and Sanitize, each for FUZZTIME (FUZZTIME=15m for the long
# run).
FUZZTIME ?= 5m
fuzz:
	go test ./decode -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	go test ./decode -run '^$$' -fuzz '^FuzzDelegation$$' -fuzztime $(FUZZTIME)
	go test ./internal/encode -run '^$$' -fuzz . -fuzztime $(FUZZTIME)
	go test ./internal/match -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME)
	go test ./query -run '^$$' -fuzz '^FuzzSanitize$$' -fuzztime $(FUZZTIME)
	go test ./query -run '^$$' -fuzz '^FuzzSanitizeDepth$$' -fuzztime $(FUZZTIME)
