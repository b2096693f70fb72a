package e2e

// The suite's own containerd and dockerd: their own sockets, state and data
// directories under one temp directory, vfs storage, no iptables, no bridge.
// They start on first use and TestMain stops them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type daemonProc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

type dockerDaemon struct {
	once sync.Once
	err  error

	dir        string
	host       string // DOCKER_HOST
	cliConfig  string // DOCKER_CONFIG, so the user's config is not read
	docker     string // the CLI
	containerd *daemonProc
	dockerd    *daemonProc
}

var docker dockerDaemon

// needDocker starts the daemons on first use and returns them, or skips the
// test (fails it in CI) if docker cannot start here.
func needDocker(t testing.TB) *dockerDaemon {
	t.Helper()
	docker.once.Do(docker.start)
	if docker.err != nil {
		missing(t, "docker: %v", docker.err)
	}
	return &docker
}

func startDaemon(name, logPath, bin string, args ...string) (*daemonProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, to be stopped as a whole; SIGTERM if this
	// test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &daemonProc{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *daemonProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	return tail(string(b), 3000)
}

// stop sends SIGTERM to the process group, then SIGKILL after a while.
func (p *daemonProc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "e2e: %s did not stop within %v of SIGTERM; killing it\n", p.name, grace)
		syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	// Whatever else is left in the group.
	syscall.Kill(-pgid, syscall.SIGKILL)
}

func (d *dockerDaemon) start() {
	start := time.Now()
	d.err = d.startDaemons()
	if d.err != nil {
		d.stop()
		return
	}
	fmt.Fprintf(os.Stderr, "e2e: containerd and dockerd up in %v (DOCKER_HOST=%s)\n", time.Since(start).Round(time.Millisecond), d.host)
}

func (d *dockerDaemon) startDaemons() error {
	if os.Geteuid() != 0 {
		return errors.New("starting containerd and dockerd needs root")
	}
	var err error
	if d.docker, err = findTool("docker"); err != nil {
		return fmt.Errorf("%w (apt-get install -y docker.io)", err)
	}
	dockerd, err := findTool("dockerd")
	if err != nil {
		return fmt.Errorf("%w (apt-get install -y docker.io)", err)
	}
	containerd, err := findTool("containerd")
	if err != nil {
		return fmt.Errorf("%w (apt-get install -y docker.io)", err)
	}
	// Unix socket paths must stay short (108 bytes): keep them in /tmp.
	base := os.TempDir()
	if len(base) > 40 {
		base = "/tmp"
	}
	if d.dir, err = os.MkdirTemp(base, "kvreg-e2e-dk-"); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(d.dir, name) }
	for _, sub := range []string{"sock", "ctd-root", "ctd-state", "ctd-opt", "data", "exec", "cli"} {
		if err := os.MkdirAll(p(sub), 0o700); err != nil {
			return err
		}
	}
	ctdSock := p("sock/containerd.sock")
	dockerSock := p("sock/docker.sock")
	d.host = "unix://" + dockerSock
	d.cliConfig = p("cli")

	// Our own containerd config: no CRI plugin, nothing from /etc.
	ctdConfig := fmt.Sprintf("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %q\n", p("ctd-opt"))
	if err := os.WriteFile(p("containerd.toml"), []byte(ctdConfig), 0o644); err != nil {
		return err
	}
	// An empty daemon.json, so that /etc/docker/daemon.json is not read.
	if err := os.WriteFile(p("daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return err
	}
	d.containerd, err = startDaemon("containerd", p("containerd.log"), containerd,
		"--config", p("containerd.toml"),
		"--root", p("ctd-root"), "--state", p("ctd-state"), "--address", ctdSock)
	if err != nil {
		return err
	}
	if err := waitFor(30*time.Second, d.containerd, func() bool {
		_, err := os.Stat(ctdSock)
		return err == nil
	}); err != nil {
		return fmt.Errorf("containerd: %w\n%s", err, d.containerd.logTail())
	}
	d.dockerd, err = startDaemon("dockerd", p("dockerd.log"), dockerd,
		"--config-file", p("daemon.json"),
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"--data-root", p("data"), "--exec-root", p("exec"), "--pidfile", p("docker.pid"),
		"--host", d.host, "--containerd", ctdSock)
	if err != nil {
		return err
	}
	var last string
	if err := waitFor(90*time.Second, d.dockerd, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, d.docker, "version", "--format", "{{.Server.Version}}")
		c.Env = d.env()
		c.WaitDelay = time.Second
		out, err := c.CombinedOutput()
		last = strings.TrimSpace(string(out))
		return err == nil
	}); err != nil {
		return fmt.Errorf("dockerd: %w (last `docker version`: %s)\ndockerd log:\n%s\ncontainerd log:\n%s", err, last, d.dockerd.logTail(), d.containerd.logTail())
	}
	fmt.Fprintf(os.Stderr, "e2e: dockerd %s, storage vfs, data root %s\n", last, p("data"))
	return nil
}

// waitFor polls ok until it holds, the daemon exits, or the deadline passes.
func waitFor(limit time.Duration, p *daemonProc, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.waitErr)
		}
		if ok() {
			return nil
		}
		time.Sleep(200 * time.Millisecond) // polling for a daemon to come up
	}
	return fmt.Errorf("%s not ready within %v", p.name, limit)
}

func (d *dockerDaemon) env() []string {
	return append(cleanEnv(), "DOCKER_HOST="+d.host, "DOCKER_CONFIG="+d.cliConfig)
}

// stop ends dockerd, then containerd, and removes their directories.
func (d *dockerDaemon) stop() {
	if d.dir == "" {
		return
	}
	d.dockerd.stop(30 * time.Second)
	d.containerd.stop(20 * time.Second)
	if err := os.RemoveAll(d.dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: removing %s: %v\n", d.dir, err)
	}
	d.dir = ""
}

// run runs the docker CLI against the suite's dockerd.
func (d *dockerDaemon) run(t testing.TB, timeout time.Duration, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, timeout, []string{"DOCKER_HOST=" + d.host, "DOCKER_CONFIG=" + d.cliConfig}, d.docker, args...)
}

// must runs the docker CLI and fails the test on error.
func (d *dockerDaemon) must(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	return mustRun(t, timeout, []string{"DOCKER_HOST=" + d.host, "DOCKER_CONFIG=" + d.cliConfig}, d.docker, args...).stdout
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
