package cluster

import (
	"archive/tar"
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// crane pushes and pulls through haproxy: its HEADs, uploads (POST, PATCH,
// PUT) and manifest PUT each land on whichever replica is next, and the
// image it pulls back validates; deleting it frees the bucket.
func TestClusterCrane(t *testing.T) {
	crane, err := testenv.FindTool("crane")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("%v: go install github.com/google/go-containerregistry/cmd/crane@latest", err)
	}
	c := newCluster(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(crane, append(args, "--insecure")...)
		cmd.Env = append(testenv.CleanEnv(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	rng := rand.New(rand.NewSource(6))
	layer := func(name string, size int) string {
		t.Helper()
		data := make([]byte, size)
		rng.Read(data)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
		tw.Write(data)
		tw.Close()
		p := filepath.Join(dir, name+".tar")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	host := c.lb.Addr
	run("append", "-f", layer("base", 3<<20), "-t", host+"/crane/base:v1")
	// A second image on the first: crane reads the base through the
	// replicas and pushes only the new layer.
	run("append", "-b", host+"/crane/base:v1", "-f", layer("top", 1<<20), "-t", host+"/crane/app:v1")
	for _, ref := range []string{host + "/crane/base:v1", host + "/crane/app:v1"} {
		run("validate", "--remote", ref)
		run("pull", ref, filepath.Join(dir, "pulled.tar"))
	}
	if tags := strings.Fields(run("ls", host+"/crane/app")); len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("crane ls: %v", tags)
	}
	before := c.bucketBytes()
	run("delete", host+"/crane/app:v1")
	// Only the top layer and the app's config were the app's alone.
	if after := c.bucketBytes(); before-after < 1<<20 {
		t.Fatalf("deleting crane/app:v1 freed %d bytes of the bucket, want at least its 1 MiB layer", before-after)
	}
	run("validate", "--remote", host+"/crane/base:v1")
	c.fsck()
}
