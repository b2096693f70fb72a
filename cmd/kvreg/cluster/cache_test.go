package cluster

import (
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// The pull-through cache with replicas: three replicas on one database
// and bucket cache an upstream kvreg, every request of a pull on the next
// replica; pulls at once through haproxy get the upstream's image, a pull
// by digest then answers with no upstream, and the shared store is
// clean.
func TestClusterCache(t *testing.T) {
	bin, err := testenv.Kvreg()
	if err != nil {
		t.Fatal(err)
	}
	up, err := testenv.Start(bin, testenv.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Kill()
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(up.Addr+"/library/app:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	c := newClusterArgs(t, []string{"--mirror", "hub=" + up.URL, "--mirror-default", "hub"})
	pull := func(r string) error {
		ref, err := name.ParseReference(c.lb.Addr+"/"+r, name.Insecure)
		if err != nil {
			return err
		}
		img, err := remote.Image(ref)
		if err != nil {
			return err
		}
		if d, _ := img.Digest(); d != want {
			t.Errorf("%s: digest %s, upstream %s", r, d, want)
		}
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			rc, err := l.Compressed() // verifies the digest as it reads
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Go(func() {
			r := "library/app:v1"
			if i%2 == 1 {
				r = "hub/library/app:v1"
			}
			errs <- pull(r)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a pull through the replicas: %v", err)
		}
	}
	// Stored: a pull by digest needs no upstream.
	up.Kill()
	if err := pull("hub/library/app@" + want.String()); err != nil {
		t.Fatalf("a pull by digest with the upstream stopped: %v", err)
	}
	if out, err := exec.Command(c.bin, "ls", "--root", c.replicas[0].Root, "hub/library/app").CombinedOutput(); err != nil || !strings.Contains(string(out), "v1") {
		t.Fatalf("kvreg ls of the cached repository: %v\n%s", err, out)
	}
	c.fsck()
}
