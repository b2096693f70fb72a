package api

import (
	"bytes"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// A scrape serves the cross-repository figures of the last scan while the
// scan is not due (the counters have not moved, or less than scanEvery
// times its duration has passed), and rescans once it is.
func TestStoreCollectorRescansWhenDue(t *testing.T) {
	reg := regtest.Open(t, regtest.Options{})
	clock := time.Unix(1_700_000_000, 0)
	// Every reading of the clock moves it a second on: a scan takes 1 s.
	c := &storeCollector{reg: reg.Registry, now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	first, err := c.totals()
	if err != nil || first.Blobs != 0 || first.UnreferencedBlobs != 0 {
		t.Fatalf("empty store: %+v, %v", first, err)
	}
	scannedAt := c.lastAt

	body := []byte("a blob no manifest references")
	if _, err := reg.PutBlob("r", digest.FromBytes(body), bytes.NewReader(body), int64(len(body)), 0); err != nil {
		t.Fatal(err)
	}
	stale, err := c.totals()
	if err != nil {
		t.Fatal(err)
	}
	if stale.Blobs != 1 || stale.UnreferencedBlobs != 0 || c.lastAt != scannedAt {
		t.Fatalf("within ten scan durations: %+v (scanned at %v, last %v), want fresh counters and the old scan", stale, scannedAt, c.lastAt)
	}

	clock = clock.Add(10 * time.Second)
	fresh, err := c.totals()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Blobs != 1 || fresh.UnreferencedBlobs != 1 || fresh.UnreferencedBytes != int64(len(body)) {
		t.Fatalf("once due: %+v", fresh)
	}
	scannedAt = c.lastAt

	clock = clock.Add(time.Hour)
	again, err := c.totals()
	if err != nil || again != fresh || c.lastAt != scannedAt {
		t.Fatalf("nothing moved: %+v, %v, rescanned %v", again, err, c.lastAt != scannedAt)
	}
}
