package e2etls

// The package's own containerd and dockerd: sockets, state and data under
// one temporary directory, vfs storage, no iptables, no bridge. They start
// on first use; TestMain stops them.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProc(name, log, bin string, args ...string) (*proc, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(p.done) }()
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
	b, _ := os.ReadFile(p.log)
	return tail(string(b), 3000)
}

// stop ends the process group: SIGTERM, then SIGKILL after grace.
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
		<-p.done
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

type dockerDaemons struct {
	once       sync.Once
	err        error
	dir        string
	docker     string // the CLI
	host       string // DOCKER_HOST
	cliConfig  string // DOCKER_CONFIG
	containerd *proc
	dockerd    *proc
}

var daemons dockerDaemons

// needDocker starts the daemons once, or skips (fails in CI).
func needDocker(t testing.TB) *dockerDaemons {
	t.Helper()
	daemons.once.Do(func() {
		daemons.err = daemons.start()
		if daemons.err != nil {
			daemons.stop()
		}
	})
	if daemons.err != nil {
		missing(t, "docker: %v", daemons.err)
	}
	return &daemons
}

func (d *dockerDaemons) start() error {
	if os.Geteuid() != 0 {
		return errors.New("starting containerd and dockerd needs root")
	}
	var bins [3]string
	for i, name := range []string{"docker", "dockerd", "containerd"} {
		p, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("%w (apt-get install -y docker.io)", err)
		}
		bins[i] = p
	}
	d.docker = bins[0]
	var err error
	// Unix socket paths must stay short.
	if d.dir, err = os.MkdirTemp("/tmp", "kvreg-tls-dk-"); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(d.dir, name) }
	for _, sub := range []string{"sock", "ctd-root", "ctd-state", "ctd-opt", "data", "exec", "cli"} {
		if err := os.MkdirAll(p(sub), 0o700); err != nil {
			return err
		}
	}
	ctdSock := p("sock/containerd.sock")
	d.host = "unix://" + p("sock/docker.sock")
	d.cliConfig = p("cli")
	ctdConfig := fmt.Sprintf("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %q\n", p("ctd-opt"))
	if err := os.WriteFile(p("containerd.toml"), []byte(ctdConfig), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(p("daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return err
	}
	start := time.Now()
	if d.containerd, err = startProc("containerd", p("containerd.log"), bins[2],
		"--config", p("containerd.toml"), "--root", p("ctd-root"), "--state", p("ctd-state"), "--address", ctdSock); err != nil {
		return err
	}
	if !waitFor(30*time.Second, func() bool { _, err := os.Stat(ctdSock); return err == nil || d.containerd.exited() }) || d.containerd.exited() {
		return fmt.Errorf("containerd did not come up:\n%s", d.containerd.logTail())
	}
	if d.dockerd, err = startProc("dockerd", p("dockerd.log"), bins[1],
		"--config-file", p("daemon.json"),
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"--data-root", p("data"), "--exec-root", p("exec"), "--pidfile", p("docker.pid"),
		"--host", d.host, "--containerd", ctdSock); err != nil {
		return err
	}
	up := waitFor(90*time.Second, func() bool {
		return d.dockerd.exited() || exec.Command(d.docker, "--host", d.host, "version").Run() == nil
	})
	if !up || d.dockerd.exited() {
		return fmt.Errorf("dockerd did not come up:\n%s\ncontainerd:\n%s", d.dockerd.logTail(), d.containerd.logTail())
	}
	fmt.Fprintf(os.Stderr, "e2etls: containerd and dockerd up in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func (d *dockerDaemons) stop() {
	if d.dir == "" {
		return
	}
	d.dockerd.stop(30 * time.Second)
	d.containerd.stop(20 * time.Second)
	os.RemoveAll(d.dir)
	d.dir = ""
}

// run runs the docker CLI against the package's daemon.
func (d *dockerDaemons) run(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return runCmd(t, 3*time.Minute, []string{"DOCKER_HOST=" + d.host, "DOCKER_CONFIG=" + d.cliConfig}, stdin, d.docker, args...)
}

// must runs the docker CLI and fails the test on error.
func (d *dockerDaemons) must(t testing.TB, args ...string) string {
	t.Helper()
	r := d.run(t, "", args...)
	if r.err != nil {
		t.Fatalf("docker %v: %v\n%s", args, r.err, tail(r.out, 4000))
	}
	return r.out
}
