package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// regctl pins: go install github.com/regclient/regclient/cmd/regctl@v0.11.7
const regctlInstall = "go install github.com/regclient/regclient/cmd/regctl@v0.11.7"

const (
	atSBOM = "application/vnd.kvreg.e2e.sbom"
	atSig  = "application/vnd.kvreg.e2e.signature"
)

type regctl struct {
	bin string
	env []string
}

// newRegctl runs regctl with HOME in a temp directory, so that its
// configuration (~/.regctl/config.json) is the test's own.
func newRegctl(t *testing.T) *regctl {
	bin := needTool(t, "regctl", regctlInstall)
	home := t.TempDir()
	r := &regctl{bin: bin, env: []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}}
	if res := runCmd(t, time.Minute, r.env, bin, "version"); res.err != nil {
		missing(t, "regctl cannot start: %v\n%s", res.err, res.combined())
	}
	return r
}

func (r *regctl) must(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, 3*time.Minute, r.env, r.bin, args...).stdout
}

func (r *regctl) run(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, 3*time.Minute, r.env, r.bin, args...)
}

// referrers lists a subject's referrers as regctl sees them.
func (r *regctl) referrers(t *testing.T, ref string, args ...string) []descriptor {
	t.Helper()
	var list struct {
		Descriptors []descriptor `json:"descriptors"`
	}
	out := r.must(t, append([]string{"artifact", "list", ref, "--format", "{{json .}}"}, args...)...)
	mustJSON(t, []byte(out), &list)
	return list.Descriptors
}

// TestRegctl drives kvreg with regctl: image copy (from an OCI layout and
// between repositories), artifact put --subject, artifact list (the
// referrers API), and tag delete.
func TestRegctl(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "regctl suite")()
	rc := newRegctl(t)
	reg := startRegistry(t)
	rc.must(t, "registry", "set", reg.host(), "--tls", "disabled")

	dir := t.TempDir()
	rng := newRand()
	img := ociLayout(t, filepath.Join(dir, "layout"), "1", "amd64", "regctl",
		makeLayer(t, rng, textFile("etc/hello", "from regctl\n"), randomFile("opt/one.bin", 1<<20)),
		makeLayer(t, rng, randomFile("opt/two.bin", 512<<10)))
	app := reg.ref("rc/app:1")

	t.Run("ImageCopy", func(t *testing.T) {
		defer step(t, "regctl image copy")()
		rc.must(t, "image", "copy", "ocidir://"+filepath.Join(dir, "layout")+":1", app)
		rc.must(t, "image", "copy", app, reg.ref("rc/copy:1"))
		rc.must(t, "image", "copy", app, reg.ref("rc/app:2"))
		for _, ref := range []string{"rc/app:1", "rc/app:2", "rc/copy:1"} {
			if got := strings.TrimSpace(rc.must(t, "image", "digest", reg.ref(ref))); got != img.Digest {
				t.Errorf("regctl image digest %s: %s, want %s", ref, got, img.Digest)
			}
		}
		requireBlobs(t, reg, true, "copied image", img.Manifest.blobs()...)
	})

	sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"kvreg-e2e"}` + "\n")
	var sbomDigest string
	t.Run("ArtifactPutList", func(t *testing.T) {
		defer step(t, "regctl artifact put/list")()
		sbomFile := filepath.Join(dir, "sbom.json")
		sigFile := filepath.Join(dir, "sig.txt")
		os.WriteFile(sbomFile, sbom, 0o644)
		os.WriteFile(sigFile, []byte("not really a signature\n"), 0o644)
		sbomDigest = sha256Digest(sbom)
		rc.must(t, "artifact", "put", "--subject", app, "--artifact-type", atSBOM, "-f", sbomFile, "-m", "application/spdx+json")
		rc.must(t, "artifact", "put", "--subject", app, "--artifact-type", atSig, "-f", sigFile, "-m", "text/plain")

		refs := rc.referrers(t, app)
		var types []string
		for _, d := range refs {
			types = append(types, d.ArtifactType)
		}
		slices.Sort(types)
		if !slices.Equal(types, []string{atSBOM, atSig}) {
			t.Fatalf("regctl artifact list %s: types %v, want [%s %s]", app, types, atSBOM, atSig)
		}
		only := rc.referrers(t, app, "--filter-artifact-type", atSBOM)
		if len(only) != 1 || only[0].ArtifactType != atSBOM {
			t.Errorf("artifact list --filter-artifact-type %s: %+v", atSBOM, only)
		}
		// The same, straight from the referrers API, with the server-side
		// filter.
		st, h, body := reg.do(t, http.MethodGet, "/v2/rc/app/referrers/"+img.Digest+"?artifactType="+atSBOM, nil)
		idx := parseManifest(t, body)
		if st != 200 || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != atSBOM || h.Get("OCI-Filters-Applied") != "artifactType" {
			t.Errorf("GET referrers?artifactType=%s: %d %v %s", atSBOM, st, h, body)
		}
		got := rc.must(t, "artifact", "get", "--subject", app, "--filter-artifact-type", atSBOM)
		if got != string(sbom) {
			t.Errorf("regctl artifact get: %q, want %q", got, sbom)
		}
		// Another tag of the same image shows the same referrers.
		if n := len(rc.referrers(t, reg.ref("rc/app:2"))); n != 2 {
			t.Errorf("referrers of rc/app:2 (same image): %d, want 2", n)
		}
	})

	t.Run("TagDelete", func(t *testing.T) {
		rc.must(t, "tag", "delete", reg.ref("rc/app:2"))
		if got := strings.Fields(rc.must(t, "tag", "ls", reg.ref("rc/app"))); !slices.Equal(got, []string{"1"}) {
			t.Errorf("regctl tag ls rc/app after deleting tag 2: %v, want [1]", got)
		}
		if got := reg.headDigest(t, "rc/app", "1"); got != img.Digest {
			t.Errorf("rc/app:1 is %s, want %s", got, img.Digest)
		}
		if n := len(rc.referrers(t, app)); n != 2 {
			t.Errorf("referrers of rc/app:1 after deleting its other tag: %d, want 2", n)
		}
		// The copy's only tag: the image goes, and the repository with it.
		rc.must(t, "tag", "delete", reg.ref("rc/copy:1"))
		if st := reg.manifestStatus(t, "rc/copy", img.Digest); st != 404 {
			t.Errorf("rc/copy@%s after deleting its only tag: HEAD %d, want 404", img.Digest, st)
		}
		if slices.Contains(reg.catalog(t), "rc/copy") {
			t.Errorf("_catalog still lists rc/copy, which has nothing left")
		}
		requireBlobs(t, reg, true, "blobs rc/app still uses", img.Manifest.blobs()...)
	})

	t.Run("SubjectDeleteTakesReferrers", func(t *testing.T) {
		refs := rc.referrers(t, app)
		rc.must(t, "tag", "delete", app)
		for _, d := range refs {
			if st := reg.manifestStatus(t, "rc/app", d.Digest); st != 404 {
				t.Errorf("referrer %s (%s) of the deleted image: HEAD %d, want 404", d.Digest, d.ArtifactType, st)
			}
		}
		requireBlobs(t, reg, false, "blobs of the deleted image and its artifacts", append(img.Manifest.blobs(), sbomDigest)...)
		if cat := reg.catalog(t); len(cat) != 0 {
			t.Errorf("_catalog %v after deleting everything, want empty", cat)
		}
		if r := rc.run(t, "image", "digest", app); r.err == nil {
			t.Errorf("regctl image digest of a deleted tag succeeded: %s", r.stdout)
		}
	})

	reg.fsck(t, true)
}
