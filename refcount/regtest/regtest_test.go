package regtest_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	c := regtest.NewClock()
	if !c.Now().Equal(regtest.Start) {
		t.Fatalf("new clock at %v, want %v", c.Now(), regtest.Start)
	}
	c.Advance(90 * time.Minute)
	if got := c.Now().Sub(regtest.Start); got != 90*time.Minute {
		t.Fatalf("advanced by %v, want 90m", got)
	}
}

func TestUnknownBackendIsAnError(t *testing.T) {
	t.Setenv(regtest.EnvBackends, "bolt,nosuch")
	if _, err := regtest.Backends(); err == nil {
		t.Fatal("an unknown backend name was accepted")
	}
	t.Setenv(regtest.EnvBackends, "")
	bs, err := regtest.Backends()
	if err != nil || len(bs) != 1 || bs[0] != regtest.Default() {
		t.Fatalf("default backends: %v, %v", bs, err)
	}
}

// A registry survives a reopen with its blob, and the clock drives leases:
// a finished upload that nothing references is gone once its lease expires
// and a sweep runs.
func TestOpenReopenAndLeaseExpiry(t *testing.T) {
	r := regtest.Open(t, regtest.Options{UploadGrace: time.Hour})
	data := []byte("regtest blob")
	d := digest.FromBytes(data)
	if _, err := r.PutBlob("lib/a", d, bytes.NewReader(data), int64(len(data)), 0); err != nil {
		t.Fatal(err)
	}
	r.Reopen()
	if size, err := r.StatBlob("lib/a", d, false); err != nil || size != int64(len(data)) {
		t.Fatalf("after reopen: size %d, %v", size, err)
	}
	r.MustClean()
	r.Clock.Advance(2 * time.Hour)
	if _, err := r.Sweep(100); err != nil {
		t.Fatal(err)
	}
	if _, err := r.StatBlob("lib/a", d, false); err == nil {
		t.Fatal("the blob outlived its lease")
	}
}

func TestMain(m *testing.M) { os.Exit(regtest.Run(m)) }
