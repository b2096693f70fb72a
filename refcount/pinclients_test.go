package refcount_test

import (
	"bytes"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/regtest"
)

const clientA, clientB = "ip:127.0.0.2", "ip:127.0.0.3"

// pinClients lists the clients of the pin rows of a registry's database,
// each as <client>@<minutes left at now>.
func pinClients(t *testing.T, f *fixture) string {
	t.Helper()
	var out []string
	now := f.Clock.Now().UnixNano()
	if err := f.DB().View(func(tx *kv.Tx) error {
		return tx.ForEachPin(func(p kv.Pin) error {
			out = append(out, p.Client+"@"+time.Duration(p.Until-now).String())
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// Two clients are told a layer exists; A's manifest lands, then every
// image holding the layer is deleted: B's manifest is still accepted with
// the layer's bytes unchanged, and deleting B's image then frees the layer
// (B took over the last hold: nothing is left behind). HEADs, deletes and
// manifests go through different replicas where the backend has several.
func TestPinOfEachClientHoldsForItsPush(t *testing.T) {
	forPinModes(t, func(t *testing.T, shared bool) {
		f, rs := pinReplicas(t, shared)
		rnd := rand.New(rand.NewSource(5))
		const repo = "r"
		layer := f.blob(repo, 6000)
		want := f.stored(layer)
		if _, err := pushVia(rs[0], rnd, repo, "old", layer); err != nil {
			t.Fatal(err)
		}
		if _, err := rs[0].StatBlob(repo, layer, true, clientA); err != nil {
			t.Fatalf("HEAD of A: %v", err)
		}
		f.Clock.Advance(time.Second)
		if _, err := rs[1].StatBlob(repo, layer, true, clientB); err != nil {
			t.Fatalf("HEAD of B: %v", err)
		}
		if shared {
			if got, want := pinClients(t, f), clientA+"@9m59s "+clientB+"@10m0s"; got != want {
				t.Fatalf("pin rows %q, want %q", got, want)
			}
		}
		if _, err := pushAs(rs[2], rnd, clientA, repo, "a", layer); err != nil {
			t.Fatalf("A's manifest: %v", err)
		}
		if shared {
			if got, want := pinClients(t, f), clientB+"@10m0s"; got != want {
				t.Fatalf("pin rows after A's manifest %q, want %q (B's only)", got, want)
			}
		}
		for _, tag := range []string{"old", "a"} {
			if _, err := rs[1].DeleteTag(repo, tag); err != nil {
				t.Fatal(err)
			}
		}
		if !f.exists(layer) {
			t.Fatal("the layer B was told exists was freed with the last image holding it")
		}
		f.MustClean()
		if _, err := pushAs(rs[0], rnd, clientB, repo, "b", layer); err != nil {
			t.Fatalf("B's manifest after every image holding the layer was deleted: %v", err)
		}
		if got := f.stored(layer); !bytes.Equal(got, want) {
			t.Fatal("the layer's bytes changed")
		}
		f.MustClean()
		if _, err := rs[2].DeleteTag(repo, "b"); err != nil {
			t.Fatal(err)
		}
		if f.exists(layer) {
			t.Fatal("the layer outlived B's image: a hold was left behind")
		}
		if n := pinRows(t, f.Registry.Registry); n != 0 {
			t.Fatalf("%d pin rows left", n)
		}
		f.MustClean()
	})
}

// With pin rows, a client's HEADs share its one row (a second HEAD within
// half the window writes nothing), and its manifest deletes that row only:
// the rows of other clients, and a row of version 4 (no client), stay.
// The cascade turns every live row into a pending hold and ends the lease
// at the latest row's end.
func TestManifestTakesOnlyItsClientsPinRow(t *testing.T) {
	f := newFixture(t, regtest.Options{Shared: true, PinWindow: pinWindow})
	rnd := rand.New(rand.NewSource(6))
	const repo = "r"
	layer := f.blob(repo, 3000)
	f.image(repo, "old", layer)
	head := func(client string) {
		t.Helper()
		if _, err := f.StatBlob(repo, layer, true, client); err != nil {
			t.Fatalf("HEAD of %s: %v", client, err)
		}
	}
	head(clientA)
	f.Clock.Advance(time.Minute)
	head(clientB)
	head(clientA) // within half the window of A's row: no write
	if got, want := f.PinWrites(), uint64(2); got != want {
		t.Fatalf("%d pin writes, want %d", got, want)
	}
	f.update(func(tx *kv.Tx) error {
		return tx.PutPin(kv.Pin{Kind: kv.LeaseLink, Repo: repo, Digest: string(layer), Until: f.Clock.Now().Add(3 * time.Minute).UnixNano()})
	})
	if got, want := pinClients(t, f), "@3m0s "+clientA+"@9m0s "+clientB+"@10m0s"; got != want {
		t.Fatalf("pin rows %q, want %q", got, want)
	}
	if _, err := pushAs(f.Registry.Registry, rnd, clientA, repo, "a", layer); err != nil {
		t.Fatal(err)
	}
	if got, want := pinClients(t, f), "@3m0s "+clientB+"@10m0s"; got != want {
		t.Fatalf("pin rows after A's manifest %q, want %q", got, want)
	}
	// A pushes again: nothing of A's is left to take, B's row stays.
	head(clientA)
	if _, err := pushAs(f.Registry.Registry, rnd, clientA, repo, "a2", layer); err != nil {
		t.Fatal(err)
	}
	if got, want := pinClients(t, f), "@3m0s "+clientB+"@10m0s"; got != want {
		t.Fatalf("pin rows after A's second push %q, want %q", got, want)
	}
	for _, tag := range []string{"old", "a", "a2"} {
		if _, err := f.DeleteTag(repo, tag); err != nil {
			t.Fatal(err)
		}
	}
	if got := pinClients(t, f); got != "" {
		t.Fatalf("pin rows %q after the cascade: they became the lease", got)
	}
	var l kv.Link
	f.update(func(tx *kv.Tx) error {
		var err error
		l, _, err = tx.Link(repo, string(layer))
		return err
	})
	if got, want := l.Pending, uint64(2); got != want {
		t.Fatalf("%d pending holds, want %d: one per live row", got, want)
	}
	if got, want := time.Duration(l.Lease-f.Clock.Now().UnixNano()), 10*time.Minute; got != want {
		t.Fatalf("lease ends in %v, want %v (the latest row's end)", got, want)
	}
	if _, err := pushAs(f.Registry.Registry, rnd, clientB, repo, "b", layer); err != nil {
		t.Fatalf("B's manifest: %v", err)
	}
	f.MustClean()
}
