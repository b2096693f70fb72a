package api

import (
	"fmt"
	"testing"
	"time"
)

// The guard's memory stays bounded however many clients fail; windows
// that ended make room first.
func TestLoginGuardBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g := newLoginGuard(func() time.Time { return now }, nil)
	for range maxFailsPerUser {
		g.failed("bob", "192.0.2.1")
	}
	now = now.Add(time.Second)
	for i := range maxLoginWindows {
		g.failed("bob", fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
		if len(g.windows) > maxLoginWindows {
			t.Fatalf("%d windows after %d clients", len(g.windows), i+1)
		}
	}
	// Past the window of the first failures, new clients take the room
	// of ended windows.
	now = now.Add(loginWindow)
	for i := range 1000 {
		g.failed("alice", fmt.Sprintf("172.16.%d.%d", i>>8, i&255))
	}
	if len(g.windows) > maxLoginWindows {
		t.Fatalf("%d windows", len(g.windows))
	}
	if g.wait("alice", "172.16.0.1") != 0 {
		t.Fatal("one failure refused")
	}
}
