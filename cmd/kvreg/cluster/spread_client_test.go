package cluster

import (
	"time"

	"github.com/kvreg/kvreg/api/racetest"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// racer is one race client with its own connections, talking to one
// address: haproxy's (each request to whichever replica it picks) or a
// replica's own.
func (c *cluster) racer(base string, stats *racetest.Stats) *racetest.Client {
	return racetest.New(c.t, base, stats, racetest.Options{IdleConnsPerHost: 2, Timeout: 90 * time.Second, ReplicaHeader: testenv.ReplicaHeader})
}

// pushable is img as the race client pushes it.
func pushable(img image) *racetest.Manifest {
	m := &racetest.Manifest{MediaType: mtManifest, Body: img.Manifest, Digest: img.Digest}
	for _, b := range img.blobs() {
		m.Blobs = append(m.Blobs, racetest.Blob(b))
	}
	return m
}
