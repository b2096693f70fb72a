package e2etls

// The package's own containerd and dockerd (testenv.Docker). They start on
// first use; TestMain stops them.

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

type dockerDaemons struct{ *testenv.Docker }

var daemons = testenv.SharedDocker{Prefix: "kvreg-tls-dk-"}

// needDocker starts the daemons once, or skips (fails in CI).
func needDocker(t testing.TB) *dockerDaemons {
	t.Helper()
	d, took, err := daemons.Start()
	if err != nil {
		missing(t, "docker: %v", err)
	}
	if took > 0 {
		fmt.Fprintf(os.Stderr, "e2etls: containerd and dockerd up in %v\n", took.Round(time.Millisecond))
	}
	return &dockerDaemons{d}
}

// run runs the docker CLI against the package's daemon.
func (d *dockerDaemons) run(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return runCmd(t, 3*time.Minute, []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + d.CLIConfig}, stdin, d.CLI, args...)
}

// must runs the docker CLI and fails the test on error.
func (d *dockerDaemons) must(t testing.TB, args ...string) string {
	t.Helper()
	r := d.run(t, "", args...)
	if r.err != nil {
		t.Fatalf("docker %v: %v\n%s", args, r.err, testenv.Tail(r.out, 4000))
	}
	return r.out
}
