package s3e2e

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/http"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Chunked uploads to kvreg on S3, with chunks shorter than a part (1 KiB:
// each a tail segment, more of them than a tail keeps), a part's fraction
// (3 MiB) and most of one (7 MiB), alone and mixed in one upload, commit
// and pull back byte for byte. kvreg restarts in the middle of the mixed
// upload once it holds full parts, which S3 cannot give back before the
// upload completes: the upload resumes where it stood and commits.
func TestChunkedUploadsOnS3(t *testing.T) {
	r := newS3Registry(t)
	start := time.Now()
	rnd := rand.New(rand.NewSource(3))
	uploads := []struct {
		name    string
		chunks  []int
		restart int // restart kvreg before this chunk; 0: never
	}{
		{"kib", repeat(kib, 40), 0},
		{"3mib", repeat(3*mib, 5), 0},
		{"7mib", repeat(7*mib, 3), 0},
		{"mixed", []int{7 * mib, kib, 3 * mib, kib, 7 * mib, 3 * mib, kib, 7 * mib}, 5},
	}
	var layers []layerRef
	bodies := map[string][]byte{}
	for _, u := range uploads {
		total := 0
		for _, n := range u.chunks {
			total += n
		}
		body := make([]byte, total)
		rnd.Read(body)
		d := digest.FromBytes(body)
		resp, _ := expect(t, u.name+": POST", r.do(http.MethodPost, "/v2/team/chunks/blobs/uploads/", nil, nil, 0), http.StatusAccepted)
		loc := resp.Header.Get("Location")
		at := 0
		for i, n := range u.chunks {
			if i == u.restart && i > 0 {
				r.restart()
				resp, _ := expect(t, u.name+": status after the restart", r.do(http.MethodGet, loc, nil, nil, 0), http.StatusNoContent)
				if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", at-1); got != want {
					t.Fatalf("%s: after the restart the upload has Range %q, want %q", u.name, got, want)
				}
			}
			hdr := http.Header{"Content-Type": {"application/octet-stream"}, "Content-Range": {fmt.Sprintf("%d-%d", at, at+n-1)}}
			resp, _ := expect(t, fmt.Sprintf("%s: PATCH %d", u.name, i), r.do(http.MethodPatch, loc, hdr, bytes.NewReader(body[at:at+n]), int64(n)), http.StatusAccepted)
			at += n
			if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", at-1); got != want {
				t.Fatalf("%s: PATCH %d answered Range %q, want %q", u.name, i, got, want)
			}
			loc = resp.Header.Get("Location")
		}
		sep := "?"
		if bytes.ContainsRune([]byte(loc), '?') {
			sep = "&"
		}
		expect(t, u.name+": PUT", r.do(http.MethodPut, loc+sep+"digest="+d.String(), nil, nil, 0), http.StatusCreated)
		layers = append(layers, layerRef{d.String(), int64(total)})
		bodies[u.name] = body
	}
	r.pushManifest("team/chunks", "v1", []byte(`{"architecture":"amd64","os":"linux"}`), layers...)
	for i, u := range uploads {
		resp := r.do(http.MethodGet, "/v2/team/chunks/blobs/"+layers[i].digest, nil, nil, 0)
		_, got := expect(t, u.name+": GET", resp, http.StatusOK)
		if !bytes.Equal(got, bodies[u.name]) {
			t.Fatalf("%s: pulled %d bytes that differ from the %d pushed", u.name, len(got), len(bodies[u.name]))
		}
	}
	t.Logf("4 chunked uploads (%d MiB), a restart, pulls: %v", sum(layers)/mib, time.Since(start).Round(time.Millisecond))
}

func repeat(n, times int) []int {
	out := make([]int, times)
	for i := range out {
		out[i] = n
	}
	return out
}

func sum(ls []layerRef) int64 {
	var n int64
	for _, l := range ls {
		n += l.size
	}
	return n
}
