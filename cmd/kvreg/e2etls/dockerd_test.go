package e2etls

// The package's own containerd and dockerd (testenv.Docker). They start on
// first use; TestMain stops them.

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

type dockerDaemons struct {
	once sync.Once
	err  error
	*testenv.Docker
}

var daemons dockerDaemons

// needDocker starts the daemons once, or skips (fails in CI).
func needDocker(t testing.TB) *dockerDaemons {
	t.Helper()
	daemons.once.Do(func() {
		start := time.Now()
		daemons.Docker, daemons.err = testenv.StartDocker("kvreg-tls-dk-")
		if daemons.err == nil {
			fmt.Fprintf(os.Stderr, "e2etls: containerd and dockerd up in %v\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if daemons.err != nil {
		missing(t, "docker: %v", daemons.err)
	}
	return &daemons
}

func (d *dockerDaemons) stop() {
	if d.Docker != nil {
		d.Docker.Stop()
	}
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
