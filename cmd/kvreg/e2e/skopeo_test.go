package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"
)

// skopeo runs skopeo with its own policy, registries configuration and
// temp directory, so that nothing of the machine's configuration applies.
type skopeo struct {
	bin, dir string
	env      []string
}

func newSkopeo(t *testing.T) *skopeo {
	bin := needTool(t, "skopeo", "apt-get install -y skopeo")
	dir := t.TempDir()
	for name, content := range map[string]string{
		"policy.json":     `{"default":[{"type":"insecureAcceptAnything"}]}`,
		"registries.conf": "",
		"auth.json":       `{"auths":{}}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"registries.d", "tmp", "home"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	s := &skopeo{bin: bin, dir: dir, env: []string{
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
		"REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json"),
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "home", ".config"),
	}}
	if r := runCmd(t, time.Minute, s.env, bin, "--version"); r.err != nil {
		missing(t, "skopeo cannot start: %v\n%s", r.err, r.combined())
	}
	return s
}

func (s *skopeo) args(args []string) []string {
	return append([]string{"--policy", filepath.Join(s.dir, "policy.json"),
		"--registries.d", filepath.Join(s.dir, "registries.d"),
		"--tmpdir", filepath.Join(s.dir, "tmp")}, args...)
}

func (s *skopeo) must(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, 3*time.Minute, s.env, s.bin, s.args(args)...).stdout
}

func (s *skopeo) run(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, 3*time.Minute, s.env, s.bin, s.args(args)...)
}

// TestSkopeo drives kvreg with skopeo: copy from and to an OCI layout,
// copy between two repositories, inspect, list-tags and delete.
func TestSkopeo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "skopeo suite")()
	sk := newSkopeo(t)
	reg := startRegistry(t)
	docker := func(ref string) string { return "docker://" + reg.ref(ref) }
	const noTLSsrc, noTLSdst, noTLS = "--src-tls-verify=false", "--dest-tls-verify=false", "--tls-verify=false"

	rng := newRand()
	srcDir := filepath.Join(t.TempDir(), "src-layout")
	img := ociLayout(t, srcDir, "1", "amd64", "skopeo",
		makeLayer(t, rng, textFile("etc/os-release", "NAME=kvreg-e2e\n"), randomFile("usr/lib/one.bin", 1<<20)),
		makeLayer(t, rng, randomFile("opt/two.bin", 2<<20)))
	var layerDigests []string
	for _, l := range img.Manifest.Layers {
		layerDigests = append(layerDigests, l.Digest)
	}

	t.Run("CopyFromOCILayout", func(t *testing.T) {
		defer step(t, "skopeo copy oci: -> kvreg")()
		sk.must(t, "copy", noTLSdst, "oci:"+srcDir+":1", docker("sk/src:1"))
		if got := reg.headDigest(t, "sk/src", "1"); got != img.Digest {
			t.Errorf("sk/src:1 is %s, want the layout's manifest %s unchanged", got, img.Digest)
		}
		requireBlobs(t, reg, true, "copied from the layout", img.Manifest.blobs()...)
	})

	t.Run("CopyBetweenRepositories", func(t *testing.T) {
		defer step(t, "skopeo copy kvreg -> kvreg")()
		sk.must(t, "copy", noTLSsrc, noTLSdst, docker("sk/src:1"), docker("sk/dst:1"))
		sk.must(t, "copy", noTLSsrc, noTLSdst, docker("sk/src:1"), docker("sk/dst:2"))
		for _, tag := range []string{"1", "2"} {
			if got := reg.headDigest(t, "sk/dst", tag); got != img.Digest {
				t.Errorf("sk/dst:%s is %s, want %s", tag, got, img.Digest)
			}
		}
	})

	t.Run("Inspect", func(t *testing.T) {
		var info struct {
			Digest       string
			Layers       []string
			Architecture string
			Os           string
		}
		mustJSON(t, []byte(sk.must(t, "inspect", noTLS, docker("sk/dst:1"))), &info)
		if info.Digest != img.Digest || !slices.Equal(info.Layers, layerDigests) || info.Architecture != "amd64" || info.Os != "linux" {
			t.Errorf("skopeo inspect: %+v, want digest %s, layers %v, linux/amd64", info, img.Digest, layerDigests)
		}
		raw := sk.must(t, "inspect", "--raw", noTLS, docker("sk/dst:1"))
		if got := sha256Digest([]byte(raw)); got != img.Digest {
			t.Errorf("skopeo inspect --raw: bytes of digest %s, want the exact bytes pushed (%s):\n%s", got, img.Digest, raw)
		}
	})

	t.Run("ListTags", func(t *testing.T) {
		var tags struct {
			Repository string
			Tags       []string
		}
		mustJSON(t, []byte(sk.must(t, "list-tags", noTLS, docker("sk/dst"))), &tags)
		sort.Strings(tags.Tags)
		if !slices.Equal(tags.Tags, []string{"1", "2"}) {
			t.Errorf("skopeo list-tags sk/dst: %+v, want tags [1 2]", tags)
		}
	})

	outDir := filepath.Join(t.TempDir(), "out-layout")
	t.Run("CopyToOCILayout", func(t *testing.T) {
		defer step(t, "skopeo copy kvreg -> oci:")()
		sk.must(t, "copy", noTLSsrc, docker("sk/dst:1"), "oci:"+outDir+":1")
		md, m := readLayout(t, outDir, "1")
		if md != img.Digest || !slices.Equal(m.blobs(), img.Manifest.blobs()) {
			t.Errorf("OCI layout from kvreg: manifest %s blobs %v, want %s blobs %v", md, m.blobs(), img.Digest, img.Manifest.blobs())
		}
	})

	t.Run("Delete", func(t *testing.T) {
		defer step(t, "skopeo delete")()
		// skopeo deletes by digest: every tag on the image goes with it,
		// and the repository, which holds nothing else, leaves _catalog.
		sk.must(t, "delete", noTLS, docker("sk/dst:1"))
		if st := reg.manifestStatus(t, "sk/dst", "1"); st != 404 {
			t.Errorf("sk/dst:1 after skopeo delete: HEAD %d, want 404", st)
		}
		if tags := reg.tags(t, "sk/dst"); len(tags) != 0 {
			t.Errorf("sk/dst still has tags %v after deleting its only image", tags)
		}
		if r := sk.run(t, "inspect", noTLS, docker("sk/dst:1")); r.err == nil {
			t.Errorf("skopeo inspect of a deleted image succeeded:\n%s", r.stdout)
		}
		// skopeo's copy to sk/dst:2 HEADed every blob in sk/dst first (and
		// was told "exists"); its manifest PUT referenced them all.
		if cat := reg.catalog(t); slices.Contains(cat, "sk/dst") || !slices.Contains(cat, "sk/src") {
			t.Errorf("_catalog %v: want sk/src and not sk/dst, whose only image was deleted", cat)
		}
		for _, b := range img.Manifest.blobs() {
			if st, _, _ := reg.do(t, "HEAD", "/v2/sk/dst/blobs/"+b, nil); st != 404 {
				t.Errorf("HEAD blob %s in sk/dst after its only image was deleted: %d, want 404", b, st)
			}
		}
		// The blobs are still held by sk/src.
		requireBlobs(t, reg, true, "blobs shared with sk/src", img.Manifest.blobs()...)
		sk.must(t, "inspect", noTLS, docker("sk/src:1"))

		// Deleting the last image frees its blobs. skopeo's copies probed
		// sk/src with HEADs (candidates for a cross-repository mount), and
		// a HEAD that answers "exists" pins the blob for --pin-window, as
		// designed. Pins live in memory: a restart drops them, so that this
		// shows the reclaim itself.
		reg.restart(t)
		sk.must(t, "delete", noTLS, docker("sk/src:1"))
		requireBlobs(t, reg, false, "blobs of the last copy, deleted", img.Manifest.blobs()...)
		if cat := reg.catalog(t); len(cat) != 0 {
			t.Errorf("_catalog %v after deleting every image, want empty", cat)
		}
	})

	t.Run("CopyBackFromLayout", func(t *testing.T) {
		sk.must(t, "copy", noTLSdst, "oci:"+outDir+":1", docker("sk/back:1"))
		if got := reg.headDigest(t, "sk/back", "1"); got != img.Digest {
			t.Errorf("sk/back:1 is %s, want %s", got, img.Digest)
		}
		requireBlobs(t, reg, true, "copied back", img.Manifest.blobs()...)
	})

	reg.fsck(t, true)
}
