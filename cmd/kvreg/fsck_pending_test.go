package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/local"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// crashLeft is what a kill -9 left in a data directory, with what fsck
// must call pending.
type crashLeft struct {
	root    string
	pending []string // kind object, sorted
}

// leaveCrash pushes an image and a lone blob, starts a chunked upload,
// kills kvreg with SIGKILL, then adds by hand what a kill at a worse moment
// leaves: the lone blob's record deleted with its file still there (a
// tombstone), the upload promoted to its digest without a record, and a
// stray upload directory written two hours ago.
func leaveCrash(t *testing.T, bin string) *crashLeft {
	t.Helper()
	root := t.TempDir()
	srv := startServer(t, bin, root)
	base := "http://" + srv.Addr
	if err := push(base, "team/app", "v1", []byte("a layer"), []byte("a base layer")); err != nil {
		t.Fatal(err)
	}
	lone := []byte("a blob no manifest uses")
	loneD := digest.FromBytes(lone)
	resp, err := http.Post(base+"/v2/team/app/blobs/uploads/?digest="+loneD.String(), "application/octet-stream", bytes.NewReader(lone))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("lone blob: %s", resp.Status)
	}
	half := []byte("bytes of an upload caught in its commit")
	halfD := digest.FromBytes(half)
	resp, err = http.Post(base+"/v2/team/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := loc.Path[strings.LastIndex(loc.Path, "/")+1:]
	req, _ := http.NewRequest(http.MethodPatch, base+loc.RequestURI(), bytes.NewReader(half))
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload PATCH: %s", resp.Status)
	}
	srv.Kill()

	db, err := kv.Open(filepath.Join(root, refcount.DBFile), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *kv.Tx) error {
		l, _, err := tx.Link("team/app", loneD.String())
		if err != nil {
			return err
		}
		if err := tx.DeleteLease(kv.Lease{Expiry: l.Lease, Kind: kv.LeaseLink, Repo: "team/app", Digest: loneD.String()}); err != nil {
			return err
		}
		if _, err := tx.DeleteLink("team/app", loneD.String()); err != nil {
			return err
		}
		return tx.DeleteBlob(loneD.String())
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	bs, err := blobs.OpenTarget(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Driver().Seal(id); err != nil {
		t.Fatal(err)
	}
	if created, err := bs.Driver().Promote(id, halfD); err != nil || !created {
		t.Fatalf("promote: %v %v", created, err)
	}
	stray := "b0000000000000000000000000000000"
	dir := filepath.Join(filepath.Dir(filepath.Dir(bs.Driver().(*local.Driver).UploadFile("x"))), stray)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	c := &crashLeft{root: root, pending: []string{
		refcount.ProblemInterrupted + " " + id,
		refcount.ProblemOrphanFile + " " + halfD.String(),
		refcount.ProblemOrphanObject + " " + stray,
		refcount.ProblemPendingDelete + " " + loneD.String(),
	}}
	sort.Strings(c.pending)
	return c
}

// fsckJSON runs fsck --json and returns its exit code, problems and
// pending work as "kind object".
func fsckJSON(t *testing.T, bin, root string, args ...string) (code int, problems, pending []string) {
	t.Helper()
	out, errOut, code := run(t, bin, append([]string{"fsck", "--json", "--root", root}, args...)...)
	var rep struct {
		Clean             bool
		Problems, Pending []refcount.Problem
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("fsck: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if rep.Clean != (len(rep.Problems) == 0) {
		t.Fatalf("fsck: clean %v with problems %v", rep.Clean, rep.Problems)
	}
	for _, p := range rep.Problems {
		problems = append(problems, p.Kind+" "+p.Object)
	}
	for _, p := range rep.Pending {
		pending = append(pending, p.Kind+" "+p.Object)
	}
	return code, problems, pending
}

// After a kill -9, fsck of the stopped registry lists the work the next
// start finishes as pending and exits 0; damage beside it exits 1; the
// next kvreg serve, or fsck --repair, finishes the pending work.
func TestFsckAfterCrashListsPendingWork(t *testing.T) {
	bin := buildKvreg(t)
	for _, finish := range []string{"serve", "repair"} {
		t.Run(finish, func(t *testing.T) {
			c := leaveCrash(t, bin)
			code, problems, pending := fsckJSON(t, bin, c.root)
			if code != 0 || len(problems) != 0 || !slices.Equal(pending, c.pending) {
				t.Fatalf("fsck after the crash: exit %d, problems %v, pending %v; want exit 0, pending %v", code, problems, pending, c.pending)
			}
			out, errOut, code := run(t, bin, "fsck", "--root", c.root)
			want := fmt.Sprintf("%s: clean; %d items of interrupted work, not damage: the next `kvreg serve` finishes them, or `kvreg fsck --repair`", c.root, len(c.pending))
			if code != 0 || !strings.Contains(out, want) || strings.Count(out, "pending: ") != len(c.pending) {
				t.Fatalf("fsck text: exit %d\n%s%s\nwant %q", code, out, errOut, want)
			}

			// Damage beside it: a file no record names and nothing of
			// the crash explains.
			junk := []byte("a file nothing explains")
			junkD := digest.FromBytes(junk)
			bs, err := blobs.OpenTarget(c.root, "")
			if err != nil {
				t.Fatal(err)
			}
			junkFile := bs.Driver().(*local.Driver).BlobFile(junkD)
			if err := os.MkdirAll(filepath.Dir(junkFile), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(junkFile, junk, 0o644); err != nil {
				t.Fatal(err)
			}
			damage := []string{refcount.ProblemOrphanFile + " " + junkD.String()}
			code, problems, pending = fsckJSON(t, bin, c.root)
			if code != 1 || !slices.Equal(problems, damage) || !slices.Equal(pending, c.pending) {
				t.Fatalf("fsck with damage: exit %d, problems %v, pending %v", code, problems, pending)
			}

			switch finish {
			case "serve":
				srv := startServer(t, bin, c.root)
				code, problems, pending = fsckJSON(t, bin, c.root)
				if code != 1 || !slices.Equal(problems, damage) || len(pending) != 0 {
					t.Fatalf("online fsck after the start: exit %d, problems %v, pending %v", code, problems, pending)
				}
				stopServer(t, srv)
				code, problems, pending = fsckJSON(t, bin, c.root)
				if code != 1 || !slices.Equal(problems, damage) || len(pending) != 0 {
					t.Fatalf("fsck after the stop: exit %d, problems %v, pending %v", code, problems, pending)
				}
			case "repair":
				out, errOut, code := run(t, bin, "fsck", "--repair", "--root", c.root)
				if code != 0 || strings.Count(out, "finished: ") != len(c.pending) || strings.Count(out, "fixed: ") != len(damage) ||
					!strings.Contains(out, "fixed: "+refcount.ProblemOrphanFile) {
					t.Fatalf("fsck --repair: exit %d, want %d finished and %d fixed\n%s%s", code, len(c.pending), len(damage), out, errOut)
				}
				code, problems, pending = fsckJSON(t, bin, c.root, "--deep")
				if code != 0 || len(problems)+len(pending) != 0 {
					t.Fatalf("fsck after repair: exit %d, problems %v, pending %v", code, problems, pending)
				}
			}
		})
	}
}

// A server that predates the split answers one list: fsck reads it as
// problems, and the split answer as it is.
func TestAskFsckReadsBothAnswers(t *testing.T) {
	p := refcount.Problem{Kind: refcount.ProblemOrphanFile, Object: "sha256:00", Detail: "file with no record"}
	for _, tc := range []struct {
		answer                    any
		wantProblems, wantPending int
	}{
		{[]refcount.Problem{p, p}, 2, 0},
		{refcount.CheckReport{Problems: []refcount.Problem{p}, Pending: []refcount.Problem{p, p, p}}, 1, 3},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/fsck" || r.URL.Query().Get("pending") != "1" {
				http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(tc.answer)
		}))
		st := &store{client: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
			},
		}}}
		rep, err := askFsck(st, url.Values{"pending": {"1"}})
		srv.Close()
		if err != nil || len(rep.Problems) != tc.wantProblems || len(rep.Pending) != tc.wantPending {
			t.Fatalf("answer %T: %+v, %v", tc.answer, rep, err)
		}
	}
}
