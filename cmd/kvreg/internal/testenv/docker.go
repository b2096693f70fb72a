package testenv

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
	"time"
)

// Docker is a containerd and a dockerd of their own: sockets, state and data
// under one temporary directory, vfs storage, no iptables, no bridge, and a
// CLI configuration directory of their own.
type Docker struct {
	Dir       string
	Host      string // DOCKER_HOST
	CLIConfig string // DOCKER_CONFIG, so the user's config is not read
	CLI       string // the docker binary
	Version   string // the daemon's
	// Containerd is containerd's socket, for ctr --address.
	Containerd string

	containerd *proc
	dockerd    *proc
}

// Env is CleanEnv pointed at this daemon.
func (d *Docker) Env() []string {
	return append(CleanEnv(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+d.CLIConfig)
}

// StartDocker starts the daemons (as root) under a new directory whose name
// begins with prefix, and waits until the daemon answers.
func StartDocker(prefix string) (*Docker, error) { return StartDockerWith(prefix, "{}\n") }

// StartDockerWith is StartDocker with dockerd's daemon.json (JSON), for
// settings such as registry-mirrors.
func StartDockerWith(prefix, daemonJSON string) (*Docker, error) {
	d, err := startDocker(prefix, daemonJSON)
	if err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func startDocker(prefix, daemonJSON string) (*Docker, error) {
	d := &Docker{}
	if os.Geteuid() != 0 {
		return d, errors.New("starting containerd and dockerd needs root")
	}
	var bins [3]string
	for i, name := range []string{"docker", "dockerd", "containerd"} {
		p, err := exec.LookPath(name)
		if err != nil {
			return d, fmt.Errorf("%w (apt-get install -y docker.io)", err)
		}
		bins[i] = p
	}
	d.CLI = bins[0]
	var err error
	// Unix socket paths must stay short (108 bytes): keep them in /tmp.
	if d.Dir, err = os.MkdirTemp("/tmp", prefix); err != nil {
		return d, err
	}
	p := func(name string) string { return filepath.Join(d.Dir, name) }
	for _, sub := range []string{"sock", "ctd-root", "ctd-state", "ctd-opt", "data", "exec", "cli"} {
		if err := os.MkdirAll(p(sub), 0o700); err != nil {
			return d, err
		}
	}
	ctdSock := p("sock/containerd.sock")
	d.Containerd = ctdSock
	d.Host = "unix://" + p("sock/docker.sock")
	d.CLIConfig = p("cli")
	// Our own containerd config (no CRI plugin, nothing from /etc) and an
	// daemon.json of our own (empty unless given), so that /etc/docker/daemon.json is not read.
	ctdConfig := fmt.Sprintf("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %q\n", p("ctd-opt"))
	if err := os.WriteFile(p("containerd.toml"), []byte(ctdConfig), 0o644); err != nil {
		return d, err
	}
	if err := os.WriteFile(p("daemon.json"), []byte(daemonJSON), 0o644); err != nil {
		return d, err
	}
	if d.containerd, err = startProc("containerd", p("containerd.log"), bins[2],
		"--config", p("containerd.toml"), "--root", p("ctd-root"), "--state", p("ctd-state"), "--address", ctdSock); err != nil {
		return d, err
	}
	if err := waitFor(30*time.Second, d.containerd, func() bool {
		_, err := os.Stat(ctdSock)
		return err == nil
	}); err != nil {
		return d, fmt.Errorf("containerd: %w\n%s", err, d.containerd.logTail())
	}
	if d.dockerd, err = startProc("dockerd", p("dockerd.log"), bins[1],
		"--config-file", p("daemon.json"),
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"--data-root", p("data"), "--exec-root", p("exec"), "--pidfile", p("docker.pid"),
		"--host", d.Host, "--containerd", ctdSock); err != nil {
		return d, err
	}
	if err := waitFor(90*time.Second, d.dockerd, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, d.CLI, "version", "--format", "{{.Server.Version}}")
		c.Env = d.Env()
		c.WaitDelay = time.Second
		out, err := c.CombinedOutput()
		d.Version = strings.TrimSpace(string(out))
		return err == nil
	}); err != nil {
		return d, fmt.Errorf("dockerd: %w (last `docker version`: %s)\ndockerd log:\n%s\ncontainerd log:\n%s",
			err, d.Version, d.dockerd.logTail(), d.containerd.logTail())
	}
	return d, nil
}

// Stop ends dockerd, then containerd, and removes their directory.
func (d *Docker) Stop() error {
	if d == nil || d.Dir == "" {
		return nil
	}
	d.dockerd.stop(30 * time.Second)
	d.containerd.stop(20 * time.Second)
	err := os.RemoveAll(d.Dir)
	d.Dir = ""
	return err
}

// proc is a daemon in its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = CleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, to be stopped as a whole; SIGTERM if the
	// test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	return Tail(string(b), 3000)
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	// Whatever else is left in the group.
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitFor polls ok until it holds, the daemon exits, or the deadline passes.
func waitFor(limit time.Duration, p *proc, ok func() bool) error {
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

// SharedDocker is a test package's containerd and dockerd, started by the
// first test that needs them and handed to every later one (the same
// daemons, or the same error); TestMain stops them.
type SharedDocker struct {
	Prefix string // of the daemons' directory (StartDocker)

	once sync.Once
	d    *Docker
	err  error
}

// Start starts the daemons the first time it is called and returns them;
// started is how long that took, on the call that started them (0 on
// every other call), for the caller to report.
func (s *SharedDocker) Start() (d *Docker, started time.Duration, err error) {
	s.once.Do(func() {
		t0 := time.Now()
		s.d, s.err = StartDocker(s.Prefix)
		started = time.Since(t0)
	})
	return s.d, started, s.err
}

// Stop ends the daemons if they were started.
func (s *SharedDocker) Stop() error { return s.d.Stop() }
