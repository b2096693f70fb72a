package main

// Startup against data directories kvreg cannot use: each gets a clear
// error and exit code 2, promptly, never a hang and never a panic. The
// cases are ones that fail for root too (permission bits do not stop root).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// runLimited runs kvreg with a time limit; a run over it is killed and
// reported as a hang.
func runLimited(t *testing.T, limit time.Duration, bin string, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Errorf("kvreg %s hung: killed after %v\nstderr: %s", strings.Join(args, " "), limit, errb.String())
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode(), time.Since(start)
}

// expectRefusal runs kvreg with args and requires exit 2 within the limit,
// a message on stderr containing want, and no panic. It returns false if
// the run hung.
func expectRefusal(t *testing.T, bin, want string, args ...string) bool {
	t.Helper()
	const limit = 20 * time.Second
	out, errOut, code, took := runLimited(t, limit, bin, args...)
	if took >= limit {
		return false
	}
	what := "kvreg " + strings.Join(args, " ")
	if strings.Contains(errOut, "panic:") || strings.Contains(errOut, "goroutine ") {
		first := errOut
		if i := strings.Index(first, "\n\n"); i > 0 {
			first = first[:i]
		}
		t.Errorf("%s panicked (exit %d):\n%s", what, code, first)
		return true
	}
	if code != 2 {
		t.Errorf("%s: exit %d, want 2\nstdout: %s\nstderr: %s", what, code, out, errOut)
	}
	if !strings.Contains(strings.ToLower(errOut), strings.ToLower(want)) {
		t.Errorf("%s: stderr %q does not say %q", what, errOut, want)
	}
	if strings.Contains(errOut, "kvreg serving") {
		t.Errorf("%s started serving", what)
	}
	t.Logf("%s: exit %d in %v: %s", what, code, took.Round(time.Millisecond), strings.TrimSpace(errOut))
	return true
}

// populateStore makes a data directory holding two tagged images that
// share a layer, and some leased blobs, through the registry itself.
func populateStore(t *testing.T, root string) {
	t.Helper()
	reg, err := refcount.OpenRoot(root, kv.Options{}, refcount.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	rng := rand.New(rand.NewSource(5))
	blob := func(repo string, n int) (string, int) {
		b := make([]byte, n)
		rng.Read(b)
		d := digest.FromBytes(b)
		if _, err := reg.PutBlob(repo, d, bytes.NewReader(b), int64(n), 0); err != nil {
			t.Fatal(err)
		}
		return d.String(), n
	}
	for i := 0; i < 40; i++ {
		repo := fmt.Sprintf("team/app%d", i%4)
		shared, ns := blob(repo, 4096)
		cfg, nc := blob(repo, 100+i)
		layer, nl := blob(repo, 2000+i)
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
			refcount.MediaTypeOCIManifest, cfg, nc, shared, ns, layer, nl)
		if _, err := reg.PutManifest(repo, "", []string{fmt.Sprint("v", i)}, refcount.MediaTypeOCIManifest, []byte(m), ""); err != nil {
			t.Fatal(err)
		}
	}
}

// setSchema writes the schema version of a stored database, as a newer
// kvreg would: through the bare key-value store, under kv's names.
func setSchema(t *testing.T, dbPath string, value []byte) {
	t.Helper()
	db, err := boltkv.Open(dbPath, boltkv.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx backend.Tx) error {
		return tx.Put([]byte("meta"), []byte("schema"), value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func schemaBytes(v int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	return b[:]
}

func TestStartupRefusesUnusableDataDirectories(t *testing.T) {
	bin := buildKvreg(t)
	dbFile := func(root string) string { return filepath.Join(root, refcount.DBFile) }
	cases := []struct {
		name  string
		setup func(t *testing.T, root string) string // returns the --root to use
		want  string                                 // in the message of serve and of the operator commands (offline)
	}{
		{"root is a regular file", func(t *testing.T, root string) string {
			os.WriteFile(root, []byte("not a directory"), 0o644)
			return root
		}, "not a directory"},
		{"root is under a regular file", func(t *testing.T, root string) string {
			os.WriteFile(root, []byte("not a directory"), 0o644)
			return filepath.Join(root, "data")
		}, "not a directory"},
		{"database is a directory", func(t *testing.T, root string) string {
			os.MkdirAll(dbFile(root), 0o755)
			return root
		}, refcount.DBFile},
		{"blob directory is a regular file", func(t *testing.T, root string) string {
			populateStore(t, root)
			dir := openLocal(t, root).BlobDir()
			os.RemoveAll(dir)
			os.WriteFile(dir, nil, 0o644)
			return root
		}, "blobs"},
		{"database is a named pipe", func(t *testing.T, root string) string {
			os.MkdirAll(root, 0o755)
			if err := syscall.Mkfifo(dbFile(root), 0o600); err != nil {
				t.Skip(err)
			}
			return root
		}, refcount.DBFile},
		{"database is random bytes", func(t *testing.T, root string) string {
			os.MkdirAll(root, 0o755)
			b := make([]byte, 64<<10)
			rand.New(rand.NewSource(1)).Read(b)
			os.WriteFile(dbFile(root), b, 0o600)
			return root
		}, refcount.DBFile},
		{"database truncated to half", func(t *testing.T, root string) string {
			populateStore(t, root)
			fi, err := os.Stat(dbFile(root))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(dbFile(root), fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return root
		}, refcount.DBFile},
		{"database pages overwritten, meta pages intact", func(t *testing.T, root string) string {
			populateStore(t, root)
			b, err := os.ReadFile(dbFile(root))
			if err != nil {
				t.Fatal(err)
			}
			const page = 4096 // the meta pages, 0 and 1, keep their checksums
			rand.New(rand.NewSource(2)).Read(b[2*page:])
			os.WriteFile(dbFile(root), b, 0o600)
			return root
		}, refcount.DBFile},
		{"schema version of the wrong size", func(t *testing.T, root string) string {
			populateStore(t, root)
			setSchema(t, dbFile(root), []byte{0, 1, 0})
			return root
		}, "corrupt"},
		{"schema version newer than this kvreg", func(t *testing.T, root string) string {
			populateStore(t, root)
			setSchema(t, dbFile(root), schemaBytes(kv.SchemaVersion+1))
			return root
		}, "newer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.setup(t, filepath.Join(t.TempDir(), "data"))
			if !expectRefusal(t, bin, tc.want, "serve", "--addr", "127.0.0.1:0", "--root", root) {
				return // one hang is enough
			}
			for _, cmd := range []string{"fsck", "stats", "ls"} {
				if !expectRefusal(t, bin, tc.want, cmd, "--root", root) {
					return
				}
			}
		})
	}
}

// A newer schema is refused without being touched: the newer kvreg can
// still open it.
func TestStartupLeavesANewerDatabaseAlone(t *testing.T) {
	bin := buildKvreg(t)
	root := filepath.Join(t.TempDir(), "data")
	populateStore(t, root)
	db := filepath.Join(root, refcount.DBFile)
	setSchema(t, db, schemaBytes(kv.SchemaVersion+1))
	before, _ := os.ReadFile(db)
	expectRefusal(t, bin, "newer", "serve", "--addr", "127.0.0.1:0", "--root", root)
	expectRefusal(t, bin, "newer", "fsck", "--root", root, "--repair")
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) {
		t.Fatal("refusing a newer database changed its file")
	}
}

// A second server on a data directory another one holds exits at once with
// exit 2, and leaves the first one and its operator socket working.
func TestStartupLockedByAnotherServer(t *testing.T) {
	bin := buildKvreg(t)
	root := filepath.Join(t.TempDir(), "data")
	first := startServer(t, bin, root)
	out, errOut, code, took := runLimited(t, 20*time.Second, bin, "serve", "--addr", "127.0.0.1:0", "--root", root)
	if code != 2 || !strings.Contains(errOut, "locked") || strings.Contains(errOut, "panic:") {
		t.Fatalf("second serve: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if took > 15*time.Second {
		t.Fatalf("second serve took %v to give up", took)
	}
	t.Logf("second serve: exit %d in %v: %s", code, took.Round(time.Millisecond), strings.TrimSpace(errOut))
	resp, err := http.Get("http://" + first.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first server answers %s after the second gave up", resp.Status)
	}
	// Its socket is still there: the operator commands reach it.
	out, errOut, code, _ = runLimited(t, 20*time.Second, bin, "fsck", "--root", root)
	if code != 0 || !strings.Contains(errOut, "online") {
		t.Fatalf("fsck after the second serve gave up: exit %d\n%s%s", code, out, errOut)
	}
}

// A database locked by a process that is no kvreg server (no socket to
// reach): serve and the operator commands give up with exit 2.
func TestStartupLockedByAnotherProcess(t *testing.T) {
	bin := buildKvreg(t)
	root := filepath.Join(t.TempDir(), "data")
	populateStore(t, root)
	db, err := boltkv.Open(filepath.Join(root, refcount.DBFile), boltkv.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	expectRefusal(t, bin, "locked", "serve", "--addr", "127.0.0.1:0", "--root", root)
	expectRefusal(t, bin, "held by another process", "fsck", "--root", root)
}

// A data directory on a read-only filesystem: serve (which must write)
// refuses with exit 2; fsck, which only reads, still works.
func TestStartupReadOnlyFilesystem(t *testing.T) {
	bin := buildKvreg(t)
	mnt := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v (CI must run this test as root)", err)
		}
		t.Skipf("mount tmpfs: %v (needs root)", err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	root := filepath.Join(mnt, "data")
	populateStore(t, root)
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v %s", err, out)
	}
	expectRefusal(t, bin, "read-only file system", "serve", "--addr", "127.0.0.1:0", "--root", root)
	out, errOut, code, _ := runLimited(t, 20*time.Second, bin, "fsck", "--root", root)
	if code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("fsck of a read-only data directory: exit %d\n%s%s", code, out, errOut)
	}
	// An empty read-only filesystem: no database can be created.
	expectRefusal(t, bin, "read-only file system", "serve", "--addr", "127.0.0.1:0", "--root", filepath.Join(mnt, "fresh"))
}
