package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// HAProxyInstallHint says how to get the load balancer.
const HAProxyInstallHint = "haproxy is not installed: apt-get install -y haproxy"

// ReplicaHeader names, in every response through HAProxy, the backend
// server that answered (r0, r1, ...): tests see where each request went.
const ReplicaHeader = "X-Kvreg-Replica"

// FindHAProxy looks haproxy up on PATH, then in /usr/sbin (Debian's).
func FindHAProxy() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/sbin/haproxy"); err == nil && fi.Mode()&0o111 != 0 {
		return "/usr/sbin/haproxy", nil
	}
	return "", fmt.Errorf("%s", HAProxyInstallHint)
}

// HAProxy is an haproxy process in front of kvreg replicas: round robin
// over every request, health checks on /readyz.
type HAProxy struct {
	Addr   string // 127.0.0.1:port
	URL    string // http://Addr
	Config string // the configuration it runs

	cmd     *exec.Cmd
	out     *output
	done    chan struct{}
	waitErr error
}

// haproxyConfig balances every request over backends in turn; a backend
// whose /readyz fails twice leaves the rotation until it answers again.
// Every request carries its client's address in X-Forwarded-For, which
// replicas started with --trusted-proxies read.
func haproxyConfig(addr string, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 1024
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    timeout http-request 30s

frontend kvreg
    bind %s
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header %s %%s
`, addr, ReplicaHeader)
	for i, be := range backends {
		fmt.Fprintf(&b, "    server r%d %s check inter 1s fall 2 rise 1\n", i, be)
	}
	return b.String()
}

// StartHAProxy runs bin (haproxy) on a free loopback port in front of
// backends (host:port each), with its configuration in dir, and returns
// once every backend has answered /readyz through it. The process dies
// with the test binary.
func StartHAProxy(bin, dir string, backends []string) (*HAProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &HAProxy{Addr: addr, URL: "http://" + addr, Config: haproxyConfig(addr, backends), out: &output{}, done: make(chan struct{})}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(h.Config), 0o644); err != nil {
		return nil, err
	}
	// -db: foreground, logs to stderr.
	h.cmd = exec.Command(bin, "-db", "-f", cfgPath)
	h.cmd.Env = CleanEnv()
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { h.waitErr = h.cmd.Wait(); close(h.done) }()

	client := &http.Client{Timeout: 2 * time.Second}
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			return nil, fmt.Errorf("haproxy exited (%v):\n%s\n%s", h.waitErr, Tail(h.Log(), 4000), h.Config)
		default:
		}
		if resp, err := client.Get(h.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				seen[resp.Header.Get(ReplicaHeader)] = true
			}
		}
		if len(seen) == len(backends) {
			return h, nil
		}
		time.Sleep(20 * time.Millisecond) // polling a process that is starting
	}
	h.Stop()
	return nil, fmt.Errorf("haproxy did not reach every backend within 20s (reached %v):\n%s", seen, Tail(h.Log(), 4000))
}

// Log is what haproxy has written so far: its messages and one line per
// request.
func (h *HAProxy) Log() string { return h.out.String() }

// Stop ends haproxy and waits for it.
func (h *HAProxy) Stop() {
	select {
	case <-h.done:
		return
	default:
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
}
