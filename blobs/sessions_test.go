package blobs

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Another process sharing the store that commits or cancels an upload
// leaves this one's cached session behind; the periodic expiry drops it,
// and keeps the sessions of uploads still going.
func TestExpireForgetsSessionsEndedElsewhere(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		id, err := a.NewUpload("r")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Append("r", id, 0, strings.NewReader("bytes"), 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := b.Commit("r", ids[0], digest.FromString("bytes"), 5, func(int64, string, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Cancel("r", ids[1]); err != nil {
		t.Fatal(err)
	}
	if n, err := a.ExpireUploads(time.Time{}); err != nil || n != 0 {
		t.Fatalf("expire: %d %v", n, err)
	}
	a.mu.Lock()
	left := len(a.sessions)
	_, kept := a.sessions[ids[2]]
	a.mu.Unlock()
	if left != 1 || !kept {
		t.Fatalf("sessions cached after the expiry: %d (the live one kept: %v), want only the live one", left, kept)
	}
	if n, err := a.UploadSize("r", ids[2]); err != nil || n != 5 {
		t.Fatalf("the live upload: %d %v", n, err)
	}
}
