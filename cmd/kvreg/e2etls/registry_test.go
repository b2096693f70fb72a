package e2etls

// kvreg serving HTTPS on a free loopback port with a certificate from a CA
// made here, htpasswd users (bcrypt) and access rules from a config file.

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

type tlsRegistry struct {
	root, addr, caPEM string
	srv               *testenv.Server
	client            *http.Client // trusts the CA
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
	r := &tlsRegistry{root: filepath.Join(dir, "data"), caPEM: filepath.Join(dir, "ca.crt"),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}}
	srv, err := testenv.Start(kvregBin, testenv.Options{Root: r.root, Args: []string{"--config", conf}, CA: pool})
	if err != nil {
		t.Fatal(err)
	}
	r.srv, r.addr = srv, srv.Addr
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("kvreg log:\n%s", testenv.Tail(r.log(), 8000))
		}
	})
	return r
}

func (r *tlsRegistry) log() string { return r.srv.Log() }

// stop sends SIGTERM and requires a clean exit.
func (r *tlsRegistry) stop(t testing.TB) {
	if err := r.srv.Stop(45 * time.Second); err != nil {
		t.Errorf("kvreg serve on SIGTERM: %v", err)
	}
}

// files lists what the data directory's blob store holds: each blob and
// each upload in progress, with its size.
func (r *tlsRegistry) files(t testing.TB) map[string]int64 {
	t.Helper()
	out, err := testenv.Stored(r.root)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	return out
}
