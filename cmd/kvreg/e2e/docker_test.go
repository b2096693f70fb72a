package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// TestDocker drives kvreg with the docker CLI, through a containerd and
// dockerd that the suite starts itself.
func TestDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "docker suite")()
	d := needDocker(t)
	reg := startRegistry(t)

	t.Run("PushRmiPull", func(t *testing.T) { testDockerRoundTrip(t, d, reg) })
	t.Run("OverwriteFreesOldLayers", func(t *testing.T) { testDockerOverwrite(t, d, reg) })
	t.Run("NoLayerAlreadyExistsAfterDelete", func(t *testing.T) { testDockerRepushAfterDelete(t, d, reg) })
	t.Run("DeleteReclaims", func(t *testing.T) { testDockerDeleteReclaims(t, d, reg) })
	t.Run("TwoTagsDeleteOne", func(t *testing.T) { testDockerTwoTags(t, d, reg) })
	t.Run("DeleteAfterSecondTagPushReclaims", func(t *testing.T) { testDockerDeleteAfterRetag(t, d, reg) })
	t.Run("BigLayer", func(t *testing.T) { testDockerBigLayer(t, d, reg) })

	reg.fsck(t, true)
}

var pushedLine = regexp.MustCompile(`(?m)^[0-9a-f]{12}: Pushed\s*$`)

// loadImage writes a docker-archive of layers tagged ref, loads it, and
// returns the image id.
func loadImage(t *testing.T, d *dockerDaemon, ref, note string, layers ...layer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	id := dockerArchive(t, path, ref, note, layers...)
	d.must(t, 2*time.Minute, "load", "-i", path)
	os.Remove(path)
	if got := d.inspect(t, ref).ID; got != id {
		t.Fatalf("docker load %s: image id %s, want %s", ref, got, id)
	}
	return id
}

// requireBlobs checks that each blob's file is (or is not) in the store.
func requireBlobs(t *testing.T, reg *registry, present bool, what string, ds ...string) {
	t.Helper()
	for _, dg := range ds {
		if got := reg.hasBlobFile(t, dg); got != present {
			if present {
				t.Errorf("%s: blob %s is missing from the store", what, dg)
			} else {
				t.Errorf("%s: blob %s is still stored", what, dg)
			}
		}
	}
}

// 1. push, docker rmi, pull: the same image id.
func testDockerRoundTrip(t *testing.T, d *dockerDaemon, reg *registry) {
	bb, err := testenv.FindTool("busybox")
	if err != nil {
		missing(t, "%v (apt-get install -y busybox-static)", err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs.tar")
	writeLayerFile(t, rootfs, nil,
		tarFile{name: "bin/busybox", data: bin, mode: 0o755},
		textFile("etc/kvreg-e2e", "a root filesystem made by the kvreg e2e suite\n"))
	ref := reg.ref("e2e/busybox:1")

	done := step(t, "docker import")
	d.must(t, 2*time.Minute, "import", "--change", "CMD [\"/bin/busybox\", \"sh\"]", rootfs, ref)
	done()
	id := d.inspect(t, ref).ID

	done = step(t, "docker push")
	out := d.must(t, 3*time.Minute, "push", ref)
	done()
	if !pushedLine.MatchString(out) {
		t.Errorf("docker push printed no Pushed line:\n%s", out)
	}
	m, dg := reg.getManifest(t, "e2e/busybox", "1")
	requireBlobs(t, reg, true, "after push", m.blobs()...)

	d.must(t, time.Minute, "rmi", ref)
	if d.hasImage(t, ref) {
		t.Fatalf("%s still present after docker rmi", ref)
	}
	done = step(t, "docker pull")
	d.must(t, 3*time.Minute, "pull", ref)
	done()
	if got := d.inspect(t, ref).ID; got != id {
		t.Errorf("pulled image id %s, pushed %s", got, id)
	}
	// And by digest.
	byDigest := reg.ref("e2e/busybox@" + dg)
	d.must(t, 3*time.Minute, "pull", byDigest)
	if got := d.inspect(t, byDigest).ID; got != id {
		t.Errorf("image pulled by digest is %s, pushed %s", got, id)
	}
	d.must(t, time.Minute, "rmi", ref)
}

// 2. push app:1, make another image, tag it app:1, push: the old image's
// unique blobs are gone from disk as soon as the push returns; shared ones
// stay; pull gives the new image.
func testDockerOverwrite(t *testing.T, d *dockerDaemon, reg *registry) {
	rng := newRand()
	base := makeLayer(t, rng, randomFile("base/shared.bin", 1<<20))
	la := makeLayer(t, rng, randomFile("app/a.bin", 2<<20))
	lb := makeLayer(t, rng, randomFile("app/b.bin", 3<<20))
	ref, next := reg.ref("e2e/app:1"), reg.ref("e2e/app:next")

	idA := loadImage(t, d, ref, "app-a", base, la)
	done := step(t, "push app:1 (image A)")
	d.must(t, 3*time.Minute, "push", ref)
	done()
	mA, dA := reg.getManifest(t, "e2e/app", "1")

	idB := loadImage(t, d, next, "app-b", base, lb)
	d.must(t, time.Minute, "tag", next, ref)
	done = step(t, "push app:1 (image B)")
	out := d.must(t, 3*time.Minute, "push", ref)
	done()
	t.Logf("second push:\n%s", out)
	mB, dB := reg.getManifest(t, "e2e/app", "1")
	if dB == dA {
		t.Fatalf("app:1 still points at %s after pushing another image", dA)
	}
	if len(mA.Layers) != 2 || len(mB.Layers) != 2 || mA.Layers[0].Digest != mB.Layers[0].Digest {
		t.Fatalf("expected two 2-layer images sharing their base layer:\nA %+v\nB %+v", mA.Layers, mB.Layers)
	}
	var uniqueA []string
	for _, dg := range mA.blobs() {
		if !slices.Contains(mB.blobs(), dg) {
			uniqueA = append(uniqueA, dg)
		}
	}
	t.Logf("old image %s: unique blobs %v, shared base layer %s", dA, uniqueA, mA.Layers[0].Digest)
	requireBlobs(t, reg, false, "old image's unique blobs right after the overwriting push", uniqueA...)
	requireBlobs(t, reg, true, "new image (and the shared base layer)", mB.blobs()...)
	if st := reg.manifestStatus(t, "e2e/app", dA); st != 404 {
		t.Errorf("HEAD of the overwritten manifest %s: %d, want 404", dA, st)
	}

	d.must(t, time.Minute, "rmi", ref, next, idA)
	d.must(t, 3*time.Minute, "pull", ref)
	if got := d.inspect(t, ref).ID; got != idB {
		t.Errorf("pulled app:1 is %s, want the new image %s (old was %s)", got, idB, idA)
	}
	d.must(t, time.Minute, "rmi", ref)
}

// 3. push, delete the manifest by digest, push the same image again: docker
// uploads the layers ("Pushed"), it is not told "Layer already exists";
// then rmi and pull work.
func testDockerRepushAfterDelete(t *testing.T, d *dockerDaemon, reg *registry) {
	rng := newRand()
	l1 := makeLayer(t, rng, randomFile("again/one.bin", 2<<20))
	l2 := makeLayer(t, rng, randomFile("again/two.bin", 1<<20))
	ref := reg.ref("e2e/again:1")
	id := loadImage(t, d, ref, "again", l1, l2)

	out := d.must(t, 3*time.Minute, "push", ref)
	if n := len(pushedLine.FindAllString(out, -1)); n != 2 {
		t.Fatalf("first push: %d layers Pushed, want 2:\n%s", n, out)
	}
	dg := reg.headDigest(t, "e2e/again", "1")
	m, _ := reg.getManifest(t, "e2e/again", dg)
	reg.deleteManifest(t, "e2e/again", dg)
	if st := reg.manifestStatus(t, "e2e/again", "1"); st != 404 {
		t.Errorf("HEAD e2e/again:1 after DELETE of %s: %d, want 404", dg, st)
	}
	for _, b := range m.blobs() {
		if st, _, _ := reg.do(t, "HEAD", "/v2/e2e/again/blobs/"+b, nil); st != 404 {
			t.Errorf("HEAD blob %s after the DELETE: %d, want 404", b, st)
		}
	}
	requireBlobs(t, reg, false, "blobs of the deleted image", m.blobs()...)

	done := step(t, "push again after DELETE")
	out = d.must(t, 3*time.Minute, "push", ref)
	done()
	t.Logf("second push:\n%s", out)
	if strings.Contains(out, "Layer already exists") || strings.Contains(out, "Mounted from") {
		t.Errorf("docker was told a deleted layer exists (the registry lies after a delete):\n%s", out)
	}
	if n := len(pushedLine.FindAllString(out, -1)); n != len(m.Layers) {
		t.Errorf("second push: %d layers Pushed, want %d:\n%s", n, len(m.Layers), out)
	}
	if got := reg.headDigest(t, "e2e/again", "1"); got != dg {
		t.Logf("note: the re-pushed manifest is %s (first push %s)", got, dg)
	}
	m2, _ := reg.getManifest(t, "e2e/again", "1")
	requireBlobs(t, reg, true, "re-pushed image", m2.blobs()...)

	d.must(t, time.Minute, "rmi", ref)
	d.must(t, 3*time.Minute, "pull", ref)
	if got := d.inspect(t, ref).ID; got != id {
		t.Errorf("pulled image id %s, want %s", got, id)
	}
	d.must(t, time.Minute, "rmi", ref)
}

// 4. The store's blob bytes shrink by the image's size when the DELETE
// returns.
func testDockerDeleteReclaims(t *testing.T, d *dockerDaemon, reg *registry) {
	rng := newRand()
	l1 := makeLayer(t, rng, randomFile("reclaim/one.bin", 12<<20))
	l2 := makeLayer(t, rng, randomFile("reclaim/two.bin", 4<<20))
	ref := reg.ref("e2e/reclaim:1")
	loadImage(t, d, ref, "reclaim", l1, l2)
	d.must(t, 3*time.Minute, "push", ref)
	d.must(t, time.Minute, "rmi", ref)

	dg := reg.headDigest(t, "e2e/reclaim", "1")
	m, _ := reg.getManifest(t, "e2e/reclaim", dg)
	want := m.bytes()
	before := reg.blobsSize(t)
	reg.deleteManifest(t, "e2e/reclaim", dg)
	after := reg.blobsSize(t)
	t.Logf("blob bytes %d -> %d after DELETE: freed %d; image config+layers %d", before, after, before-after, want)
	if before-after < want {
		t.Errorf("DELETE freed %d bytes on disk, want at least the image's %d", before-after, want)
	}
	requireBlobs(t, reg, false, "deleted image", m.blobs()...)
	if slices.Contains(reg.catalog(t), "e2e/reclaim") {
		t.Errorf("_catalog still lists e2e/reclaim, which has nothing left")
	}
	if r := d.run(t, 2*time.Minute, "pull", ref); r.err == nil {
		t.Errorf("docker pull of the deleted image succeeded:\n%s", r.combined())
	}
}

// 5. Two tags on one image; DELETE one tag; the other still pulls.
func testDockerTwoTags(t *testing.T, d *dockerDaemon, reg *registry) {
	l := makeLayer(t, newRand(), randomFile("two/data.bin", 1<<20))
	refA, refB := reg.ref("e2e/two:a"), reg.ref("e2e/two:b")
	id := loadImage(t, d, refA, "two", l)
	d.must(t, time.Minute, "tag", refA, refB)
	d.must(t, 3*time.Minute, "push", refA)
	d.must(t, 3*time.Minute, "push", refB)
	dA, dB := reg.headDigest(t, "e2e/two", "a"), reg.headDigest(t, "e2e/two", "b")
	if dA != dB {
		t.Fatalf("tags a and b point at %s and %s, want one image", dA, dB)
	}
	m, _ := reg.getManifest(t, "e2e/two", dA)

	reg.deleteManifest(t, "e2e/two", "a")
	if tags := reg.tags(t, "e2e/two"); !slices.Equal(tags, []string{"b"}) {
		t.Errorf("tags after deleting a: %v, want [b]", tags)
	}
	if st := reg.manifestStatus(t, "e2e/two", "a"); st != 404 {
		t.Errorf("HEAD e2e/two:a after its DELETE: %d, want 404", st)
	}
	if got := reg.headDigest(t, "e2e/two", "b"); got != dA {
		t.Errorf("e2e/two:b is %s, want %s", got, dA)
	}
	requireBlobs(t, reg, true, "image still tagged b", m.blobs()...)

	d.must(t, time.Minute, "rmi", refA, refB)
	d.must(t, 3*time.Minute, "pull", refB)
	if got := d.inspect(t, refB).ID; got != id {
		t.Errorf("pulled e2e/two:b is %s, want %s", got, id)
	}
	if r := d.run(t, 2*time.Minute, "pull", refA); r.err == nil {
		t.Errorf("docker pull of the deleted tag a succeeded:\n%s", r.combined())
	}
	d.must(t, time.Minute, "rmi", refB)
}

// Pushing a second tag of an image is told "Layer already exists" for every
// blob (the HEADs that say so pin the blobs for the push in flight). Once
// that push's manifest is in, the image is held by its two tags only, and a
// DELETE of it frees its blobs before the response, as any other delete.
func testDockerDeleteAfterRetag(t *testing.T, d *dockerDaemon, reg *registry) {
	l := makeLayer(t, newRand(), randomFile("retag/data.bin", 2<<20))
	ref1, ref2 := reg.ref("e2e/retag:1"), reg.ref("e2e/retag:2")
	loadImage(t, d, ref1, "retag", l)
	d.must(t, time.Minute, "tag", ref1, ref2)
	d.must(t, 3*time.Minute, "push", ref1)
	out := d.must(t, 3*time.Minute, "push", ref2)
	if !strings.Contains(out, "Layer already exists") {
		t.Logf("note: the second tag's push did not say Layer already exists:\n%s", out)
	}
	d.must(t, time.Minute, "rmi", ref1, ref2)
	dg := reg.headDigest(t, "e2e/retag", "2")
	m, _ := reg.getManifest(t, "e2e/retag", dg)
	before := reg.blobsSize(t)
	reg.deleteManifest(t, "e2e/retag", dg)
	after := reg.blobsSize(t)
	t.Logf("blob bytes %d -> %d after DELETE: freed %d; image config+layers %d", before, after, before-after, m.bytes())
	if st := reg.manifestStatus(t, "e2e/retag", "1"); st != 404 {
		t.Errorf("HEAD e2e/retag:1 after DELETE of %s: %d, want 404", dg, st)
	}
	requireBlobs(t, reg, false, "blobs of an image deleted after a second tag was pushed (pins of that push outlive its manifest?)", m.blobs()...)
	for _, b := range m.blobs() {
		if st, _, _ := reg.do(t, "HEAD", "/v2/e2e/retag/blobs/"+b, nil); st != 404 {
			t.Errorf("HEAD blob %s in e2e/retag after the image's DELETE: %d, want 404", b, st)
		}
	}
	if slices.Contains(reg.catalog(t), "e2e/retag") {
		t.Errorf("_catalog still lists e2e/retag after its only image was deleted")
	}
}

// 6. A layer of 512 MiB of random bytes pushes and pulls intact: the layer
// docker extracts on pull has the digest of the tar we imported.
func testDockerBigLayer(t *testing.T, d *dockerDaemon, reg *registry) {
	const big = 512 << 20
	const needFree = 3_000_000_000
	dir := t.TempDir()
	for _, p := range []string{dir, reg.root, d.Dir} {
		free, err := freeBytes(p)
		if err != nil {
			t.Fatalf("free space at %s: %v", p, err)
		}
		if free < needFree {
			t.Fatalf("only %.2f GB free at %s; the 512 MiB layer test needs at least 3 GB (layer tar, docker's vfs copies, the registry's blob)", float64(free)/1e9, p)
		}
	}
	ref := reg.ref("e2e/big:1")
	t.Cleanup(func() { d.run(t, time.Minute, "rmi", "-f", ref) })

	tarPath := filepath.Join(dir, "big.tar")
	done := step(t, "write 512 MiB layer tar")
	diffID, size := writeLayerFile(t, tarPath, newRand(),
		randomFile("big/random.bin", big),
		textFile("big/README", "512 MiB of random bytes, made by the kvreg e2e suite\n"))
	done()
	t.Logf("layer tar: %d bytes, %s", size, diffID)

	done = step(t, "docker import 512 MiB")
	d.must(t, 5*time.Minute, "import", tarPath, ref)
	done()
	os.Remove(tarPath)
	img := d.inspect(t, ref)
	if !slices.Equal(img.RootFS.Layers, []string{diffID}) {
		t.Fatalf("imported image has layers %v, want [%s]", img.RootFS.Layers, diffID)
	}

	done = step(t, "docker push 512 MiB")
	d.must(t, 10*time.Minute, "push", ref)
	done()
	m, _ := reg.getManifest(t, "e2e/big", "1")
	if len(m.Layers) != 1 || m.Layers[0].Size < big {
		t.Fatalf("pushed manifest layers %+v, want one layer of at least %d bytes", m.Layers, big)
	}
	stored := reg.blobSize(t, m.Layers[0].Digest)
	if stored != m.Layers[0].Size {
		t.Errorf("layer blob has %d bytes stored, manifest says %d", stored, m.Layers[0].Size)
	}
	t.Logf("stored layer %s: %d bytes", m.Layers[0].Digest, stored)

	d.must(t, 2*time.Minute, "rmi", ref)
	done = step(t, "docker pull 512 MiB")
	d.must(t, 10*time.Minute, "pull", ref)
	done()
	got := d.inspect(t, ref)
	if got.ID != img.ID {
		t.Errorf("pulled image id %s, pushed %s", got.ID, img.ID)
	}
	if !slices.Equal(got.RootFS.Layers, []string{diffID}) {
		t.Errorf("pulled layer diff ids %v, want [%s] (the tar we imported)", got.RootFS.Layers, diffID)
	}
	d.must(t, 2*time.Minute, "rmi", ref)
}
