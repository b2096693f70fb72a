package regtest

import (
	"fmt"
	"os"
	"strings"
)

// Backend names the metadata store and the blob driver a registry runs on.
type Backend struct {
	Name string // as KVREG_TEST_BACKENDS spells it
	DB   string // metadata: "bolt" or "postgres"
	Blob string // blob bytes: "local" (a directory under the root) or "s3" (a bucket)
}

// known lists every backend pair the tests can run on.
var known = []Backend{
	{Name: "bolt", DB: "bolt", Blob: "local"},
	{Name: "postgres", DB: "postgres", Blob: "local"},
}

// EnvBackends is the environment variable that chooses the backends: a
// comma-separated list of names ("bolt", "postgres"); empty means the
// default (bbolt and the blob directory). A registry opened without a
// backend of its own runs on the first one listed; make test runs the
// suites once per backend.
const EnvBackends = "KVREG_TEST_BACKENDS"

// EnvBlobs is the environment variable that chooses where blob bytes go:
// "local" (the default: the blob directory under the test's root) or "s3"
// (a fresh bucket of a versitygw server per registry). It applies to every
// backend of EnvBackends; make test-s3 runs the suites with it.
const EnvBlobs = "KVREG_TEST_BLOBS"

// Blob stores a test can run on.
const (
	BlobsLocal = "local"
	BlobsS3    = "s3"
)

// Default is the backend of a registry opened without one.
func Default() Backend { return known[0] }

// BlobStore is the blob store the environment chooses (EnvBlobs). An
// unknown name is an error, as in Backends.
func BlobStore() (string, error) {
	switch v := strings.TrimSpace(os.Getenv(EnvBlobs)); v {
	case "", BlobsLocal:
		return BlobsLocal, nil
	case BlobsS3:
		return BlobsS3, nil
	default:
		return "", fmt.Errorf("regtest: %s names unknown blob store %q (known: %s, %s)", EnvBlobs, v, BlobsLocal, BlobsS3)
	}
}

// Backends lists the backends chosen by the environment, for tests that run
// once per backend, each with the blob store of EnvBlobs. An unknown name
// is an error, so that a typo cannot turn a run into a run of nothing.
func Backends() ([]Backend, error) {
	blob, err := BlobStore()
	if err != nil {
		return nil, err
	}
	v := strings.TrimSpace(os.Getenv(EnvBackends))
	if v == "" {
		b := Default()
		b.Blob = blob
		return []Backend{b}, nil
	}
	var out []Backend
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		b, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("regtest: %s names unknown backend %q (known: %s)", EnvBackends, name, names())
		}
		b.Blob = blob
		out = append(out, b)
	}
	return out, nil
}

func lookup(name string) (Backend, bool) {
	for _, b := range known {
		if b.Name == name {
			return b, true
		}
	}
	return Backend{}, false
}

func names() string {
	var n []string
	for _, b := range known {
		n = append(n, b.Name)
	}
	return strings.Join(n, ", ")
}
