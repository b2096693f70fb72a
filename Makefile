GO ?= go
BIN := bin/kvreg

.PHONY: build run test vet clean

build:
	$(GO) build -o $(BIN) ./cmd/kvreg

# Start a registry on 127.0.0.1:5000 with its data in ./data.
run: build
	./$(BIN) serve --addr 127.0.0.1:5000 --root ./data

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

clean:
	rm -rf bin
