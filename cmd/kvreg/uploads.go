package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/kvreg/kvreg/blobs"
)

// expireUploads removes the upload sessions under root that have received
// nothing for maxAge: those whose data file was last written before
// now-maxAge. Sessions caught in a commit (their data renamed to a digest)
// are startup recovery's, not touched here. It returns how many went.
//
// The age is read from the file's mtime, since blobs.Store keeps none;
// a blobs.Store.UploadAge(id) would let this live in the store.
func expireUploads(bs *blobs.Store, root string, maxAge time.Duration, now time.Time) (int, error) {
	if maxAge <= 0 {
		return 0, nil
	}
	ids, err := bs.Uploads()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		dir := filepath.Join(root, "uploads", id)
		fi, err := os.Stat(filepath.Join(dir, "data"))
		if err != nil || now.Sub(fi.ModTime()) < maxAge {
			continue
		}
		repo, err := os.ReadFile(filepath.Join(dir, "repo"))
		if err != nil {
			continue
		}
		if bs.Cancel(string(repo), id) == nil {
			n++
		}
	}
	return n, nil
}
