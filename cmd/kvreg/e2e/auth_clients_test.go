package e2e

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/auth/authtest"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// oras and helm pins, as CI installs them.
const (
	orasInstall = "go install oras.land/oras/cmd/oras@v1.3.6"
	helmInstall = "go install helm.sh/helm/v3/cmd/helm@v3.22.0"
)

// tokenAccess: alice may do everything, bob may pull team/*, anyone may
// pull public/*.
const tokenAccess = `  - repos: ["*"]
    users: [alice]
    actions: [pull, push, delete]
  - repos: ["team/*"]
    users: [bob]
    actions: [pull]
  - repos: ["public/*"]
    anonymous: true
    actions: [pull]
`

// authClient is one client driven through the token flow: each operation
// runs the client itself with its own configuration directory.
type authClient struct {
	// pullPublic pulls what alice put in the public repository with no
	// login and fails t unless it got the digest alice pushed.
	pullPublic func(t *testing.T)
	// push pushes new content to repo and returns what the client said and
	// the digest of what it pushed (as the client printed it, or of the
	// layout it pushed).
	push func(t *testing.T, repo string) (cmdResult, string)
	// pull pulls repo's content back and returns its digest.
	pull func(t *testing.T, repo string) string
	// login logs in as user with the client's own login command.
	login func(t *testing.T, user string)
	// tag is the tag push gives (helm: the chart's version).
	tag string
}

// published is what alice put in the public repositories before the
// clients ran.
type published struct {
	image, artifact, chart string // digests
	artifactText           string
}

// TestTokenAuthClients: crane, skopeo, regctl, oras and helm against kvreg
// in token mode over plain HTTP. With no login each pulls public content
// and is refused a push there; logged in as alice it pushes to team/ and
// pulls back the same digest; logged in as bob (pull on team/* only) a push
// is refused with nothing written while a pull works.
func TestTokenAuthClients(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "token auth clients")()
	reg := startTokenRegistry(t)
	rng := newRand()
	pub := publish(t, reg, rng)

	for _, c := range []struct {
		name string
		make func(t *testing.T) authClient
	}{
		{"crane", func(t *testing.T) authClient { return craneAuth(t, reg, pub, rng) }},
		{"skopeo", func(t *testing.T) authClient { return skopeoAuth(t, reg, pub, rng) }},
		{"regctl", func(t *testing.T) authClient { return regctlAuth(t, reg, pub, rng) }},
		{"oras", func(t *testing.T) authClient { return orasAuth(t, reg, pub) }},
		{"helm", func(t *testing.T) authClient { return helmAuth(t, reg, pub) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer step(t, c.name)()
			cl := c.make(t)

			// 1. No login: the public repository pulls. (kvreg serves
			// what anonymous rules allow without a challenge, so a client
			// that does not ping /v2/ first pulls with no token at all.)
			anon := reg.tokensIssued(t, "anonymous")
			cl.pullPublic(t)

			// 2. No login: a push to public/ is refused, nothing written.
			before := reg.authFiles(t)
			r, _ := cl.push(t, "public/"+c.name)
			refusedPush(t, r, c.name+" anonymous push to public/"+c.name)
			reg.nothingWritten(t, before, "public/"+c.name)
			// The push's challenge sent the client to /token, which
			// gave it an anonymous token without push.
			if n := reg.tokensIssued(t, "anonymous"); n <= anon {
				t.Errorf("%s pulled and pushed with no login and no anonymous token was issued (%v before, %v after)", c.name, anon, n)
			}

			// 3. alice pushes to team/ and pulls back the same digest,
			// with tokens issued to her.
			users := reg.tokensIssued(t, "user")
			cl.login(t, "alice")
			r, want := cl.push(t, "team/"+c.name)
			if r.err != nil {
				t.Fatalf("%s push to team/%s as alice: %v\n%s", c.name, c.name, r.err, r.combined())
			}
			if got := reg.digestAs(t, "alice", "team/"+c.name, cl.tag); got != want {
				t.Fatalf("%s pushed %q, registry holds %s:\n%s", c.name, want, got, r.combined())
			}
			if got := cl.pull(t, "team/"+c.name); got != want {
				t.Fatalf("%s pulled team/%s back as %s, pushed %s", c.name, c.name, got, want)
			}
			if n := reg.tokensIssued(t, "user"); n <= users {
				t.Errorf("%s pushed and pulled as alice and no user token was issued (%v before, %v after)", c.name, users, n)
			}

			// 4. bob is refused a push with nothing written, and pulls.
			cl.login(t, "bob")
			before = reg.authFiles(t)
			r, _ = cl.push(t, "team/"+c.name+"-bob")
			refusedPush(t, r, c.name+" push to team/"+c.name+"-bob as bob")
			reg.nothingWritten(t, before, "team/"+c.name+"-bob")
			if got := cl.pull(t, "team/"+c.name); got != want {
				t.Fatalf("%s as bob pulled team/%s as %s, want %s", c.name, c.name, got, want)
			}
		})
	}

	// Tokens were issued to anonymous callers and to users.
	for _, caller := range []string{"anonymous", "user"} {
		n := reg.tokensIssued(t, caller)
		t.Logf("kvreg_tokens_issued_total{caller=%q,kind=\"access\"} %v", caller, n)
		if n <= 0 {
			t.Errorf("access tokens issued to %s callers: %v, want > 0", caller, n)
		}
	}
}

// tokensIssued scrapes /metrics for the access tokens issued to a kind of
// caller (anonymous, user, robot); 0 when none was.
func (r *registry) tokensIssued(t *testing.T, caller string) float64 {
	t.Helper()
	st, _, body := r.do(t, http.MethodGet, "/metrics", nil)
	if st != http.StatusOK {
		t.Fatalf("GET /metrics: %d", st)
	}
	series := fmt.Sprintf(`kvreg_tokens_issued_total{caller=%q,kind="access"}`, caller)
	return max(metricValue(string(body), series), 0)
}

// startTokenRegistry runs kvreg with users alice and bob (password: name +
// "-pw") and tokenAccess, in the default (token) mode, on plain HTTP.
func startTokenRegistry(t *testing.T) *registry {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	conf := filepath.Join(dir, "kvreg.yaml")
	if err := os.WriteFile(htpasswd, []byte(authtest.Htpasswd(t, "alice", "bob")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("htpasswd: %s\nlog-format: json\naccess:\n%s", htpasswd, tokenAccess)), 0o600); err != nil {
		t.Fatal(err)
	}
	return startRegistryWith(t, "", "--config", conf)
}

// publish puts, as alice, an image in public/image:1 (go-containerregistry,
// in the token flow), an artifact in public/artifact:1 (oras) and a chart
// in public/chart:0.1.0 (helm).
func publish(t *testing.T, reg *registry, rng io.Reader) published {
	t.Helper()
	defer step(t, "publish as alice")()
	var p published
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.ref("public/image:1"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})); err != nil {
		t.Fatalf("push public/image:1 as alice: %v", err)
	}
	d, _ := img.Digest()
	p.image = d.String()

	oras := newOras(t)
	p.artifactText = fmt.Sprintf("public artifact %d\n", time.Now().UnixNano())
	file := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(file, []byte(p.artifactText), 0o644); err != nil {
		t.Fatal(err)
	}
	r := oras.runIn(t, filepath.Dir(file), "push", "--plain-http", "-u", "alice", "-p", "alice-pw", reg.ref("public/artifact:1"), "note.txt")
	if r.err != nil {
		t.Fatalf("oras push public/artifact:1 as alice: %v\n%s", r.err, r.combined())
	}
	p.artifact = reg.digestAs(t, "alice", "public/artifact", "1")

	helm := newHelm(t)
	chart := helm.chart(t, "chart", "public chart")
	r = helm.run(t, "push", chart, "oci://"+reg.ref("public"), "--plain-http", "--username", "alice", "--password", "alice-pw")
	if r.err != nil {
		t.Fatalf("helm push public/chart as alice: %v\n%s", r.err, r.combined())
	}
	p.chart = reg.digestAs(t, "alice", "public/chart", "0.1.0")
	if got := printedDigest(r.combined()); got != p.chart {
		t.Fatalf("helm push said digest %q, registry holds %s", got, p.chart)
	}
	return p
}

// refusedPush fails t unless the client failed and said the registry
// refused it; its words are logged.
func refusedPush(t *testing.T, r cmdResult, what string) {
	t.Helper()
	out := strings.TrimSpace(r.combined())
	t.Logf("%s (refused, as it should be):\n%s", what, testenv.Tail(out, 2000))
	low := strings.ToLower(out)
	if r.err == nil {
		t.Fatalf("%s succeeded, want it refused:\n%s", what, out)
	}
	if refusalWords.MatchString(low) {
		return
	}
	t.Fatalf("%s failed without saying it was refused (denied, unauthorized, 401 or 403): %v\n%s", what, r.err, out)
}

// authFiles lists each blob and upload in progress in the data directory,
// with its size.
func (r *registry) authFiles(t *testing.T) map[string]int64 {
	t.Helper()
	out, err := testenv.Stored(r.root)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	return out
}

// nothingWritten fails t if the blob store changed since before, or repo
// exists (seen by alice, who may pull everything).
func (r *registry) nothingWritten(t *testing.T, before map[string]int64, repo string) {
	t.Helper()
	if after := r.authFiles(t); !maps.Equal(before, after) {
		t.Fatalf("a refused push wrote files:\nbefore %v\nafter  %v", before, after)
	}
	if st, _, body := r.doAs(t, "alice", http.MethodGet, "/v2/"+repo+"/tags/list"); st != http.StatusNotFound {
		t.Fatalf("%s after a refused push: GET tags/list %d, want 404: %s", repo, st, body)
	}
}

// doAs sends a request with user's Basic credentials, which /v2/ takes in
// token mode too.
func (r *registry) doAs(t *testing.T, user, method, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, user+"-pw")
	req.Header.Set("Accept", manifestAccept)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, body
}

// digestAs is the digest of repo:ref, asked as user.
func (r *registry) digestAs(t *testing.T, user, repo, ref string) string {
	t.Helper()
	st, h, body := r.doAs(t, user, http.MethodHead, "/v2/"+repo+"/manifests/"+ref)
	if st != http.StatusOK || !strings.HasPrefix(h.Get("Docker-Content-Digest"), "sha256:") {
		t.Fatalf("HEAD %s:%s as %s: %d %s", repo, ref, user, st, body)
	}
	return h.Get("Docker-Content-Digest")
}

// refusalWords are how clients say the registry refused them; the status
// codes stand alone, not inside a digest.
var refusalWords = regexp.MustCompile(`denied|unauthorized|\b40[13]\b`)

var digestLine = regexp.MustCompile(`(?m)^Digest: (sha256:[0-9a-f]{64})\s*$`)

// printedDigest is the digest oras and helm print after a push or pull.
func printedDigest(out string) string {
	m := digestLine.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// metricValue is the value of one series in a Prometheus text exposition,
// or -1 when it is absent.
func metricValue(text, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// layoutDigest is the digest of the only manifest of the OCI layout at dir,
// whose config and layers must all be there with their digests.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	blob := func(d string) []byte {
		t.Helper()
		alg, hx, _ := strings.Cut(d, ":")
		b, err := os.ReadFile(filepath.Join(dir, "blobs", alg, hx))
		if err != nil {
			t.Fatalf("OCI layout %s: blob %s: %v", dir, d, err)
		}
		if got := sha256Digest(b); got != d {
			t.Fatalf("OCI layout %s: blob %s has digest %s", dir, d, got)
		}
		return b
	}
	ib, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	idx := parseManifest(t, ib)
	if len(idx.Manifests) != 1 {
		t.Fatalf("OCI layout %s lists %d manifests, want 1:\n%s", dir, len(idx.Manifests), ib)
	}
	md := idx.Manifests[0].Digest
	for _, d := range parseManifest(t, blob(md)).blobs() {
		blob(d)
	}
	return md
}

// --- crane

func craneAuth(t *testing.T, reg *registry, pub published, rng io.Reader) authClient {
	c := newCrane(t)
	pullTo := func(t *testing.T, repo, tag string) string {
		dir := filepath.Join(t.TempDir(), "layout")
		c.must(t, "pull", "--format", "oci", reg.ref(repo+":"+tag), dir)
		return layoutDigest(t, dir)
	}
	return authClient{
		tag: "1",
		pullPublic: func(t *testing.T) {
			d := pullTo(t, "public/image", "1")
			if d != pub.image {
				t.Fatalf("crane pulled public/image:1 as %s, alice pushed %s", d, pub.image)
			}
		},
		push: func(t *testing.T, repo string) (cmdResult, string) {
			layer := filepath.Join(t.TempDir(), "layer.tar")
			writeLayerFile(t, layer, rng, randomFile("opt/crane.bin", 64<<10))
			r := c.run(t, "append", "-f", layer, "-t", reg.ref(repo+":1"))
			_, d, _ := strings.Cut(strings.TrimSpace(r.stdout), "@")
			return r, d
		},
		pull: func(t *testing.T, repo string) string { return pullTo(t, repo, "1") },
		login: func(t *testing.T, user string) {
			c.must(t, "auth", "login", reg.host(), "-u", user, "-p", user+"-pw")
		},
	}
}

// --- skopeo

func skopeoAuth(t *testing.T, reg *registry, pub published, rng io.Reader) authClient {
	sk := newSkopeo(t)
	pullTo := func(t *testing.T, repo, tag string) string {
		// dir: keeps the manifest as it came (oci: would convert a
		// Docker manifest, and change its digest).
		dir := filepath.Join(t.TempDir(), "dir")
		sk.must(t, "copy", "--src-tls-verify=false", "docker://"+reg.ref(repo+":"+tag), "dir:"+dir)
		raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range parseManifest(t, raw).blobs() {
			b, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(d, "sha256:")))
			if err != nil || sha256Digest(b) != d {
				t.Fatalf("skopeo copy to dir: blob %s: %v (digest %s)", d, err, sha256Digest(b))
			}
		}
		return sha256Digest(raw)
	}
	return authClient{
		tag: "1",
		pullPublic: func(t *testing.T) {
			d := pullTo(t, "public/image", "1")
			if d != pub.image {
				t.Fatalf("skopeo pulled public/image:1 as %s, alice pushed %s", d, pub.image)
			}
		},
		push: func(t *testing.T, repo string) (cmdResult, string) {
			dir := filepath.Join(t.TempDir(), "src")
			img := ociLayout(t, dir, "1", "amd64", "skopeo "+repo, makeLayer(t, rng, randomFile("opt/skopeo.bin", 64<<10)))
			r := sk.run(t, "copy", "--dest-tls-verify=false", "oci:"+dir+":1", "docker://"+reg.ref(repo+":1"))
			return r, img.Digest
		},
		pull: func(t *testing.T, repo string) string { return pullTo(t, repo, "1") },
		login: func(t *testing.T, user string) {
			sk.must(t, "login", "--tls-verify=false", "-u", user, "-p", user+"-pw", reg.host())
		},
	}
}

// --- regctl

func regctlAuth(t *testing.T, reg *registry, pub published, rng io.Reader) authClient {
	rc := newRegctl(t)
	rc.must(t, "registry", "set", reg.host(), "--tls", "disabled")
	pullTo := func(t *testing.T, repo, tag string) string {
		dir := filepath.Join(t.TempDir(), "layout")
		rc.must(t, "image", "copy", reg.ref(repo+":"+tag), "ocidir://"+dir+":"+tag)
		return layoutDigest(t, dir)
	}
	return authClient{
		tag: "1",
		pullPublic: func(t *testing.T) {
			d := pullTo(t, "public/image", "1")
			if d != pub.image {
				t.Fatalf("regctl pulled public/image:1 as %s, alice pushed %s", d, pub.image)
			}
		},
		push: func(t *testing.T, repo string) (cmdResult, string) {
			dir := filepath.Join(t.TempDir(), "src")
			img := ociLayout(t, dir, "1", "amd64", "regctl "+repo, makeLayer(t, rng, randomFile("opt/regctl.bin", 64<<10)))
			r := rc.run(t, "image", "copy", "ocidir://"+dir+":1", reg.ref(repo+":1"))
			return r, img.Digest
		},
		pull: func(t *testing.T, repo string) string { return pullTo(t, repo, "1") },
		login: func(t *testing.T, user string) {
			rc.must(t, "registry", "login", reg.host(), "-u", user, "-p", user+"-pw")
		},
	}
}

// --- oras

type orasCLI struct {
	bin string
	env []string
}

// newOras runs oras with HOME and DOCKER_CONFIG (where it keeps logins) in
// a temp directory.
func newOras(t *testing.T) *orasCLI {
	t.Helper()
	bin := needTool(t, "oras", orasInstall)
	home := t.TempDir()
	o := &orasCLI{bin: bin, env: []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}}
	if r := runCmd(t, time.Minute, o.env, bin, "version"); r.err != nil {
		missing(t, "oras cannot start: %v\n%s", r.err, r.combined())
	}
	return o
}

// runIn runs oras in dir: oras push names files relative to it.
func (o *orasCLI) runIn(t *testing.T, dir string, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, 2*time.Minute, append(o.env, "ORAS_DIR="+dir), "/bin/sh", append([]string{"-c", `cd "$ORAS_DIR" && exec "$0" "$@"`, o.bin}, args...)...)
}

func orasAuth(t *testing.T, reg *registry, pub published) authClient {
	o := newOras(t)
	pull := func(t *testing.T, repo, tag string) (string, string) {
		dir := t.TempDir()
		r := o.runIn(t, dir, "pull", "--plain-http", reg.ref(repo+":"+tag), "-o", dir)
		if r.err != nil {
			t.Fatalf("oras pull %s:%s: %v\n%s", repo, tag, r.err, r.combined())
		}
		b, err := os.ReadFile(filepath.Join(dir, "note.txt"))
		if err != nil {
			t.Fatalf("oras pull %s:%s: %v\n%s", repo, tag, err, r.combined())
		}
		return printedDigest(r.combined()), string(b)
	}
	return authClient{
		tag: "1",
		pullPublic: func(t *testing.T) {
			d, text := pull(t, "public/artifact", "1")
			if d != pub.artifact || text != pub.artifactText {
				t.Fatalf("oras pulled public/artifact:1 as %s (%q), alice pushed %s (%q)", d, text, pub.artifact, pub.artifactText)
			}
		},
		push: func(t *testing.T, repo string) (cmdResult, string) {
			dir := t.TempDir()
			text := fmt.Sprintf("%s %d\n", repo, time.Now().UnixNano())
			if err := os.WriteFile(filepath.Join(dir, "note.txt"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			r := o.runIn(t, dir, "push", "--plain-http", reg.ref(repo+":1"), "note.txt")
			return r, printedDigest(r.combined())
		},
		pull: func(t *testing.T, repo string) string { d, _ := pull(t, repo, "1"); return d },
		login: func(t *testing.T, user string) {
			r := runCmd(t, time.Minute, o.env, o.bin, "login", "--plain-http", "-u", user, "-p", user+"-pw", reg.host())
			if r.err != nil || !strings.Contains(r.combined(), "Login Succeeded") {
				t.Fatalf("oras login as %s: %v\n%s", user, r.err, r.combined())
			}
		},
	}
}

// --- helm

type helmCLI struct {
	bin, dir string
	env      []string
}

// newHelm runs helm with its registry configuration, cache, data and HOME
// in a temp directory.
func newHelm(t *testing.T) *helmCLI {
	t.Helper()
	bin := needTool(t, "helm", helmInstall)
	dir := t.TempDir()
	h := &helmCLI{bin: bin, dir: dir, env: []string{
		"HOME=" + dir,
		"HELM_REGISTRY_CONFIG=" + filepath.Join(dir, "registry.json"),
		"HELM_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"HELM_DATA_HOME=" + filepath.Join(dir, "data"),
		"DOCKER_CONFIG=" + filepath.Join(dir, ".docker"),
	}}
	if r := runCmd(t, time.Minute, h.env, bin, "version"); r.err != nil {
		missing(t, "helm cannot start: %v\n%s", r.err, r.combined())
	}
	return h
}

func (h *helmCLI) run(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, 2*time.Minute, h.env, h.bin, args...)
}

// chart packages a small chart named name (version 0.1.0) with a note that
// makes its digest new, and returns the .tgz.
func (h *helmCLI) chart(t *testing.T, name, note string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	os.MkdirAll(filepath.Join(src, "templates"), 0o755)
	files := map[string]string{
		"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: %s\nversion: 0.1.0\ndescription: %s %d\n", name, note, time.Now().UnixNano()),
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  note: " +
			strconv.Quote(note) + "\n",
	}
	for p, text := range files {
		if err := os.WriteFile(filepath.Join(src, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	if r := h.run(t, "package", src, "-d", out); r.err != nil {
		t.Fatalf("helm package: %v\n%s", r.err, r.combined())
	}
	return filepath.Join(out, name+"-0.1.0.tgz")
}

func helmAuth(t *testing.T, reg *registry, pub published) authClient {
	h := newHelm(t)
	pull := func(t *testing.T, repo string) string {
		dir := t.TempDir()
		r := h.run(t, "pull", "oci://"+reg.ref(repo), "--version", "0.1.0", "--plain-http", "-d", dir)
		if r.err != nil {
			t.Fatalf("helm pull %s: %v\n%s", repo, r.err, r.combined())
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(repo)+"-0.1.0.tgz")); err != nil {
			t.Fatalf("helm pull %s: %v\n%s", repo, err, r.combined())
		}
		return printedDigest(r.combined())
	}
	return authClient{
		tag: "0.1.0",
		pullPublic: func(t *testing.T) {
			d := pull(t, "public/chart")
			if d != pub.chart {
				t.Fatalf("helm pulled public/chart as %s, alice pushed %s", d, pub.chart)
			}
		},
		// The chart's name is the repository's last part; its tag the
		// version.
		push: func(t *testing.T, repo string) (cmdResult, string) {
			parent, base := filepath.Split(repo)
			r := h.run(t, "push", h.chart(t, base, repo), "oci://"+reg.ref(strings.TrimSuffix(parent, "/")), "--plain-http")
			return r, printedDigest(r.combined())
		},
		pull: pull,
		login: func(t *testing.T, user string) {
			r := h.run(t, "registry", "login", "--plain-http", "-u", user, "-p", user+"-pw", reg.host())
			if r.err != nil || !strings.Contains(r.combined(), "Login Succeeded") {
				t.Fatalf("helm registry login --plain-http as %s: %v\n%s", user, r.err, r.combined())
			}
		},
	}
}
