GO ?= go
BIN := bin/kvreg

.PHONY: build run test vet clean bench bench-go

build:
	$(GO) build -o $(BIN) ./cmd/kvreg

# Start a registry on 127.0.0.1:5000 with its data in ./data.
run: build
	./$(BIN) serve --addr 127.0.0.1:5000 --root ./data

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# The load tool against kvreg and the reference registry, side by side
# (installs distribution v3 with go install, else Debian's docker-registry).
bench:
	bash cmd/kvreg-bench/bench.sh

# Go benchmarks of the hot paths on 1,000,000 blobs and 100,000 tags.
bench-go:
	$(GO) test -run '^$$' -bench 'Scale|CommitFreelist' -benchmem -timeout 30m ./kv ./refcount
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./cmd/kvreg-bench

clean:
	rm -rf bin
