package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The layout is what existing data directories hold: a blob at
// blobs/<alg>/<hex>, an upload's bytes at uploads/<id>/data.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("on disk")
	dg := digest.FromBytes(body)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	d.Append("u", 0, strings.NewReader(string(body)))
	if b, err := os.ReadFile(filepath.Join(root, "uploads", "u", "data")); err != nil || string(b) != "on disk" {
		t.Fatalf("upload data: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "uploads", "u", "repo")); err != nil || string(b) != "r" {
		t.Fatalf("upload repo: %q, %v", b, err)
	}
	if _, err := d.Promote("u", dg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "uploads", "u", "sha256-"+dg.Encoded())); err != nil {
		t.Fatalf("the mark of a promotion: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", dg.Encoded())); err != nil || string(b) != "on disk" {
		t.Fatalf("blob file: %q, %v", b, err)
	}
	// The reader is the file itself, which keeps sendfile.
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*os.File); !ok {
		t.Fatalf("reader is %T, want *os.File", f)
	}
	// Files the driver did not write show in the walk by their path.
	stray := filepath.Join(root, "blobs", "sha256", "not-a-digest")
	os.WriteFile(stray, nil, 0o644)
	var names []string
	d.Walk(func(dg digest.Digest, name string, _ int64) error {
		if dg == "" {
			names = append(names, name)
		}
		return nil
	})
	if len(names) != 1 || names[0] != stray {
		t.Fatalf("strays %v, want %s", names, stray)
	}
}

// An upload id that is not one path element names nothing.
func TestUploadIDsStayInside(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "a\x00"} {
		if err := d.CreateUpload(id, "r"); err == nil {
			t.Errorf("upload %q created", id)
		}
		if err := d.RemoveUpload(id); err == nil {
			t.Errorf("upload %q removed", id)
		}
	}
}
