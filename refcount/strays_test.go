package refcount_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// Strays in the upload directory (an upload directory without its repo
// file: CreateUpload cut short) are reported by Check once older than the
// grace, removed by Repair, and removed at open when written before it;
// one written after the registry opened survives Recover.
func TestStraysGraceAndRecover(t *testing.T) {
	// It makes strays as files of the directory store; the S3 driver's
	// strays have their own tests in blobs/s3 and cmd/kvreg/s3e2e.
	f := newFixture(t, regtest.Options{Blobs: regtest.BlobsLocal})
	drv := localFiles(t, f.Registry.Registry)
	uploads := filepath.Dir(filepath.Dir(drv.UploadFile("x")))
	stray := func(name string, at time.Time) string {
		t.Helper()
		dir := filepath.Join(uploads, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data"), []byte("half an upload"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, "data"), at, at); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, at, at); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	present := func(dir string) bool { _, err := os.Stat(dir); return err == nil }
	f.blob("team/app", 100) // a blob and, being committed, no upload left

	// Written after the registry opened, so that Recover (which Repair
	// runs first) leaves it to the check.
	young := stray("0123456789abcdef0123456789abcdef", f.Clock.Now().Add(time.Minute))
	f.Clock.Advance(30 * time.Minute)
	probs, err := f.Check(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 0 {
		t.Fatalf("a stray younger than the grace is reported: %v", kinds(probs))
	}
	probs, err = f.CheckGrace(false, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{refcount.ProblemOrphanObject + " 0123456789abcdef0123456789abcdef"}
	if !slices.Equal(kinds(probs), want) {
		t.Fatalf("check with 10 minutes' grace: %v, want %v", kinds(probs), want)
	}
	f.Clock.Advance(time.Hour)
	rep, err := f.Repair(false, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kinds(rep.Fixed), want) || len(rep.Remaining) != 0 || present(young) {
		t.Fatalf("repair fixed %v, left %v; stray present %v", kinds(rep.Fixed), kinds(rep.Remaining), present(young))
	}

	// Recover (at open, and from Repair on a running registry) takes what
	// was written before the registry opened, and only that. The names are
	// upload ids kvreg would make: other names go at open anyway.
	before := stray("b0000000000000000000000000000000", f.Clock.Now().Add(-time.Second))
	f.Reopen()
	if present(before) {
		t.Fatal("a stray written before the registry opened survived the open")
	}
	after := stray("a0000000000000000000000000000000", f.Clock.Now().Add(time.Second))
	if err := f.Recover(); err != nil {
		t.Fatal(err)
	}
	if !present(after) {
		t.Fatal("Recover removed a stray written after the registry opened")
	}
	os.RemoveAll(after)
}
