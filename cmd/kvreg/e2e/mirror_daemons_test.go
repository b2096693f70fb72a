package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// The pull-through cache as the daemons use it, with no route to the real
// registries: dockerd with registry-mirrors pulls busybox (held by an
// upstream kvreg as library/busybox) through kvreg's default mirror; and
// containerd's ctr with a hosts.toml directory fetches from two upstreams
// through one kvreg, routed by the ?ns= it adds.
func TestCacheMirrorDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; not in -short")
	}
	ctr := needTool(t, "ctr", "apt-get install -y docker.io (containerd's ctr)")
	hub, gh := startRegistry(t), startRegistry(t)
	busybox := pushRandom(t, hub, "library/busybox:latest")
	tool := pushRandom(t, gh, "org/tool:1")

	dir := t.TempDir()
	conf := filepath.Join(dir, "kvreg.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`mirrors:
  - prefix: hub
    upstream: http://%s
    registry: docker.io
    default: true
  - prefix: gh
    upstream: http://%s
    registry: ghcr.io
`, hub.addr, gh.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := startRegistryWith(t, "", "--config", conf)

	// dockerd of its own, whose mirror is the cache.
	d, err := testenv.StartDockerWith("kvreg-e2e-mir-", fmt.Sprintf("{\"registry-mirrors\": [\"http://%s\"]}\n", cache.addr))
	if err != nil {
		missing(t, "docker: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	env := []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + d.CLIConfig}
	if r := runCmd(t, 3*time.Minute, env, d.CLI, "pull", "busybox"); r.err != nil {
		t.Fatalf("docker pull busybox through the mirror: %v\n%s", r.err, r.combined())
	}
	r := runCmd(t, time.Minute, env, d.CLI, "image", "inspect", "--format", "{{index .RepoDigests 0}}", "busybox")
	if r.err != nil || !strings.Contains(r.stdout, busybox) {
		t.Fatalf("docker pulled busybox %q, upstream holds %s (%v)", strings.TrimSpace(r.stdout), busybox, r.err)
	}

	// containerd: hosts.toml for docker.io and ghcr.io, both to the cache.
	hosts := filepath.Join(dir, "hosts")
	for _, reg := range []struct{ name, server string }{{"docker.io", "https://registry-1.docker.io"}, {"ghcr.io", "https://ghcr.io"}} {
		p := filepath.Join(hosts, reg.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		toml := fmt.Sprintf("server = %q\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", reg.server, cache.addr)
		if err := os.WriteFile(filepath.Join(p, "hosts.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ ref, digest string }{
		{"docker.io/library/busybox:latest", busybox},
		{"ghcr.io/org/tool:1", tool},
	} {
		r := runCmd(t, 3*time.Minute, nil, ctr, "--address", d.Containerd, "--namespace", "kvreg-e2e", "content", "fetch", "--hosts-dir", hosts, c.ref)
		if r.err != nil {
			t.Fatalf("ctr content fetch %s through the cache: %v\n%s", c.ref, r.err, r.combined())
		}
		if !strings.Contains(r.combined(), c.digest) {
			t.Errorf("ctr content fetch %s: the digest %s is not in its output:\n%s", c.ref, c.digest, r.combined())
		}
	}
	// The cache filled from the upstream each request's ?ns= named (with no
	// ns, ghcr.io/org/tool would have gone to the default mirror, which
	// does not have it): each holds what it was asked for, under its
	// prefix, and nothing else.
	for repo, want := range map[string]int{"hub/library/busybox": 200, "gh/org/tool": 200, "hub/org/tool": 404} {
		if st := httpStatus(t, "http://"+cache.addr+"/v2/"+repo+"/tags/list"); st != want {
			t.Errorf("%s in the cache: %d, want %d", repo, st, want)
		}
	}
}

// httpStatus is the status of a GET of u.
func httpStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pushRandom pushes a random image to reg as ref (repo:tag) and returns its
// digest.
func pushRandom(t *testing.T, reg *registry, ref string) string {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(reg.ref(ref), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}
