GO ?= go
BIN := bin/kvreg

.PHONY: build run check test test-postgres test-s3 race fuzz vet clean bench bench-s3 bench-postgres bench-cluster bench-go

build:
	$(GO) build -o $(BIN) ./cmd/kvreg

# Start a registry on 127.0.0.1:5000 with its data in ./data.
run: build
	./$(BIN) serve --addr 127.0.0.1:5000 --root ./data

vet:
	$(GO) vet ./...

# The quick loop for daily work: vet, then every package's tests in -short
# mode (5 kill -9 torture rounds instead of 50) without the end-to-end suites
# that drive docker, skopeo, crane and regctl.
check: vet
	$(GO) test -short -count=1 -timeout 10m $$($(GO) list ./... | grep -v -e '/cmd/kvreg/e2e$$' -e '/cmd/kvreg/e2etls$$')

# Everything: unit, end-to-end (real docker, skopeo, crane, regctl), the kill -9
# torture, the suites again on PostgreSQL and with blobs on S3, the race tests
# under the race detector (on both backends), and a short run of each fuzzer.
test: vet
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) test-postgres
	$(MAKE) test-s3
	$(MAKE) race
	$(MAKE) fuzz FUZZTIME=20000x FUZZTIME_UPLOAD=2000x

# The suites of kv, refcount and api again, on PostgreSQL (a server the
# tests start from Debian's postgresql package); bbolt is the default above.
test-postgres:
	KVREG_TEST_BACKENDS=postgres $(GO) test -count=1 -timeout 20m ./kv/ ./refcount/... ./api/...

# The suites that open registries through refcount/regtest again, with blob
# bytes in S3 buckets (a versitygw server the tests start, see
# blobs/s3/s3test) instead of the data directory; and the tests of
# replicas (registries sharing a PostgreSQL database and a bucket) and of the
# S3 driver keeping its upload states in PostgreSQL.
test-s3:
	KVREG_TEST_BLOBS=s3 $(GO) test -count=1 -timeout 20m ./refcount/... ./api/...
	KVREG_TEST_BACKENDS=postgres KVREG_TEST_BLOBS=s3 $(GO) test -count=1 -timeout 10m -run 'Replica|UploadStates' ./refcount/

# The race tests, refcount's whole suite, and the backends' conformance
# suites (concurrent writers among them), under the race detector.
race:
	$(GO) test -race -count=1 -timeout 10m -run 'Race|Concurrent' ./api/ ./blobs/
	$(GO) test -race -count=1 -timeout 10m ./refcount/
	KVREG_TEST_BACKENDS=postgres $(GO) test -race -count=1 -timeout 10m -run 'Race|Concurrent' ./api/
	$(GO) test -race -count=1 -timeout 10m -run 'Conformance' ./kv/bolt/ ./blobs/local/

# FUZZTIME is a count of inputs (10000x) or a duration (30s). A duration can
# fail with a bare "context deadline exceeded" and no failing input, when the
# fuzzing engine of Go 1.26 stops its workers at the deadline (fixed in Go
# 1.27), so make test gives each fuzzer a count. FuzzUploadPath drives whole
# uploads (a few hundred inputs a second): FUZZTIME_UPLOAD, FUZZTIME if unset.
FUZZTIME ?= 50000x
FUZZTIME_UPLOAD ?= $(FUZZTIME)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME) ./refcount/manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDigest$$' -fuzztime $(FUZZTIME) ./blobs/
	$(GO) test -run '^$$' -fuzz '^FuzzBlobFile$$' -fuzztime $(FUZZTIME) ./blobs/local/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRoute$$' -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz '^FuzzReference$$' -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz '^FuzzContentRange$$' -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz '^FuzzUploadPath$$' -fuzztime $(FUZZTIME_UPLOAD) ./api/

# The load tool against kvreg and the reference registry, side by side
# (installs distribution v3 with go install, else Debian's docker-registry).
bench:
	bash cmd/kvreg-bench/bench.sh

# The same with both registries' blob bytes in buckets of a versitygw S3
# server it starts on loopback (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
bench-s3:
	STORE=s3 bash cmd/kvreg-bench/bench.sh

# The load tool against kvreg on bbolt and kvreg on PostgreSQL (a server it
# starts from Debian's postgresql package, fsync and synchronous_commit on),
# side by side, with the retry rate and round trips per request.
bench-postgres:
	bash cmd/kvreg-bench/bench-postgres.sh

# Three kvreg replicas (--replicas on one PostgreSQL and one versitygw bucket)
# against three distribution v3 replicas on the same S3 server, each set
# behind its own haproxy (Debian's), side by side.
bench-cluster:
	bash cmd/kvreg-bench/bench-cluster.sh

# Go benchmarks of the hot paths on 1,000,000 blobs and 100,000 tags.
bench-go:
	$(GO) test -run '^$$' -bench 'Scale|CommitFreelist' -benchmem -timeout 30m ./kv ./kv/bolt ./refcount
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./cmd/kvreg-bench

clean:
	rm -rf bin
