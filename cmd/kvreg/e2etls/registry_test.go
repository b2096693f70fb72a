package e2etls

// kvreg serving HTTPS on a free loopback port with a certificate from a CA
// made here, htpasswd users (bcrypt) and access rules from a config file.

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

type tlsRegistry struct {
	root, addr, logPath, caPEM string
	cmd                        *exec.Cmd
	done                       chan struct{}
	client                     *http.Client // trusts the CA
}

// startTLSRegistry runs kvreg serve with TLS, users (password: name +
// "-pw") and the access rules given (YAML), on a free loopback port.
func startTLSRegistry(t testing.TB, users []string, access string) *tlsRegistry {
	t.Helper()
	dir := t.TempDir()
	pki, err := testenv.NewPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := pki.Pool
	var ht strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.DefaultCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&ht, "%s:%s\n", u, h)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("kvreg.yaml", fmt.Sprintf("htpasswd: %s\ntls-cert: %s\ntls-key: %s\nlog-format: json\naccess:\n%s",
		write("htpasswd", ht.String()), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), access))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &tlsRegistry{root: filepath.Join(dir, "data"), addr: addr, logPath: filepath.Join(dir, "kvreg.log"),
		caPEM: filepath.Join(dir, "ca.crt"), done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}}
	logf, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command(kvregBin, "serve", "--addr", addr, "--root", r.root, "--config", conf)
	r.cmd.Env = testenv.CleanEnv()
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("kvreg log:\n%s", testenv.Tail(r.log(), 8000))
		}
	})
	up := waitFor(20*time.Second, func() bool {
		select {
		case <-r.done:
			return true
		default:
		}
		resp, err := r.client.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-r.done:
		t.Fatalf("kvreg serve exited:\n%s", r.log())
	default:
	}
	if !up {
		t.Fatalf("kvreg serve did not answer over TLS:\n%s", r.log())
	}
	return r
}

func (r *tlsRegistry) log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// stop sends SIGTERM and requires a clean exit.
func (r *tlsRegistry) stop(t testing.TB) {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		if code := r.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("kvreg serve exited %d on SIGTERM", code)
		}
	case <-time.After(45 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		t.Errorf("kvreg serve did not stop on SIGTERM")
	}
}

// files lists what the data directory's blob store holds: each blob and
// each upload in progress, with its size.
func (r *tlsRegistry) files(t testing.TB) map[string]int64 {
	t.Helper()
	bs, err := blobs.Open(r.root)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	out := map[string]int64{}
	err = bs.Walk(func(d digest.Digest, name string, size int64) error {
		if d == "" {
			d = digest.Digest(name)
		}
		out["blob "+string(d)] = size
		return nil
	})
	if err != nil {
		t.Fatalf("walk blobs: %v", err)
	}
	ids, err := bs.Uploads()
	if err != nil {
		t.Fatalf("uploads: %v", err)
	}
	for _, id := range ids {
		info, _ := bs.Driver().Upload(id)
		out["upload "+id] = info.Size
	}
	return out
}
