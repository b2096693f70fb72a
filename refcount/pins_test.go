package refcount_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// The pin tests run twice: pins in memory (one process) and pin rows in
// the database (Shared: several processes share it).
func forPinModes(t *testing.T, fn func(t *testing.T, shared bool)) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { fn(t, shared) })
	}
}

const pinWindow = 10 * time.Minute

// pinRows counts the pin rows of a registry's database.
func pinRows(t *testing.T, reg *refcount.Registry) int {
	t.Helper()
	n := 0
	if err := reg.DB().View(func(tx *kv.Tx) error {
		return tx.ForEachPin(func(kv.Pin) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// pushVia uploads a new config blob to repo through reg and pushes an
// image of it and the layers under tag.
func pushVia(reg *refcount.Registry, rnd *rand.Rand, repo, tag string, layers ...digest.Digest) (digest.Digest, error) {
	return pushAs(reg, rnd, "", repo, tag, layers...)
}

// pushAs is pushVia by client: its manifest takes that client's pins.
func pushAs(reg *refcount.Registry, rnd *rand.Rand, client, repo, tag string, layers ...digest.Digest) (digest.Digest, error) {
	cfg := make([]byte, 64)
	rnd.Read(cfg)
	cd := digest.FromBytes(cfg)
	if _, err := reg.PutBlob(repo, cd, bytes.NewReader(cfg), int64(len(cfg)), 0); err != nil {
		return "", err
	}
	bl := []string{string(cd)}
	for _, l := range layers {
		bl = append(bl, string(l))
	}
	size := func(d string) int64 {
		if d == string(cd) {
			return int64(len(cfg))
		}
		n, err := reg.Blobs().Stat(digest.Digest(d))
		if err != nil {
			return 1 // the manifest names a blob that is gone: refused below
		}
		return n
	}
	res, err := reg.PutManifest(repo, "", []string{tag}, refcount.MediaTypeOCIManifest, imageBody(bl, size), client)
	return res.Digest, err
}

// A HEAD that answers "exists" holds the layer through the deletion of its
// last reference; the manifest that then references it is accepted and
// takes the pin over, so that deleting that image frees the layer at once.
// A HEAD that no manifest follows holds it for the window only; DELETE of
// the blob ends a pin at once.
func TestPinHoldsLayerForThePushThatWasToldItExists(t *testing.T) {
	forPinModes(t, func(t *testing.T, shared bool) {
		f := newFixture(t, regtest.Options{Shared: shared, PinWindow: pinWindow})
		const repo = "pin/x"
		layer := f.blob(repo, 4000)
		f.image(repo, "a", layer)
		if _, err := f.StatBlob(repo, layer, true, ""); err != nil {
			t.Fatalf("HEAD: %v", err)
		}
		if _, err := f.DeleteTag(repo, "a"); err != nil {
			t.Fatal(err)
		}
		if !f.exists(layer) {
			t.Fatal("the layer a HEAD said exists was freed")
		}
		f.MustClean()
		if shared && pinRows(t, f.Registry.Registry) != 0 {
			t.Fatal("the pin row outlived the lease it became")
		}
		f.image(repo, "b", layer)
		f.MustClean()
		if _, err := f.DeleteTag(repo, "b"); err != nil {
			t.Fatal(err)
		}
		if f.exists(layer) {
			t.Fatal("a complete push left a hold behind: deleting its image kept the layer")
		}
		if _, err := f.StatBlob(repo, layer, true, ""); !errors.Is(err, refcount.ErrBlobUnknown) {
			t.Fatalf("HEAD of a freed layer: %v", err)
		}

		// A HEAD, then the manifest that takes the pin over: nothing left.
		layer = f.blob(repo, 3000)
		f.image(repo, "c", layer)
		if _, err := f.StatBlob(repo, layer, true, ""); err != nil {
			t.Fatal(err)
		}
		f.image(repo, "d", layer)
		if shared && pinRows(t, f.Registry.Registry) != 0 {
			t.Fatal("the manifest that referenced the layer left its pin row")
		}

		// A HEAD that no manifest follows: the layer stays for the window.
		layer2 := f.blob(repo, 2000)
		f.image(repo, "e", layer2)
		if _, err := f.StatBlob(repo, layer2, true, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.DeleteTag(repo, "e"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.StatBlob(repo, layer2, false, ""); err != nil {
			t.Fatalf("GET of a pinned layer: %v", err)
		}
		f.Clock.Advance(pinWindow + time.Minute)
		if _, err := f.Sweep(1000); err != nil {
			t.Fatal(err)
		}
		if f.exists(layer2) {
			t.Fatal("a pin held the layer past its window")
		}

		// DELETE of the blob ends its pin.
		loose := f.blob(repo, 1000)
		if _, err := f.StatBlob(repo, loose, true, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.DeleteBlob(repo, loose); err != nil {
			t.Fatal(err)
		}
		if f.exists(loose) {
			t.Fatal("DELETE of a pinned blob kept it")
		}
		if _, err := f.StatBlob(repo, loose, false, ""); !errors.Is(err, refcount.ErrBlobUnknown) {
			t.Fatalf("a deleted blob answers %v", err)
		}
		// Pins that ended go with the sweep: none piles up.
		if _, err := f.StatBlob(repo, layer, true, ""); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(pinWindow + time.Minute)
		if _, err := f.Sweep(1000); err != nil {
			t.Fatal(err)
		}
		if n := pinRows(t, f.Registry.Registry); n != 0 {
			t.Fatalf("%d pin rows left after the sweep", n)
		}
	})
}

// HEADs of the same blobs, many times over a run: with pin rows, one write
// transaction per blob per half window; in memory, none. Measured by the
// registry's count of pin writes and, on PostgreSQL, by the store's own
// count of write transactions.
func TestHeadPinWritesOncePerHalfWindow(t *testing.T) {
	forPinModes(t, func(t *testing.T, shared bool) {
		f := newFixture(t, regtest.Options{Shared: shared, PinWindow: pinWindow})
		const repo = "pin/many"
		layers := []digest.Digest{f.blob(repo, 100), f.blob(repo, 200), f.blob(repo, 300)}
		f.image(repo, "v", layers...)
		before, counted := f.StoreStats()
		const minutes, perMinute = 31, 4
		heads := 0
		for m := 0; m < minutes; m++ {
			for i := 0; i < perMinute; i++ {
				for _, l := range layers {
					if _, err := f.StatBlob(repo, l, true, ""); err != nil {
						t.Fatal(err)
					}
					heads++
				}
			}
			f.Clock.Advance(time.Minute)
		}
		// A row written at minute m lives to m+10 and is renewed once
		// fewer than 5 minutes are left: at minutes 0, 6, 12, 18, 24, 30.
		want := uint64(0)
		if shared {
			want = uint64(len(layers) * 6)
		}
		writes := f.PinWrites()
		if writes != want {
			t.Fatalf("%d pin writes for %d HEADs, want %d", writes, heads, want)
		}
		if counted {
			after, _ := f.StoreStats()
			if got := after.Updates - before.Updates; got != want {
				t.Fatalf("%d write transactions for %d HEADs, want %d", got, heads, want)
			}
		}
		t.Logf("%d HEADs of %d blobs over %d minutes (window %v): %d write transactions (%.3f per HEAD)",
			heads, len(layers), minutes, pinWindow, writes, float64(writes)/float64(heads))
	})
}

// pinReplicas opens the registries a test plays processes with: on
// PostgreSQL with Shared, three over one database and blob store; else the
// one registry (a bbolt file has one writer, pins in memory one process),
// so that the same steps run everywhere.
func pinReplicas(t *testing.T, shared bool) (*fixture, [3]*refcount.Registry) {
	f := newFixture(t, regtest.Options{Shared: shared, PinWindow: pinWindow})
	rs := [3]*refcount.Registry{f.Registry.Registry, f.Registry.Registry, f.Registry.Registry}
	if shared && f.Backend.DB == "postgres" {
		rs[1], rs[2] = f.Replica().Registry, f.Replica().Registry
	}
	return f, rs
}

// A HEAD via A, the deletion of the layer's last reference via B and the
// manifest that uses the layer via C, in both orders: a HEAD that answered
// "exists" before the deletion (its pin committed) keeps the layer for C's
// manifest; a deletion that committed between the HEAD's read and its pin
// makes the HEAD answer "unknown", and C's manifest is refused. The store
// stays clean either way.
func TestReplicaHeadDeleteManifest(t *testing.T) {
	forPinModes(t, func(t *testing.T, shared bool) {
		f, rs := pinReplicas(t, shared)
		a, b, c := rs[0], rs[1], rs[2]
		rnd := rand.New(rand.NewSource(3))
		const repo = "rep/x"

		// The HEAD's pin first, then the delete.
		layer := f.blob(repo, 5000)
		want := f.stored(layer)
		if _, err := pushVia(a, rnd, repo, "old", layer); err != nil {
			t.Fatal(err)
		}
		if _, err := a.StatBlob(repo, layer, true, ""); err != nil {
			t.Fatalf("HEAD via A: %v", err)
		}
		if _, err := b.DeleteTag(repo, "old"); err != nil {
			t.Fatal(err)
		}
		if _, err := pushVia(c, rnd, repo, "new", layer); err != nil {
			t.Fatalf("the manifest via C of a layer A said exists: %v", err)
		}
		if got := f.stored(layer); !bytes.Equal(got, want) {
			t.Fatal("the layer's bytes changed")
		}
		f.MustClean()
		if _, err := c.DeleteTag(repo, "new"); err != nil {
			t.Fatal(err)
		}
		if f.exists(layer) {
			t.Fatal("the layer outlived its last image: the pin was not taken over")
		}

		// The HEAD reads, the delete commits, the HEAD pins: unknown.
		layer = f.blob(repo, 5000)
		if _, err := pushVia(a, rnd, repo, "old", layer); err != nil {
			t.Fatal(err)
		}
		_, pinned, now, err := a.StatBlobRead(repo, layer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.DeleteTag(repo, "old"); err != nil {
			t.Fatal(err)
		}
		if err := a.HeadPin(repo, layer, pinned, now); !errors.Is(err, refcount.ErrBlobUnknown) {
			t.Fatalf("HEAD after the delete committed: %v, want unknown", err)
		}
		if f.exists(layer) {
			t.Fatal("the deleted layer's bytes are still there")
		}
		var missing *refcount.MissingError
		if _, err := pushVia(c, rnd, repo, "new", layer); !errors.As(err, &missing) {
			t.Fatalf("a manifest of a deleted layer: %v", err)
		}
		f.MustClean()

		// The HEAD reads and pins, then the delete: the layer stays.
		layer = f.blob(repo, 5000)
		if _, err := pushVia(a, rnd, repo, "old", layer); err != nil {
			t.Fatal(err)
		}
		_, pinned, now, err = a.StatBlobRead(repo, layer)
		if err == nil {
			err = a.HeadPin(repo, layer, pinned, now)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.DeleteTag(repo, "old"); err != nil {
			t.Fatal(err)
		}
		if _, err := pushVia(c, rnd, repo, "new", layer); err != nil {
			t.Fatalf("the manifest via C of a layer A said exists: %v", err)
		}
		f.MustClean()
	})
}

// The same three steps at once, many times: whenever the HEAD via A says
// "exists", the manifest via C that follows is accepted; when it says
// "unknown", the client uploads the layer again and its push succeeds.
func TestReplicaHeadRacesDelete(t *testing.T) {
	forPinModes(t, func(t *testing.T, shared bool) {
		f, rs := pinReplicas(t, shared)
		a, b, c := rs[0], rs[1], rs[2]
		rnd := rand.New(rand.NewSource(4))
		const repo = "rep/race"
		outcomes := map[string]int{}
		for i := 0; i < 20; i++ {
			body := make([]byte, 3000)
			rnd.Read(body)
			layer := digest.FromBytes(body)
			if _, err := a.PutBlob(repo, layer, bytes.NewReader(body), int64(len(body)), 0); err != nil {
				t.Fatal(err)
			}
			if _, err := pushVia(a, rnd, repo, "old", layer); err != nil {
				t.Fatal(err)
			}
			// The blob's upload lease would hold it anyway: let it go.
			f.Clock.Advance(2 * time.Hour)
			if _, err := b.Sweep(1000); err != nil {
				t.Fatal(err)
			}
			var headErr, delErr error
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); _, headErr = a.StatBlob(repo, layer, true, "") }()
			go func() { defer wg.Done(); _, delErr = b.DeleteTag(repo, "old") }()
			wg.Wait()
			if delErr != nil {
				t.Fatal(delErr)
			}
			switch {
			case headErr == nil:
				outcomes["exists"]++
				if _, err := pushVia(c, rnd, repo, "new", layer); err != nil {
					t.Fatalf("round %d: HEAD said exists, the manifest via C: %v", i, err)
				}
				if !bytes.Equal(f.stored(layer), body) {
					t.Fatalf("round %d: the layer's bytes changed", i)
				}
			case errors.Is(headErr, refcount.ErrBlobUnknown):
				outcomes["unknown"]++
				if _, err := c.PutBlob(repo, layer, bytes.NewReader(body), int64(len(body)), 0); err != nil {
					t.Fatal(err)
				}
				if _, err := pushVia(c, rnd, repo, "new", layer); err != nil {
					t.Fatalf("round %d: the push after uploading again: %v", i, err)
				}
			default:
				t.Fatalf("round %d: HEAD: %v", i, headErr)
			}
			if _, err := c.DeleteTag(repo, "new"); err != nil {
				t.Fatal(err)
			}
			f.Clock.Advance(2 * time.Hour)
			if _, err := a.Sweep(1000); err != nil {
				t.Fatal(err)
			}
		}
		f.MustClean()
		var reruns uint64
		seen := map[*refcount.Registry]bool{}
		for _, r := range []*refcount.Registry{a, b, c} {
			if st, ok := r.StoreStats(); ok && !seen[r] {
				reruns += st.Retries
			}
			seen[r] = true
		}
		t.Logf("HEAD outcomes: %v; transactions rerun after a conflict: %d", outcomes, reruns)
	})
}
