package api_test

import (
	"fmt"
	"net/http"
	"testing"
)

// Many clients push, pull and delete images that share one base layer, in
// separate repositories, at the same time: the base layer's file is
// removed and written again under their feet. Every push that returned
// pulls, and at the end the store holds exactly what is still tagged.
func TestE2EConcurrentShareAndDelete(t *testing.T) {
	r, rng := startSeeded(t, 19)
	base := randomLayer(rng, mtOCILayer, 64<<10)
	const workers, rounds = 8, 6
	images := make([][]manifest, workers)
	for w := range images {
		for i := 0; i < rounds; i++ {
			images[w] = append(images[w], randomOCIImage(rng, []blob{base}, 4<<10+w*100+i))
		}
	}
	keep := make([]manifest, workers)

	t.Run("clients", func(t *testing.T) {
		for w := 0; w < workers; w++ {
			w := w
			t.Run(fmt.Sprint("client", w), func(t *testing.T) {
				t.Parallel()
				rr := r.in(t)
				repo := fmt.Sprintf("conc/r%d", w)
				for i, img := range images[w] {
					rr.pushImage(repo, "v", img)
					rr.pull(repo, "v", img)
					if i < rounds-1 {
						// Delete by tag on even rounds, by digest on odd ones.
						ref := "v"
						if i%2 == 1 {
							ref = img.Digest
						}
						expectStatus(t, "DELETE", rr.del("/v2/"+repo+"/manifests/"+ref), http.StatusAccepted)
						rr.expectManifestGone(repo, img.Digest)
						for _, b := range img.Blobs() {
							rr.expectBlobGone(repo, b)
						}
					}
				}
				keep[w] = images[w][rounds-1]
			})
		}
	})
	if t.Failed() {
		return
	}
	var want []blob
	for w, m := range keep {
		r.pull(fmt.Sprintf("conc/r%d", w), "v", m)
		want = append(want, m.Blobs()...)
	}
	r.checkInvariants(want)

	// Delete them all at once: nothing may be left.
	t.Run("deleters", func(t *testing.T) {
		for w := 0; w < workers; w++ {
			w := w
			t.Run(fmt.Sprint("client", w), func(t *testing.T) {
				t.Parallel()
				rr := r.in(t)
				expectStatus(t, "DELETE", rr.del(fmt.Sprintf("/v2/conc/r%d/manifests/v", w)), http.StatusAccepted)
			})
		}
	})
	r.expectBlobFiles()
	if cat := r.catalog(); len(cat) != 0 {
		t.Errorf("catalog after deleting everything: %v", cat)
	}
	r.checkInvariants()
}
