package e2e

// Test images made locally, with no network: layer tars of chosen files and
// sizes, docker-archive tars for `docker load`, and OCI image layouts for
// skopeo and regctl. Standard library only.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mtOCILayerGzip   = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifest is an image manifest or an index, whichever was parsed.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Config        *descriptor  `json:"config,omitempty"`
	Layers        []descriptor `json:"layers,omitempty"`
	Manifests     []descriptor `json:"manifests,omitempty"`
	Subject       *descriptor  `json:"subject,omitempty"`
}

// blobs lists the config and layer digests of an image manifest.
func (m manifest) blobs() []string {
	var ds []string
	if m.Config != nil {
		ds = append(ds, m.Config.Digest)
	}
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

// bytes is the size of the config and layers.
func (m manifest) bytes() int64 {
	var n int64
	if m.Config != nil {
		n += m.Config.Size
	}
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func parseManifest(t testing.TB, b []byte) manifest {
	t.Helper()
	var m manifest
	mustJSON(t, b, &m)
	if m.SchemaVersion != 2 {
		t.Fatalf("manifest schemaVersion %d, want 2:\n%s", m.SchemaVersion, b)
	}
	return m
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parse JSON: %v\n%s", err, testenv.Tail(string(b), 4000))
	}
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// newRand is a fast random source with a fresh seed, so that every run
// makes layers no registry or daemon has seen.
func newRand() *mrand.ChaCha8 {
	var seed [32]byte
	rand.Read(seed[:])
	return mrand.NewChaCha8(seed)
}

// tarFile is one regular file of a layer: its bytes, or size random bytes.
type tarFile struct {
	name string
	data []byte
	size int64
	mode int64
}

func textFile(name, content string) tarFile { return tarFile{name: name, data: []byte(content)} }
func randomFile(name string, size int64) tarFile {
	return tarFile{name: name, size: size}
}

var layerTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// writeTar writes a tar of files to w (random contents from rng) and
// returns its sha256 digest and size.
func writeTar(w io.Writer, rng io.Reader, files []tarFile) (string, int64, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	tw := tar.NewWriter(cw)
	dirs := map[string]bool{}
	for _, f := range files {
		// Parent directories first, as a real root filesystem has them.
		parts := strings.Split(f.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: layerTime, Format: tar.FormatPAX}); err != nil {
				return "", 0, err
			}
		}
		size := f.size
		if f.data != nil {
			size = int64(len(f.data))
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: mode, Size: size, ModTime: layerTime, Format: tar.FormatPAX}); err != nil {
			return "", 0, err
		}
		var src io.Reader = bytes.NewReader(f.data)
		if f.data == nil {
			src = io.LimitReader(rng, size)
		}
		if _, err := io.CopyBuffer(tw, src, make([]byte, 1<<20)); err != nil {
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// layer is an uncompressed layer tar held in memory.
type layer struct {
	tar    []byte
	diffID string
}

func makeLayer(t testing.TB, rng io.Reader, files ...tarFile) layer {
	t.Helper()
	var buf bytes.Buffer
	d, _, err := writeTar(&buf, rng, files)
	if err != nil {
		t.Fatalf("make layer: %v", err)
	}
	return layer{tar: buf.Bytes(), diffID: d}
}

// writeLayerFile writes a layer tar to path and returns its diff id.
func writeLayerFile(t testing.TB, path string, rng io.Reader, files ...tarFile) (string, int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	d, n, err := writeTar(f, rng, files)
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		t.Fatalf("write layer %s: %v", path, err)
	}
	return d, n
}

type imageConfig struct {
	Architecture string         `json:"architecture"`
	OS           string         `json:"os"`
	Created      string         `json:"created"`
	Config       map[string]any `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []map[string]any `json:"history"`
}

func configFor(arch, note string, layers []layer) []byte {
	c := imageConfig{Architecture: arch, OS: "linux", Created: layerTime.Format(time.RFC3339),
		Config: map[string]any{"Labels": map[string]string{"kvreg.e2e": note}}}
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = []string{}
	for i, l := range layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.diffID)
		c.History = append(c.History, map[string]any{"created": c.Created, "created_by": fmt.Sprintf("kvreg e2e %s layer %d", note, i)})
	}
	b, _ := json.Marshal(c)
	return b
}

// dockerArchive writes a `docker load` tar of an image made of layers,
// tagged repoTag, and returns the image id docker will give it (the digest
// of its config).
func dockerArchive(t testing.TB, path, repoTag, note string, layers ...layer) string {
	t.Helper()
	cfg := configFor("amd64", note, layers)
	id := sha256Digest(cfg)
	idHex := strings.TrimPrefix(id, "sha256:")
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	e := entry{Config: idHex + ".json", RepoTags: []string{repoTag}}
	files := []tarFile{{name: e.Config, data: cfg}}
	for _, l := range layers {
		p := strings.TrimPrefix(l.diffID, "sha256:") + "/layer.tar"
		e.Layers = append(e.Layers, p)
		files = append(files, tarFile{name: p, data: l.tar})
	}
	mj, _ := json.Marshal([]entry{e})
	files = append(files, tarFile{name: "manifest.json", data: mj})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := writeTar(f, nil, files); err != nil {
		t.Fatalf("write docker archive: %v", err)
	}
	return id
}

// ociImage is an image written to an OCI layout.
type ociImage struct {
	Digest   string // manifest digest
	Manifest manifest
	Raw      []byte
}

// ociLayout writes an OCI image layout at dir holding one image of layers
// under tag, with gzip-compressed layers.
func ociLayout(t testing.TB, dir, tag, arch, note string, layers ...layer) ociImage {
	t.Helper()
	put := func(b []byte) string {
		d := sha256Digest(b)
		p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg := configFor(arch, note, layers)
	m := manifest{SchemaVersion: 2, MediaType: mtOCIManifest,
		Config: &descriptor{MediaType: mtOCIConfig, Digest: put(cfg), Size: int64(len(cfg))}}
	for _, l := range layers {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(l.tar)
		zw.Close()
		m.Layers = append(m.Layers, descriptor{MediaType: mtOCILayerGzip, Digest: put(gz.Bytes()), Size: int64(gz.Len())})
	}
	raw, _ := json.Marshal(m)
	md := put(raw)
	index := manifest{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: []descriptor{{
		MediaType: mtOCIManifest, Digest: md, Size: int64(len(raw)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}}}
	ib, _ := json.Marshal(index)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return ociImage{Digest: md, Manifest: m, Raw: raw}
}

// readLayout reads an OCI layout's index.json, and checks that every blob
// of the manifest found under tag is present with its digest.
func readLayout(t testing.TB, dir, tag string) (string, manifest) {
	t.Helper()
	ib, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	idx := parseManifest(t, ib)
	var md string
	for _, d := range idx.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			md = d.Digest
		}
	}
	if md == "" {
		t.Fatalf("OCI layout %s has no manifest tagged %q:\n%s", dir, tag, ib)
	}
	blob := func(d string) []byte {
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
	m := parseManifest(t, blob(md))
	for _, d := range m.blobs() {
		blob(d)
	}
	return md, m
}

// untar lists the regular files of a (possibly gzipped) tar stream with
// their contents, up to limit bytes each.
func untar(t testing.TB, r io.Reader, limit int64) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for i := 0; i < 100000; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, limit))
		if err != nil {
			t.Fatalf("read tar entry %s: %v", h.Name, err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
	t.Fatalf("tar has too many entries")
	return nil
}
