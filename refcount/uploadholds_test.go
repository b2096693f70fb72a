package refcount_test

import (
	"bytes"
	"math/rand"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Client A uploads a layer and has not referenced it yet; client B is told
// it exists and pushes an image of it; B's image is deleted before A's
// manifest arrives. A's manifest is accepted with the layer's bytes
// unchanged: B's manifest took B's pin, not the hold A's upload left. So
// within the pin window after A's upload (when A's pin, which counts the
// upload, holds the layer too) and after it (when only the hold does).
// Deleting A's image then frees the layer (nothing left behind), and a
// client that uploads, HEADs its own layer (as docker does) and pushes
// leaves nothing either: its image's deletion frees the layer at once.
func TestManifestLeavesAnotherClientsUploadHold(t *testing.T) {
	forPinModes(t, func(t *testing.T, shared bool) {
		f, rs := pinReplicas(t, shared)
		rnd := rand.New(rand.NewSource(8))
		const repo = "r"
		upload := func(client string, size int) digest.Digest {
			t.Helper()
			b := make([]byte, size)
			rnd.Read(b)
			d := digest.FromBytes(b)
			if _, err := rs[0].PutBlobFor(repo, d, bytes.NewReader(b), int64(size), 0, client); err != nil {
				t.Fatal(err)
			}
			return d
		}
		for _, after := range []time.Duration{time.Second, pinWindow + time.Minute} {
			layer := upload(clientA, 7000)
			want := f.stored(layer)
			f.Clock.Advance(after)
			if _, err := rs[1].StatBlob(repo, layer, true, clientB); err != nil {
				t.Fatalf("%v after A's upload: HEAD of B: %v", after, err)
			}
			if _, err := pushAs(rs[2], rnd, clientB, repo, "b", layer); err != nil {
				t.Fatalf("%v after A's upload: B's manifest: %v", after, err)
			}
			if _, err := rs[1].DeleteTag(repo, "b"); err != nil {
				t.Fatal(err)
			}
			if !f.exists(layer) {
				t.Fatalf("%v after A's upload: deleting B's image freed the layer A uploaded and has not referenced yet", after)
			}
			f.MustClean()
			if _, err := pushAs(rs[0], rnd, clientA, repo, "a", layer); err != nil {
				t.Fatalf("%v after A's upload: A's manifest after B's image was deleted: %v", after, err)
			}
			if got := f.stored(layer); !bytes.Equal(got, want) {
				t.Fatal("the layer's bytes changed")
			}
			if _, err := rs[2].DeleteTag(repo, "a"); err != nil {
				t.Fatal(err)
			}
			if f.exists(layer) {
				t.Fatalf("%v after A's upload: the layer outlived A's image: a hold was left behind", after)
			}
			f.MustClean()
		}

		// Upload, a HEAD of one's own layer, the manifest, the delete.
		own := upload(clientB, 5000)
		if _, err := rs[1].StatBlob(repo, own, true, clientB); err != nil {
			t.Fatalf("HEAD of B's own layer: %v", err)
		}
		if _, err := pushAs(rs[2], rnd, clientB, repo, "own", own); err != nil {
			t.Fatal(err)
		}
		if _, err := rs[0].DeleteTag(repo, "own"); err != nil {
			t.Fatal(err)
		}
		if f.exists(own) {
			t.Fatal("the layer of a deleted image outlived it: its upload's hold or pin was left behind")
		}
		if shared {
			if n := pinRows(t, f.Registry.Registry); n != 0 {
				t.Fatalf("%d pin rows left", n)
			}
		}
		f.MustClean()
	})
}
