package blobs

import (
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// The directory store has no URL to give: it says so with ErrNoPresign,
// up front (CanPresign) and when asked.
func TestPresignOnADirectoryStore(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.CanPresign() {
		t.Fatal("the directory store says it can presign")
	}
	if _, err := s.PresignGet(digest.FromString("x"), 1, "", time.Minute); !errors.Is(err, ErrNoPresign) {
		t.Fatalf("PresignGet on the directory store: %v", err)
	}
}
