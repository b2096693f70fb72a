package e2e

import (
	"bytes"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// crane pins: go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
const craneInstall = "go install github.com/google/go-containerregistry/cmd/crane@v0.22.1"

type crane struct {
	bin string
	env []string
}

func newCrane(t *testing.T) *crane {
	bin := needTool(t, "crane", craneInstall)
	dir := t.TempDir()
	c := &crane{bin: bin, env: []string{
		"DOCKER_CONFIG=" + filepath.Join(dir, "docker"), // no credentials of the user's
		"HOME=" + dir,
	}}
	if r := runCmd(t, time.Minute, c.env, bin, "version"); r.err != nil {
		missing(t, "crane cannot start: %v\n%s", r.err, r.combined())
	}
	return c
}

func (c *crane) run(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, 3*time.Minute, c.env, c.bin, append(args, "--insecure")...)
}

func (c *crane) must(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, 3*time.Minute, c.env, c.bin, append(args, "--insecure")...).stdout
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestCrane drives kvreg with crane: copy, tag, ls, catalog, manifest,
// delete, digest, and a two-platform index pulled per platform.
func TestCrane(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "crane suite")()
	c := newCrane(t)
	reg := startRegistry(t)
	dir := t.TempDir()
	rng := newRand()
	digest := func(t *testing.T, ref string, args ...string) string {
		t.Helper()
		out := strings.TrimSpace(c.must(t, append([]string{"digest"}, append(args, reg.ref(ref))...)...))
		if !strings.HasPrefix(out, "sha256:") {
			t.Fatalf("crane digest %s: %q", ref, out)
		}
		return out
	}

	baseTar := filepath.Join(dir, "base.tar")
	writeLayerFile(t, baseTar, rng, textFile("etc/hello", "from crane\n"), randomFile("opt/base.bin", 1<<20))
	var base manifest
	var baseDigest string

	t.Run("AppendAndDigest", func(t *testing.T) {
		c.must(t, "append", "-f", baseTar, "-t", reg.ref("cr/base:1"))
		baseDigest = digest(t, "cr/base:1")
		if got := reg.headDigest(t, "cr/base", "1"); got != baseDigest {
			t.Errorf("crane digest %s, registry says %s", baseDigest, got)
		}
		base, _ = reg.getManifest(t, "cr/base", "1")
	})
	if baseDigest == "" {
		t.Fatal("no base image")
	}

	t.Run("CopyTagLs", func(t *testing.T) {
		c.must(t, "copy", reg.ref("cr/base:1"), reg.ref("cr/copy:1"))
		if got := digest(t, "cr/copy:1"); got != baseDigest {
			t.Errorf("copy is %s, want %s", got, baseDigest)
		}
		c.must(t, "tag", reg.ref("cr/copy:1"), "2")
		c.must(t, "tag", reg.ref("cr/copy:1"), "3")
		if got := lines(c.must(t, "ls", reg.ref("cr/copy"))); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Errorf("crane ls cr/copy: %v, want [1 2 3]", got)
		}
		if got := digest(t, "cr/copy:2"); got != baseDigest {
			t.Errorf("cr/copy:2 is %s, want %s", got, baseDigest)
		}
	})

	t.Run("Catalog", func(t *testing.T) {
		got := lines(c.must(t, "catalog", reg.host()))
		if !slices.Equal(got, []string{"cr/base", "cr/copy"}) {
			t.Errorf("crane catalog: %v, want [cr/base cr/copy]", got)
		}
	})

	t.Run("Manifest", func(t *testing.T) {
		raw := c.must(t, "manifest", reg.ref("cr/copy:2"))
		if got := sha256Digest([]byte(raw)); got != baseDigest {
			t.Errorf("crane manifest: bytes of digest %s, want the exact bytes pushed (%s)", got, baseDigest)
		}
		m := parseManifest(t, []byte(raw))
		if !slices.Equal(m.blobs(), base.blobs()) {
			t.Errorf("crane manifest blobs %v, want %v", m.blobs(), base.blobs())
		}
	})

	t.Run("Delete", func(t *testing.T) {
		// By tag: only that tag goes.
		c.must(t, "delete", reg.ref("cr/copy:3"))
		if got := lines(c.must(t, "ls", reg.ref("cr/copy"))); !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("crane ls cr/copy after deleting tag 3: %v, want [1 2]", got)
		}
		// By digest: the image and every tag on it; the repository empties
		// and leaves the catalog; cr/base keeps the shared blobs.
		c.must(t, "delete", reg.ref("cr/copy@"+baseDigest))
		if r := c.run(t, "digest", reg.ref("cr/copy:1")); r.err == nil {
			t.Errorf("crane digest of a deleted image succeeded: %s", r.stdout)
		}
		if got := reg.tags(t, "cr/copy"); len(got) != 0 {
			t.Errorf("cr/copy still has tags %v", got)
		}
		if got := lines(c.must(t, "catalog", reg.host())); !slices.Equal(got, []string{"cr/base"}) {
			t.Errorf("crane catalog after deleting cr/copy's image: %v, want [cr/base]", got)
		}
		requireBlobs(t, reg, true, "blobs cr/base still uses", base.blobs()...)
		if got := digest(t, "cr/base:1"); got != baseDigest {
			t.Errorf("cr/base:1 is %s after deleting the copy, want %s", got, baseDigest)
		}
	})

	t.Run("MultiPlatformIndex", func(t *testing.T) {
		defer step(t, "multi-platform index")()
		arches := []string{"amd64", "arm64"}
		want := map[string]string{} // arch -> image digest
		for _, arch := range arches {
			p := filepath.Join(dir, arch+".tar")
			writeLayerFile(t, p, rng, textFile("etc/arch", arch+"\n"), randomFile("opt/"+arch+".bin", 256<<10))
			ref := reg.ref("cr/plat:" + arch)
			c.must(t, "append", "-b", reg.ref("cr/base:1"), "-f", p, "-t", ref)
			c.must(t, "mutate", "--set-platform", "linux/"+arch, "-t", ref, ref)
			want[arch] = digest(t, "cr/plat:"+arch)
		}
		c.must(t, "index", "append", "-m", reg.ref("cr/plat:amd64"), "-m", reg.ref("cr/plat:arm64"), "-t", reg.ref("cr/multi:1"))

		raw := c.must(t, "manifest", reg.ref("cr/multi:1"))
		idx := parseManifest(t, []byte(raw))
		got := map[string]string{}
		for _, d := range idx.Manifests {
			if d.Platform != nil && d.Platform.OS == "linux" {
				got[d.Platform.Architecture] = d.Digest
			}
		}
		if len(idx.Manifests) != 2 || got["amd64"] != want["amd64"] || got["arm64"] != want["arm64"] {
			t.Fatalf("index cr/multi:1 lists %v, want %v:\n%s", got, want, raw)
		}
		indexDigest := digest(t, "cr/multi:1")

		for _, arch := range arches {
			pl := "linux/" + arch
			if d := digest(t, "cr/multi:1", "--platform", pl); d != want[arch] {
				t.Errorf("crane digest --platform %s: %s, want %s", pl, d, want[arch])
			}
			m := c.must(t, "manifest", "--platform", pl, reg.ref("cr/multi:1"))
			if d := sha256Digest([]byte(m)); d != want[arch] {
				t.Errorf("crane manifest --platform %s: bytes of %s, want %s", pl, d, want[arch])
			}
			// Pull the platform's image and read its filesystem.
			fsTar := c.must(t, "export", "--platform", pl, reg.ref("cr/multi:1"), "-")
			files := untar(t, bytes.NewReader([]byte(fsTar)), 1<<20)
			if got := string(files["etc/arch"]); got != arch+"\n" {
				t.Errorf("crane export --platform %s: etc/arch is %q, want %q", pl, got, arch+"\n")
			}
			if got := string(files["etc/hello"]); got != "from crane\n" {
				t.Errorf("crane export --platform %s: etc/hello (base layer) is %q", pl, got)
			}
		}

		// A child an index lists cannot be deleted from under it.
		if r := c.run(t, "delete", reg.ref("cr/multi@"+want["arm64"])); r.err == nil {
			t.Errorf("deleting a manifest that the index cr/multi:1 lists succeeded")
		}
		if d := digest(t, "cr/multi:1", "--platform", "linux/arm64"); d != want["arm64"] {
			t.Errorf("after the refused delete, linux/arm64 is %s, want %s", d, want["arm64"])
		}
		// Deleting the index frees its children in that repository.
		c.must(t, "delete", reg.ref("cr/multi@"+indexDigest))
		for _, arch := range arches {
			if st := reg.manifestStatus(t, "cr/multi", want[arch]); st != 404 {
				t.Errorf("child %s of the deleted index: HEAD %d, want 404", arch, st)
			}
			if d := digest(t, "cr/plat:"+arch); d != want[arch] {
				t.Errorf("cr/plat:%s is %s after deleting the index elsewhere, want %s", arch, d, want[arch])
			}
		}
		cat := lines(c.must(t, "catalog", reg.host()))
		sort.Strings(cat)
		if !slices.Equal(cat, []string{"cr/base", "cr/plat"}) {
			t.Errorf("crane catalog after deleting cr/multi: %v, want [cr/base cr/plat]", cat)
		}
	})

	reg.fsck(t, true)
}
