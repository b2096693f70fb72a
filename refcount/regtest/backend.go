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
	Blob string // blob bytes: "local"
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

// Default is the backend of a registry opened without one.
func Default() Backend { return known[0] }

// Backends lists the backends chosen by the environment, for tests that run
// once per backend. An unknown name is an error, so that a typo cannot turn
// a run into a run of nothing.
func Backends() ([]Backend, error) {
	v := strings.TrimSpace(os.Getenv(EnvBackends))
	if v == "" {
		return []Backend{Default()}, nil
	}
	var out []Backend
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		b, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("regtest: %s names unknown backend %q (known: %s)", EnvBackends, name, names())
		}
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
