package e2etls

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootfsTar writes a small root filesystem (the busybox binary of
// busybox-static and a note) as a tar for docker import.
func rootfsTar(t *testing.T, note string) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		missing(t, "busybox: %v (apt-get install -y busybox-static)", err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"bin/busybox", 0o755, bin}, {"etc/kvreg-note", 0o644, []byte(note)}} {
		dir := filepath.Dir(f.name) + "/"
		tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mt})
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: mt})
		tw.Write(f.data)
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// installCA puts the registry's CA where dockerd looks for it:
// /etc/docker/certs.d/<host:port>/ca.crt, removed when the test ends.
func installCA(t *testing.T, hostPort, caPEM string) {
	t.Helper()
	dir := filepath.Join("/etc/docker/certs.d", hostPort)
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists already; not touching it", dir)
	}
	// Remove, afterwards, the first directory on the way that this made.
	made := dir
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		made = p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(made) })
	b, err := os.ReadFile(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDockerLoginOverTLS: docker against kvreg over TLS with the CA
// installed for the daemon, in the token mode that authentication uses by
// default. An anonymously readable repository pulls with no login, and an
// anonymous push there is refused; a wrong password is refused; a user who
// may push does; a user with pull rights only is refused on push, with
// nothing written; a robot account logs in with its secret, pushes, and
// after its revocation gets no new token. (dockerd counts 127.0.0.0/8 as
// an insecure registry, so it speaks TLS there without checking the chain;
// the chain itself is checked by the Go client that waits for the server,
// which trusts only this CA, and in cmd/kvreg's TLS test.)
func TestDockerLoginOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; not in -short")
	}
	d := needDocker(t)
	reg := startTLSRegistry(t, []string{"alice", "bob"}, `  - repos: ["*"]
    users: [alice]
    actions: [pull, push, delete]
  - repos: ["team/*"]
    users: [bob]
    actions: [pull]
  - repos: ["public/*"]
    anonymous: true
    actions: [pull]
`)
	host := reg.addr
	installCA(t, host, reg.caPEM)
	ref := host + "/team/app:1"
	pub := host + "/public/base:1"

	// A wrong password is refused, and so is an unknown user.
	for _, c := range [][2]string{{"alice", "wrong"}, {"mallory", "mallory-pw"}} {
		r := d.run(t, c[1], "login", "--username", c[0], "--password-stdin", host)
		if r.err == nil || !strings.Contains(strings.ToLower(r.out), "unauthorized") {
			t.Fatalf("docker login as %s with a wrong password: %v\n%s", c[0], r.err, r.out)
		}
	}
	if r := d.run(t, "alice-pw", "login", "--username", "alice", "--password-stdin", host); r.err != nil || !strings.Contains(r.out, "Login Succeeded") {
		t.Fatalf("docker login as alice: %v\n%s", r.err, r.out)
	}

	// Push, remove, pull: the same image; and one in the public
	// repository.
	d.must(t, "import", rootfsTar(t, "pushed by alice over TLS\n"), ref)
	id := strings.TrimSpace(d.must(t, "image", "inspect", "--format", "{{.Id}}", ref))
	out := d.must(t, "push", ref)
	if !strings.Contains(out, "digest: sha256:") {
		t.Fatalf("docker push: %s", out)
	}
	d.must(t, "rmi", ref)
	d.must(t, "pull", ref)
	if got := strings.TrimSpace(d.must(t, "image", "inspect", "--format", "{{.Id}}", ref)); got != id {
		t.Fatalf("pulled image id %s, pushed %s", got, id)
	}
	d.must(t, "tag", ref, pub)
	d.must(t, "push", pub)

	// With no login: the public repository pulls, a push there is
	// refused with nothing written, and team/app does not pull.
	d.must(t, "logout", host)
	d.must(t, "rmi", pub)
	d.must(t, "pull", pub)
	if got := strings.TrimSpace(d.must(t, "image", "inspect", "--format", "{{.Id}}", pub)); got != id {
		t.Fatalf("anonymously pulled image id %s, pushed %s", got, id)
	}
	before := reg.files(t)
	anonRef := host + "/public/anon:1"
	d.must(t, "import", rootfsTar(t, "an anonymous push\n"), anonRef)
	refused(t, d.run(t, "", "push", anonRef), "anonymous docker push to public/anon")
	d.must(t, "rmi", ref)
	refused(t, d.run(t, "", "pull", ref), "anonymous docker pull of team/app")

	// bob may pull team/* but not push: refused, and nothing written.
	if r := d.run(t, "bob-pw", "login", "--username", "bob", "--password-stdin", host); r.err != nil {
		t.Fatalf("docker login as bob: %v\n%s", r.err, r.out)
	}
	bobRef := host + "/team/bobs:1"
	d.must(t, "import", rootfsTar(t, "bob tries to push this\n"), bobRef)
	refused(t, d.run(t, "", "push", bobRef), "docker push as bob")
	// A layer of his own too: no upload of it may start.
	if after := reg.files(t); !maps.Equal(before, after) {
		t.Fatalf("the refused pushes wrote files:\nbefore %v\nafter  %v", before, after)
	}
	for _, repo := range []string{"team/bobs", "public/anon"} {
		if resp := reg.get(t, "alice", "/v2/"+repo+"/tags/list"); resp != http.StatusNotFound {
			t.Fatalf("%s after a refused push: %d, want 404", repo, resp)
		}
	}
	// bob pulls what alice pushed.
	d.must(t, "pull", ref)

	// A robot account: created through the running server's socket, its
	// secret alone on the last line; docker login with it, a push to its
	// repositories; revoked, it gets no new token.
	created := runCmd(t, time.Minute, nil, "", kvregBin, "token", "create", "ci", "--root", reg.root, "--repos", "team/*", "--actions", "pull,push", "--expires", "1d")
	if created.err != nil {
		t.Fatalf("kvreg token create: %v\n%s", created.err, created.out)
	}
	lines := strings.Split(strings.TrimSpace(created.stdout), "\n")
	secret := lines[len(lines)-1]
	if !strings.HasPrefix(secret, "kvreg_") || strings.ContainsAny(secret, " \t") {
		t.Fatalf("kvreg token create's last line %q is not the secret alone:\n%s", secret, created.stdout)
	}
	if r := d.run(t, secret, "login", "--username", "ci", "--password-stdin", host); r.err != nil || !strings.Contains(r.out, "Login Succeeded") {
		t.Fatalf("docker login as robot ci: %v\n%s", r.err, r.out)
	}
	ciRef := host + "/team/ci:1"
	d.must(t, "tag", ref, ciRef)
	d.must(t, "push", ciRef)
	if resp := reg.get(t, "alice", "/v2/team/ci/manifests/1"); resp != http.StatusOK {
		t.Fatalf("team/ci:1 after the robot's push: %d", resp)
	}
	if r := runCmd(t, time.Minute, nil, "", kvregBin, "token", "revoke", "ci", "--root", reg.root); r.err != nil {
		t.Fatalf("kvreg token revoke: %v\n%s", r.err, r.out)
	}
	r := d.run(t, secret, "login", "--username", "ci", "--password-stdin", host)
	if r.err == nil || !strings.Contains(strings.ToLower(r.out), "unauthorized") {
		t.Fatalf("docker login as the revoked robot: %v\n%s", r.err, r.out)
	}
	ls := runCmd(t, time.Minute, nil, "", kvregBin, "token", "ls", "--root", reg.root)
	if ls.err != nil || !strings.Contains(ls.stdout, "revoked") || strings.Contains(ls.stdout, secret) {
		t.Fatalf("kvreg token ls after the revocation: %v\n%s", ls.err, ls.out)
	}

	// Everything went over TLS, as the callers who logged in, in the
	// token flow.
	log := reg.log()
	requests := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"msg":"request"`) {
			continue
		}
		requests++
		if !strings.Contains(line, `"tls":true`) {
			t.Errorf("a request not over TLS: %s", line)
		}
	}
	for _, want := range []string{`"user":"alice","remote"`, `"user":"bob","remote"`, `"user":"ci","remote"`,
		`"route":"token","status":200`, `"route":"token","status":401`, `"status":401`, `"reason":"robot_revoked"`} {
		if !strings.Contains(log, want) {
			t.Errorf("kvreg log lacks %s", want)
		}
	}
	if strings.Contains(log, secret) {
		t.Error("kvreg log shows the robot's secret")
	}
	t.Logf("%d requests, all over TLS", requests)
	d.run(t, "", "logout", host)
	d.run(t, "", "rmi", ref, bobRef, pub, anonRef, ciRef)

	reg.stop(t)
	fsck := runCmd(t, time.Minute, nil, "", kvregBin, "fsck", "--root", reg.root, "--deep")
	if fsck.err != nil || !strings.Contains(fsck.out, "clean") {
		t.Fatalf("kvreg fsck: %v\n%s", fsck.err, fsck.out)
	}
}

// refused fails t unless docker said the registry refused the request.
func refused(t *testing.T, r result, what string) {
	t.Helper()
	t.Logf("%s:\n%s", what, strings.TrimSpace(r.out))
	low := strings.ToLower(r.out)
	if r.err == nil || !(strings.Contains(low, "denied") || strings.Contains(low, "unauthorized") || strings.Contains(low, "not found")) {
		t.Fatalf("%s: %v\n%s", what, r.err, r.out)
	}
}

// get sends GET path as user and returns the status.
func (r *tlsRegistry) get(t testing.TB, user, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://"+r.addr+path, nil)
	req.SetBasicAuth(user, user+"-pw")
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
