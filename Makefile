.PHONY: test devserver bench fuzz

# Everything CI runs: modules, dev server, gofmt, go mod tidy, vet, test -race.
test:
	./scripts/test.sh

# Run the embedded dev server in the foreground on 127.0.0.1:27017.
devserver:
	cd bench && go run ./cmd/devserver
