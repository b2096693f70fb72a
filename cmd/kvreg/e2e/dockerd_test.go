package e2e

// The suite's own containerd and dockerd: their own sockets, state and data
// directories under one temp directory, vfs storage, no iptables, no bridge.
// They start on first use and TestMain stops them.

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

type dockerDaemon struct{ *testenv.Docker }

var dockers = testenv.SharedDocker{Prefix: "kvreg-e2e-dk-"}

// needDocker starts the daemons on first use and returns them, or skips the
// test (fails it in CI) if docker cannot start here.
func needDocker(t testing.TB) *dockerDaemon {
	t.Helper()
	d, took, err := dockers.Start()
	if err != nil {
		missing(t, "docker: %v", err)
	}
	if took > 0 {
		fmt.Fprintf(os.Stderr, "e2e: dockerd %s up in %v (DOCKER_HOST=%s)\n", d.Version, took.Round(time.Millisecond), d.Host)
	}
	return &dockerDaemon{d}
}

// stopDocker ends the daemons, if they were started.
func stopDocker() {
	if err := dockers.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: removing the daemons' directory: %v\n", err)
	}
}

// run runs the docker CLI against the suite's dockerd.
func (d *dockerDaemon) run(t testing.TB, timeout time.Duration, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, timeout, []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + d.CLIConfig}, d.CLI, args...)
}

// must runs the docker CLI and fails the test on error.
func (d *dockerDaemon) must(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	return mustRun(t, timeout, []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + d.CLIConfig}, d.CLI, args...).stdout
}

type dockerImage struct {
	ID       string
	RepoTags []string
	RootFS   struct {
		Layers []string
	}
}

// inspect returns what the daemon knows of an image.
func (d *dockerDaemon) inspect(t testing.TB, ref string) dockerImage {
	t.Helper()
	out := d.must(t, time.Minute, "image", "inspect", ref)
	var imgs []dockerImage
	mustJSON(t, []byte(out), &imgs)
	if len(imgs) != 1 {
		t.Fatalf("docker image inspect %s: %d images", ref, len(imgs))
	}
	return imgs[0]
}

// hasImage reports whether the daemon has an image by that reference.
func (d *dockerDaemon) hasImage(t testing.TB, ref string) bool {
	t.Helper()
	return d.run(t, time.Minute, "image", "inspect", "--format", "{{.Id}}", ref).err == nil
}
